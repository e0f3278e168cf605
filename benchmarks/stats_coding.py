"""What a reference-coded statistics format would take: entropy of the codes vs set precision, measured.

    python benchmarks/stats_coding.py FULL_ATLAS --model smollm2-135m

FULL_ATLAS holds float64 statistics (a build). Per neuron, a reference (the average over languages) is subtracted;
each language's mean is stored on a coarse grid (2**-coarse of its layer's spread across languages) except the
neurons that could enter a top set (the top ``--tail-mean-diff`` by mean-diff score and ``--tail-t`` by Welch t, for
the default comparison against all other languages), which get a fine grid (2**-12); the coarse roundings go up or
down so that each neuron's sum over languages keeps its value (largest remainder), so the "all others" average loses
no precision. log2 variances likewise (coarse step ``--var-step``, fine 2**-10). Printed: the top-0.5 % sets' Jaccard
against float64 (mean-diff and t, every language as target) and the empirical entropy of the codes (bits per
(mean, variance) pair: a lower bound for any file format, Parquet's byte-stream split + zstd comes within ~15 %).
Also the counts' entropy, plain and against a per-neuron reference rate.
"""
from __future__ import annotations

import argparse

import numpy as np
from stats_precision import jaccard, mean_diff, top, welch_t

from neuron_atlas.format.reader import load_counts, load_moments, read_model
from neuron_atlas.format.layout import Layout

RATE = 0.005


def entropy(codes: np.ndarray) -> float:
    """Empirical entropy (bits per value) of integer codes."""
    _, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def sum_preserving(x: np.ndarray, step: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """``x[lang, ...]`` on multiples of ``step``, floor or ceil so that the sum over languages stays within half a
    step of the true sum (largest remainder); ``fixed`` entries are kept as given and counted in the sum."""
    u = x / step
    low = np.floor(u)
    frac = np.where(fixed, -1.0, u - low)
    need = np.round((x.sum(0) - np.where(fixed, x, 0).sum(0)) / step[0] - np.where(fixed, 0, low).sum(0))
    rank = np.argsort(np.argsort(-frac, axis=0, kind="stable"), axis=0, kind="stable")
    return np.where(fixed, x, (low + ((rank < need[None]) & ~fixed)) * step)


def tail_flags(scores: list[np.ndarray], rates: list[float]) -> np.ndarray:
    """[K, n] True for each language's top ``rate`` of each score."""
    flag = np.zeros(scores[0].shape, bool)
    for score, rate in zip(scores, rates):
        k = int(rate * score.shape[1])
        np.put_along_axis(flag, np.argpartition(-score, k, axis=1)[:, :k], True, axis=1)
    return flag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--coarse", type=int, nargs="+", default=[1, 2], help="coarse mean grid: 2**-BITS of the spread")
    parser.add_argument("--var-step", type=float, default=0.25, help="coarse grid of log2 variance")
    parser.add_argument("--tail-mean-diff", type=float, default=0.02)
    parser.add_argument("--tail-t", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    args = parser.parse_args()
    layout = Layout(args.atlas)
    row = read_model(layout, args.model)
    langs = layout.count_langs(args.model)
    mean, var, tokens = load_moments(layout, row, langs)
    k, n_layers, width = mean.shape
    size = int(round(RATE * n_layers * width))
    flat_mean, flat_var = mean.reshape(k, -1), var.reshape(k, -1)
    md, t = mean_diff(flat_mean), welch_t(flat_mean, flat_var, tokens)
    sets_md, sets_t = top(md, size), top(t, size)
    ref = mean.mean(0)
    spread = np.sqrt(np.square(mean - ref).mean(axis=(0, 2)))[None, :, None]
    log_var = np.log2(np.maximum(var, 1e-300))
    log_ref = log_var.mean(0)
    fine_mean, fine_var = spread * 2.0**-12, 2.0**-10
    print(f"{args.model}: {k} languages, {n_layers} x {width} neurons, sets of {size}")
    print("| tails mean-diff / t | coarse mean | coarse log2 var | min J mean_diff (< 0.98) | min J t (< 0.98) | "
          "bits per pair | MB of codes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    fine = np.round((mean - ref) / fine_mean) * fine_mean
    for tail_t in args.tail_t:
        flag = tail_flags([md, t], [args.tail_mean_diff, tail_t]).reshape(mean.shape)
        for bits in args.coarse:
            coarse = spread * 2.0**-bits
            stored = sum_preserving(np.where(flag, fine, mean - ref), np.broadcast_to(coarse, mean.shape), flag) + ref
            var_codes = np.where(flag, np.round((log_var - log_ref) / fine_var), np.round((log_var - log_ref) / args.var_step))
            stored_var = np.where(var > 0, 2.0 ** (var_codes * np.where(flag, fine_var, args.var_step) + log_ref), 0.0)
            j_md = jaccard(sets_md, top(mean_diff(stored.reshape(k, -1)), size))
            j_t = jaccard(sets_t, top(welch_t(stored.reshape(k, -1), stored_var.reshape(k, -1), tokens), size))
            total = 0.0
            for layer in range(n_layers):  # codes per layer: coarse and fine apart, mean and variance apart
                f = flag[:, layer]
                coarse_codes = np.round((stored - ref)[:, layer] / coarse[0, layer, 0])[~f]
                fine_codes = np.round((mean - ref)[:, layer] / fine_mean[0, layer, 0])[f]
                total += coarse_codes.size * (entropy(coarse_codes) + entropy(var_codes[:, layer][~f]))
                total += fine_codes.size * (entropy(fine_codes) + entropy(var_codes[:, layer][f]))
            p = flag.mean()
            total += flag.size * -(p * np.log2(p) + (1 - p) * np.log2(1 - p))  # which entries are fine
            print(f"| {args.tail_mean_diff:.0%} / {tail_t:.0%} | 2^-{bits} | {args.var_step:g} | {j_md.min():.3f} "
                  f"({(j_md < 0.98).sum()}) | {j_t.min():.3f} ({(j_t < 0.98).sum()}) | {total / flag.size:.2f} | "
                  f"{total / 8e6:.1f} |", flush=True)
    fired, n = load_counts(layout, row, langs)
    fired = fired.reshape(k, n_layers, width).astype(np.float64)
    coded = fired - np.round(n[:, None, None] * (fired.sum(0) / n.sum())[None])
    print(f"counts: {np.mean([entropy(fired[:, i]) for i in range(n_layers)]):.2f} bits per value (per layer), "
          f"{np.mean([entropy(coded[:, i]) for i in range(n_layers)]):.2f} against each neuron's average rate")


if __name__ == "__main__":
    main()
