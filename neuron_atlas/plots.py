"""Figures (matplotlib, the ``[plot]`` extra): overlap heatmaps and neurons-per-layer charts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'neuron-atlas[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def neurons_per_layer(by_layer: pa.Table, path: str | Path, title: str = "") -> Path:
    """Save a bar chart of ``NeuronSet.by_layer()`` summed over languages (language-specific neurons per layer)."""
    plt = _pyplot()
    layer = by_layer.column("layer").to_numpy()
    counts = np.bincount(layer, weights=by_layer.column("n_neurons").to_numpy())
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(np.arange(counts.size), counts, color="#3b75af")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("(language, neuron) pairs")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
