"""Figures (matplotlib, the ``[plot]`` extra): overlap heatmaps and neurons-per-layer charts."""
from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa

from ._utils.files import write_output


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'neuron-atlas[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _wrapped(title: str, inches: float) -> str:
    """The title broken into lines that fit a figure ``inches`` wide at 10 pt (about 11 characters an inch)."""
    return textwrap.fill(title, width=max(20, int(inches * 11)))


def overlap_heatmap(table: pa.Table, path: str | Path, title: str = "") -> Path:
    """Save the Jaccard matrix from ``Atlas.overlap`` as an annotated heatmap PNG."""
    plt = _pyplot()
    langs = table.column("lang").to_pylist()
    matrix = np.array([table.column(lang).to_numpy(zero_copy_only=False) for lang in langs]).T
    size = max(4.0, 0.45 * len(langs) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(langs)), langs, rotation=90)
    ax.set_yticks(range(len(langs)), langs)
    if len(langs) <= 16:
        for i in range(len(langs)):
            for j in range(len(langs)):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Jaccard")
    ax.set_title(_wrapped(title, size), fontsize=10)
    fig.tight_layout()
    _save(fig, path, Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return Path(path)


def neurons_per_layer(by_layer: pa.Table | Mapping[str, pa.Table], path: str | Path | IO[bytes],
                      title: str = "") -> str | Path | IO[bytes]:
    """Save a bar chart of ``NeuronSet.by_layer()`` summed over languages (language-specific neurons per layer).

    Several models (a mapping label -> by_layer table) share the chart, one bar colour each; ``path`` may be a
    binary file object (the data card's figure is written to memory).
    """
    plt = _pyplot()
    series = by_layer if isinstance(by_layer, Mapping) else {"": by_layer}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(series)
    for i, (label, table) in enumerate(series.items()):
        counts = np.bincount(table.column("layer").to_numpy(), weights=table.column("n_neurons").to_numpy())
        ax.bar(np.arange(counts.size) + (i - (len(series) - 1) / 2) * width, counts, width=width,
               label=label or None, color="#3b75af" if len(series) == 1 else None)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("(language, neuron) pairs")
    ax.set_title(_wrapped(title, 7), fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, "png")
    plt.close(fig)
    return Path(path) if isinstance(path, str) else path


def _save(fig, path: str | Path | IO[bytes], fmt: str) -> None:
    """Save ``fig`` into a file object, or into the file a user named by the output rule of ``write_output``."""
    if isinstance(path, (str, os.PathLike)):
        write_output(path, lambda f: fig.savefig(f, dpi=120, format=fmt))
    else:
        fig.savefig(path, dpi=120, format=fmt)
