"""How precisely the v2 statistics must be stored: sets and steering vectors from rounded values vs float64.

    python benchmarks/stats_precision.py FULL_ATLAS --model gemma-3-270m --mean-bits 10 --var-bits 10 --residual-bits 8

FULL_ATLAS holds the float64 statistics (a build). For every language as the target (the others: all the model's
other languages) it compares, between the float64 values and the values rounded by ``neuron_atlas.maintenance.compact``:
the top-0.5 % sets by the mean-diff score μ_t − mean_O μ_l and by the Welch t score (Jaccard), and the DiffMean
vector m_t − mean_O m_l at every residual point (cosine); and it writes the rounded files to measure their bytes
per statistic (Parquet, byte-stream split + zstd, as the atlas writes them).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from neuron_atlas.maintenance.compact import (
    Precision,
    layer_steps,
    round_significant,
    round_to_step,
)
from neuron_atlas.format.reader import load_counts, load_moments, load_residual, read_model
from neuron_atlas.format.layout import Layout
from neuron_atlas.format.writer import AtlasWriter

RATE = 0.005


def mean_diff(mean: np.ndarray) -> np.ndarray:
    """[K, n] scores: μ_t − (1/|O|) Σ_{l in O} μ_l with O = every other language."""
    k = mean.shape[0]
    return mean - (mean.sum(0) - mean) / (k - 1)


def welch_t(mean: np.ndarray, var: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """[K, n] Welch t of each target vs the pooled tokens of all the others (exact mixture moments)."""
    n = tokens.astype(np.float64)[:, None]
    centre = (n * mean).sum(0) / n.sum()
    first = n * (mean - centre)  # sums of (x - centre) per language
    second = n * (var + np.square(mean - centre))  # sums of (x - centre)**2
    n_o = n.sum() - n
    mean_o = (first.sum(0) - first) / n_o
    var_o = np.maximum((second.sum(0) - second) / n_o - np.square(mean_o), 0)
    denominator = np.sqrt(var / n + var_o / n_o)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mean - centre - mean_o) / denominator
    return np.where(denominator > 0, t, 0.0)


def top(scores: np.ndarray, size: int) -> np.ndarray:
    """[K, size] flat neuron indices of the highest scores, ties by (layer, neuron)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :size]


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([len(np.intersect1d(x, y)) / len(np.union1d(x, y)) for x, y in zip(a, b)])


def diffmean(residual: np.ndarray) -> np.ndarray:
    k = residual.shape[0]
    return residual - (residual.sum(0) - residual) / (k - 1)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--mean-bits", type=int, nargs="+", default=[Precision.mean_bits])
    parser.add_argument("--var-bits", type=int, nargs="+", default=[Precision.var_bits])
    parser.add_argument("--residual-bits", type=int, nargs="+", default=[Precision.residual_bits])
    parser.add_argument("--center", action="store_true", help="measure bytes of deviations from per-neuron references")
    parser.add_argument("--size-langs", type=int, default=24, help="languages whose rounded files are written for bytes")
    args = parser.parse_args()
    layout = Layout(args.atlas)
    row = read_model(layout, args.model)
    langs = layout.stats_langs(args.model, "activations")
    started = time.time()
    mean, var, tokens = load_moments(layout, row, langs)
    residual, _ = load_residual(layout, row, langs)
    k, size = len(langs), round(row.n_layers * row.ffn_width * RATE)
    print(f"{args.model}: {k} languages, {row.n_layers}x{row.ffn_width} neurons, sets of {size}; loaded in "
          f"{time.time() - started:.0f} s", flush=True)
    flat = (k, -1)
    exact_md = top(mean_diff(mean.reshape(flat)), size)
    exact_t = top(welch_t(mean.reshape(flat), var.reshape(flat), tokens), size)
    exact_dm = diffmean(residual)
    for bits_m, bits_v, bits_r in zip(args.mean_bits, args.var_bits, args.residual_bits):
        m = round_to_step(mean, layer_steps(mean, bits_m))
        v = round_significant(var, bits_v)
        r = round_to_step(residual, layer_steps(residual, bits_r))
        j_md = jaccard(exact_md, top(mean_diff(m.reshape(flat)), size))
        j_t = jaccard(exact_t, top(welch_t(m.reshape(flat), v.reshape(flat), tokens), size))
        cos = cosine(exact_dm, diffmean(r))
        if args.center:  # bytes of deviations from a per-model reference (the reference itself is one file)
            centre_m, ratio_v = mean.mean(0).astype(np.float32), np.exp2(np.round(np.log2(np.maximum(var, 1e-30)).mean(0)))
            centre_r = residual.mean(0).astype(np.float32)
            sizes = file_bytes(row, langs[: args.size_langs], tokens, m - centre_m, round_significant(v / ratio_v, bits_v),
                               r - round_to_step(centre_r, layer_steps(residual, bits_r)), layout)
        else:
            sizes = file_bytes(row, langs[: args.size_langs], tokens, m, v, r, layout)
        print(f"mean_bits {bits_m} var_bits {bits_v} residual_bits {bits_r}: Jaccard mean_diff min {j_md.min():.4f} "
              f"(worst {langs[int(j_md.argmin())]}; {int((j_md < 0.98).sum())} langs < 0.98), t min {j_t.min():.4f} "
              f"(worst {langs[int(j_t.argmin())]}; {int((j_t < 0.98).sum())} < 0.98); DiffMean cosine min "
              f"{np.nanmin(cos):.6f}; bytes/statistic activations {sizes[0]:.3f}, residual {sizes[1]:.3f}; "
              f"per language {sizes[2] / 1e3:.1f} kB -> {sizes[2] * k / 1e6:.1f} MB for {k}", flush=True)


def file_bytes(row, langs, tokens, mean, var, residual, layout) -> tuple[float, float, float]:
    """Bytes per statistic of the rounded activations and residual files of ``langs``, and bytes per language."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = AtlasWriter(tmp)
        writer.add_model(row)
        act = res = 0
        for i, lang in enumerate(langs):
            fired, _ = load_counts(layout, row, [lang])
            writer.add_counts(row.model, lang, fired.reshape(row.n_layers, row.ffn_width), int(tokens[i]),
                              moments=(mean[i], var[i]), residual=residual[i])
            act += os.path.getsize(writer.layout.file("activations", model=row.model, lang=lang))
            res += os.path.getsize(writer.layout.file("residual", model=row.model, lang=lang))
    n = len(langs)
    return act / (n * 2 * mean[0].size), res / (n * residual[0].size), (act + res) / n


if __name__ == "__main__":
    main()
