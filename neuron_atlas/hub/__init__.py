"""The Hugging Face Hub as an atlas' home: read ``hf://datasets/org/name[@rev]`` lazily or as a cached snapshot
(``address``, ``filesystem``, ``remote``: below ``Atlas``), and publish one commit with a data card (``card``,
``publish``: above it, loaded on first use so ``atlas`` can import the reading side without a cycle)."""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Literal

from .address import HubAddress, endpoint, parse_hf_url
from .remote import MANIFEST, RemoteRoot, locate

if TYPE_CHECKING:
    from ..atlas import Atlas

_PUBLISHING = {"plan_commit": "publish", "push": "publish", "export": "publish", "ROWS_PER_GROUP": "publish", "FIGURE_PATH": "card",
               "render_card": "card", "card_summary": "card", "dataset_configs": "card"}


def open_hub(url: str, mode: Literal["lazy", "snapshot"] = "lazy", token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> Atlas:
    """Open the atlas at ``hf://datasets/org/name[@rev]`` (same as ``neuron_atlas.open(url, ...)``)."""
    from ..atlas import open as open_atlas

    return open_atlas(url, mode=mode, token=token, cache_dir=cache_dir)


def __getattr__(name: str) -> Any:
    """Publishing names load on first use: they need ``Atlas``, which imports this package's reading side."""
    if name in _PUBLISHING:
        return getattr(importlib.import_module(f".{_PUBLISHING[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FIGURE_PATH", "MANIFEST", "ROWS_PER_GROUP", "HubAddress", "RemoteRoot", "card_summary", "dataset_configs",
           "endpoint", "export", "locate", "open_hub", "parse_hf_url", "plan_commit", "push", "render_card"]
