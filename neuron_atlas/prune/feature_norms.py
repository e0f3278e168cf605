"""Building the large-magnitude features table (Kim et al. 2024): norms of the residual stream on translation prompts.

The table's layout and the query helpers are in ``neuron_atlas._query.features``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._query.features import feature_table, features_path, pair_slug
from ..languages.tags import canonical, parse_pair
from .._utils.progress import bar as progress_bar
from ..format.layout import write_parquet
from ..modeling.threads import COMPUTE, torch_threads


def residual_norms(model: Any, calib: Any, *, batch_size: int = 4, bar: Any = None) -> np.ndarray:
    """Sum of squares [n_layers + 1, hidden] of the residual stream over the non-padding calibration tokens
    (progress on ``bar``, a caller's bar over several sets, else a bar of its own)."""
    import torch

    from ..modeling.ffn import decoder_layers
    from .stats import run_batches

    _, blocks = decoder_layers(model)
    sumsq: list[torch.Tensor | None] = [None] * (len(blocks) + 1)
    current: dict[str, torch.Tensor] = {}

    def add(index: int, hidden: torch.Tensor) -> None:
        mask = current["mask"]
        real = hidden.reshape(-1, hidden.shape[-1])[mask.reshape(-1)]
        part = real.float().square().sum(dim=0).double()
        sumsq[index] = part if sumsq[index] is None else sumsq[index] + part

    def before(index: int):
        def hook(_module, args, kwargs):
            add(index, args[0] if args else kwargs["hidden_states"])
        return hook

    def after(_module, _args, output):
        add(len(blocks), output[0] if isinstance(output, tuple) else output)

    handles = [b.register_forward_pre_hook(before(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles.append(blocks[-1].register_forward_hook(after))
    try:
        run_batches(model, calib, batch_size, lambda mask: current.__setitem__("mask", mask), "feature norms", bar=bar)
    finally:
        for h in handles:
            h.remove()
    return torch.stack([s.cpu() for s in sumsq]).numpy()


def build_features(model: Any, tokenizer: Any, atlas_root: str | Path, slug: str, pairs: Sequence[Any], *,
                   corpus: Any = "udhr", nsamples: int = 100, shots: int = 4, max_length: int = 512,
                   sep: str = "eos", seed: int = 0, batch_size: int = 4,
                   threads: int | None = COMPUTE.threads) -> list[Path]:
    """Write one features table per language pair of ``model`` under ``atlas_root``; returns the paths written.
    ``threads``: torch's CPU threads for the forward passes (default: the policy of ``modeling.threads``)."""
    from .calibration import open_source, translation_set

    name, corpus, written = corpus if isinstance(corpus, str) else type(corpus).__name__, open_source(corpus), []
    calibs = [(pair, translation_set(tokenizer, corpus, [parse_pair(pair)], nsamples=nsamples, shots=shots,
                                     max_length=max_length, sep=sep, seed=seed)) for pair in pairs]
    # one bar, one ETA, all pairs
    with torch_threads(threads), progress_bar("feature norms", sum(c.tokens for _, c in calibs), "tok") as bar:
        for pair, calib in calibs:
            src, tgt = parse_pair(pair)
            bar.describe(f"feature norms {src}-{tgt}")
            table = feature_table(residual_norms(model, calib, batch_size=batch_size, bar=bar), calib.tokens)
            if hasattr(corpus, "resolve"):  # the corpus' own tags: 'sw' is swh_Latn in UDHR
                src, tgt = corpus.resolve(src), corpus.resolve(tgt)
            path = features_path(atlas_root, slug, pair_slug(src, tgt))
            write_parquet(table, path, {
                "model": slug, "src": canonical(src), "tgt": canonical(tgt), "samples": len(calib),
                "corpus": name, "shots": shots,
                "max_length": max_length, "seed": seed, "created": dt.datetime.now(dt.timezone.utc).isoformat(),
            })
            written.append(path)
    return written
