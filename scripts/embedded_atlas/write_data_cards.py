"""Render the data card of the embedded default atlas into data_cards/ from the package's card template.

    python scripts/embedded_atlas/write_data_cards.py        # after rebuilding the embedded atlas; tests/hub/test_data_cards.py checks it is current

The card is the README.md that ``neuron-atlas push`` would publish for this atlas (without its figure).
"""
from __future__ import annotations

from pathlib import Path

import neuron_atlas as na
from neuron_atlas.hub import card_summary, render_card

ROOT = Path(__file__).resolve().parents[2]
CARDS = {"default-atlas.md": "neuron-atlas/default-atlas"}  # file in data_cards/ -> the Hub repo it describes


def render(repo_id: str) -> str:
    """The card of the embedded atlas as published to ``repo_id``."""
    atlas = na.open()
    return render_card(atlas, repo_id, card_summary(atlas), figure=None, license="apache-2.0")  # the project states it


def main() -> None:
    for name, repo_id in CARDS.items():
        path = ROOT / "data_cards" / name
        path.write_text(render(repo_id))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
