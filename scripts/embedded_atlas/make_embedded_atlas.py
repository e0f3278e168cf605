"""Make the embedded atlas (neuron_atlas/data/atlas) format v2 from a full-precision build of both models.

    python scripts/embedded_atlas/build_default_atlas.py --out FULL                       # the statistics, float64 (resumable)
    python scripts/embedded_atlas/make_embedded_atlas.py FULL                             # compact, verify, compare; no swap
    python scripts/embedded_atlas/make_embedded_atlas.py FULL --swap                      # ... and replace the embedded atlas

The counts (and so every LAPE answer) are taken from the embedded atlas as it is, bit for bit; FULL gives the v2
statistics of the same languages and tokens, rounded by ``neuron_atlas.maintenance.compact`` at ``--precision`` (per model:
mean bits, variance bits, residual bits; 'residual' keeps the residual means only; 'none' no statistics). The new
atlas is written next to the old one, verified, measured, and swapped in only with ``--swap`` and when it fits
``--max-mb`` (the package budget). benchmarks/stats_precision.py measures what each precision costs in set
Jaccard and DiffMean cosine (benchmarks/RESULTS.md, "Stored precision and size").
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.maintenance.compact import Precision, compact_atlas
from neuron_atlas.format.reader import read_model, read_shard
from neuron_atlas.format.layout import Layout
from neuron_atlas.format.verify import verify

# What fits the 100 MB package (about 77 MB): the residual means of both models at the bits that keep every DiffMean
# vector at cosine >= 0.999, no act(gate) moments. The set targets (Jaccard >= 0.98 for mean_diff and t at
# 0.5 %) need "gemma-3-270m=9,10,5 smollm2-135m=8,9,4", about 210 MB in all (benchmarks/RESULTS.md,
# "Stored precision and size").
DEFAULT = "gemma-3-270m=residual:5 smollm2-135m=residual:4"


def parse(spec: str) -> Precision | None:
    """'none', 'residual[:BITS]' or 'MEAN,VAR,RESIDUAL' bits."""
    if spec == "none":
        return None
    if spec.startswith("residual"):
        return Precision(residual_bits=int(spec.partition(":")[2] or Precision.residual_bits), moments=False)
    mean, var, residual = (int(x) for x in spec.split(","))
    return Precision(mean, var, residual)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", nargs="+", help="full-precision v2 builds of the embedded models (build_default_atlas.py "
                        "--out; one folder per model or one for both)")
    parser.add_argument("--out", default=str(EMBEDDED), help="the atlas to replace (default: the embedded one)")
    parser.add_argument("--precision", nargs="+", default=DEFAULT.split(),
                        help="MODEL=MEAN,VAR,RESIDUAL bits, MODEL=residual[:BITS] or MODEL=none (default: %(default)s)")
    parser.add_argument("--max-mb", type=float, default=100.0, help="refuse to swap in an atlas larger than this")
    parser.add_argument("--swap", action="store_true", help="replace --out with the new atlas when it fits")
    args = parser.parse_args()
    out = Path(args.out)
    precision = {m: parse(p) for m, p in (s.split("=", 1) for s in args.precision)}
    old, builds = Layout(str(out)), {slug: Layout(f) for f in args.full for slug in Layout(f).model_slugs()}
    missing = sorted(set(old.model_slugs()) - set(builds))
    if missing:
        raise SystemExit(f"no build of {', '.join(missing)} among {args.full}; every model of {out} needs one")
    for slug, full in builds.items():  # where the rebuild's counts differ from the kept ones
        row = read_model(old, slug)
        same = sum(np.array_equal(read_shard(old, row, t)[0], read_shard(full, row, t)[0]) for t in old.count_langs(slug))
        print(f"{slug}: rebuilt counts equal the embedded ones in {same} of {len(old.count_langs(slug))} shards "
              "(the embedded counts are kept either way)")
    new = out.with_name(out.name + ".v2-new")
    if new.exists():
        shutil.rmtree(new)
    written = {}
    for folder in args.full:
        written |= compact_atlas(folder, new, precision, counts_from=out)
    problems = verify(new)
    size = sum(p.stat().st_size for p in new.rglob("*") if p.is_file())
    print(f"wrote {new}: {written}; {len(problems)} problems; {size / 1e6:.1f} MB "
          f"({size / 2**20:.1f} MiB; budget {args.max_mb:g} MB)")
    for p in problems[:10]:
        print("  ", p)
    if problems or size > args.max_mb * 1e6:
        raise SystemExit(f"not swapped: {'problems' if problems else 'over the size budget'}; {new} kept for a look")
    if args.swap:
        retired = out.with_name(out.name + ".v1-old")
        out.rename(retired)
        new.rename(out)
        shutil.rmtree(retired)
        print(f"swapped into {out}")


if __name__ == "__main__":
    main()
