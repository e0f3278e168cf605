"""Query benchmark at Llama-3.1-8B scale: 32 layers × 14336 neurons × 200 languages of synthetic counts.

    python benchmarks/query.py [--root /tmp/na-bench-8b] [--langs 200]

Prints bytes per statistic, cold open + first query in a fresh process, warm query p50, a 12-language
``among=`` recompute against a dense numpy baseline, and the full overlap matrix.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from langcodes.data_dicts import LANGUAGE_ALPHA3, LIKELY_SUBTAGS

import neuron_atlas as na
from neuron_atlas.languages import tags as langs_mod
from neuron_atlas.testing import SAMPLE_LANGS, make_atlas

L, D = 32, 14336


def language_tags(n: int) -> list[str]:
    tags = list(SAMPLE_LANGS)
    for code in sorted(LANGUAGE_ALPHA3) + sorted(k for k in LIKELY_SUBTAGS if k.isalpha() and len(k) == 3):
        if len(tags) >= n:
            break
        try:
            tag = langs_mod.canonical(code)
        except na.UnknownLanguageError:
            continue
        if tag not in tags:
            tags.append(tag)
    return tags[:n]


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.parquet"))


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def numpy_baseline(root: Path, model: str, langs: list[str], top_rate=0.01, rate=0.95):
    """Dense LAPE as a one-off script would do it: read whole shards, stack [L, d, K], sort, entropy, argsort."""
    cols = []
    for lang in langs:
        t = pq.read_table(root / "counts" / f"model={model}" / f"lang={lang}" / "counts.parquet")
        cols.append(t.column("fired").to_numpy() / t.column("tokens")[0].as_py())
    p = np.stack(cols, axis=-1).reshape(L, D, len(langs))
    flat = np.sort(p.ravel())
    tau = flat[round(flat.size * rate) - 1]
    norm = p / p.sum(-1, keepdims=True)
    norm[np.isnan(norm)] = 0
    ent = -(norm * np.where(norm > 0, np.log(np.where(norm > 0, norm, 1)), 0)).sum(-1)
    ent[(p > tau).sum(-1) == 0] = np.inf
    idx = np.argsort(ent.ravel(), kind="stable")[: round(L * D * top_rate)]
    sel = p.reshape(-1, len(langs))[idx]
    return [idx[sel[:, k] > tau] for k in range(len(langs))]


def bytes_by_budget(tmp: Path) -> list[tuple[int, float]]:
    out = []
    for tokens in (3_000, 30_000, 300_000, 3_000_000):
        root = tmp / f"budget-{tokens}"
        if not root.exists():
            make_atlas(root, model="m", n_layers=L, ffn_width=D, langs=["eng_Latn"], tokens=tokens, finalize=False)
        out.append((tokens, folder_bytes(root / "counts") / (L * D)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, default=Path("/tmp/na-bench-8b"))
    ap.add_argument("--langs", type=int, default=200)
    args = ap.parse_args()
    root, model = args.root, "llama-3.1-8b-synthetic"
    tags = language_tags(args.langs)
    if len(na.open(root).langs_of(model) if (root / "atlas.json").exists() else []) != len(tags):
        shutil.rmtree(root, ignore_errors=True)
        print(f"building synthetic atlas at {root} ({L}×{D}×{len(tags)}) ...", flush=True)
        rng = np.random.default_rng(8)
        tokens = np.exp(rng.uniform(np.log(1e4), np.log(1e5), size=len(tags))).astype(np.int64)
        t0 = time.perf_counter()
        make_atlas(root, model=model, n_layers=L, ffn_width=D, langs=tags, tokens=tokens, seed=8)
        print(f"  built in {time.perf_counter() - t0:.0f} s (tokens/language 10k–100k, log-uniform)")
    atlas = na.open(root)
    n_stats = L * D * len(atlas.langs_of(model))

    counts_b = folder_bytes(root / "counts") / n_stats
    total_b = folder_bytes(root) / n_stats

    cold_code = (
        "import time; t0 = time.perf_counter(); import neuron_atlas as na; "
        f"s = na.open({str(root)!r}).neurons({model!r}, lang='tl', top='1%'); len(s); "
        "print(time.perf_counter() - t0)"
    )
    colds = [float(subprocess.run([sys.executable, "-c", cold_code], capture_output=True, text=True, check=True).stdout)
             for _ in range(5)]
    cold = statistics.median(colds)

    rng = np.random.default_rng(0)
    warm_times = []
    for lang in rng.choice(tags, size=40):
        t, _ = timed(lambda: atlas.neurons(model, lang=str(lang), top="1%"))
        warm_times.append(t)
    warm = statistics.median(warm_times)

    subset = tags[:12]
    t_subset, s = timed(lambda: atlas.neurons(model, among=subset, top="1%"), repeat=3)
    t_numpy, ref = timed(lambda: numpy_baseline(root, model, subset), repeat=3)
    table = s.to_arrow()
    same = all(
        sorted((rows.column("layer").to_numpy().astype(np.int64) * D + rows.column("neuron").to_numpy()).tolist())
        == sorted(ref[k].tolist())
        for k, lang in enumerate(subset)
        for rows in [table.filter(pc.equal(table.column("lang"), lang))]
    )
    t_overlap, m = timed(lambda: atlas.overlap(model), repeat=3)
    budgets = bytes_by_budget(root.parent / (root.name + "-budgets"))

    rows = [
        ("on-disk bytes per (neuron, language) statistic, counts", f"{counts_b:.2f} B", "≤ 2 B", counts_b <= 2),
        ("  ... whole atlas incl. derived tables", f"{total_b:.2f} B", "", None),
        ("cold open + first neurons() (fresh process, incl. import)", f"{cold * 1e3:.0f} ms", "≤ 1500 ms", cold <= 1.5),
        ("warm neurons() p50 (40 random languages)", f"{warm * 1e3:.1f} ms", "≤ 50 ms", warm <= 0.05),
        ("LAPE over a 12-language among= subset", f"{t_subset * 1e3:.0f} ms", "≤ 2000 ms", t_subset <= 2),
        ("  dense numpy baseline, same subset", f"{t_numpy * 1e3:.0f} ms", "", None),
        ("  ratio subset / numpy (same sets: %s)" % same, f"{t_subset / t_numpy:.2f}×", "≤ 1.5×", t_subset / t_numpy <= 1.5),
        (f"full {m.num_rows}×{m.num_rows} overlap matrix", f"{t_overlap * 1e3:.0f} ms", "≤ 2000 ms", t_overlap <= 2),
    ]
    print(f"\nneuron-atlas query benchmark: {L}×{D} neurons × {len(tags)} languages = {n_stats:,} statistics")
    print(f"{'measure':62s} {'value':>10s}  {'target':>10s}  ok")
    for name, value, target, ok in rows:
        print(f"{name:62s} {value:>10s}  {target:>10s}  {'' if ok is None else ('yes' if ok else 'NO')}")
    print("\nbytes per count vs tokens per language (one 32×14336 shard, lossless):")
    for tokens, b in budgets:
        print(f"  {tokens:>9,} tokens: {b:.2f} B")


if __name__ == "__main__":
    main()
