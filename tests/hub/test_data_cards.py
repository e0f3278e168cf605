"""The committed data cards in data_cards/ are what the package's template renders for the embedded atlas now."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _builder():
    spec = importlib.util.spec_from_file_location("write_data_cards", ROOT / "scripts" / "embedded_atlas" / "write_data_cards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_cards_are_current():
    builder = _builder()
    for name, repo_id in builder.CARDS.items():
        committed = (ROOT / "data_cards" / name).read_text()
        assert committed == builder.render(repo_id), f"data_cards/{name} is stale: run python scripts/embedded_atlas/write_data_cards.py"


@pytest.mark.parametrize("config", ["models", "languages"])
def test_card_front_matter_names_every_table(config):
    front = (ROOT / "data_cards" / "default-atlas.md").read_text().split("---")[1]
    assert f"config_name: {config}" in front and "config_name: gemma-3-270m" in front
