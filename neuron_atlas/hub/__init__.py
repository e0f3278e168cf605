"""The Hugging Face Hub as an atlas' home, publishing side (above ``Atlas``): one commit of an atlas with its data
card (``card``, ``publish``), and ``open_hub``. Reading ``hf://`` addresses is ``neuron_atlas.hf`` (below ``Atlas``);
its names are re-exported here."""
from __future__ import annotations

import os
from typing import Literal

from ..atlas import Atlas
from ..atlas import open as open_atlas
from ..hf import filesystem
from ..hf.address import HubAddress, endpoint, parse_hf_url
from ..hf.remote import MANIFEST, RemoteRoot, locate
from .card import FIGURE_PATH, card_summary, dataset_configs, render_card
from .publish import ROWS_PER_GROUP, plan_commit, push


def open_hub(url: str, mode: Literal["lazy", "snapshot"] = "lazy", token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> Atlas:
    """Open the atlas at ``hf://datasets/org/name[@rev]`` (same as ``neuron_atlas.open(url, ...)``)."""
    return open_atlas(url, mode=mode, token=token, cache_dir=cache_dir)


__all__ = ["FIGURE_PATH", "MANIFEST", "ROWS_PER_GROUP", "HubAddress", "RemoteRoot", "card_summary", "dataset_configs",
           "endpoint", "filesystem", "locate", "open_hub", "parse_hf_url", "plan_commit", "push", "render_card"]
