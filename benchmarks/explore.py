"""Time the explorer site of the embedded atlas: a full build, a rerun with nothing changed, and a rerun after one
model's files changed, side by side in one run (wall and CPU seconds).

    python benchmarks/explore.py [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.explore import build_site


def timed(label: str, root: Path, out: Path, **kw) -> float:
    wall, cpu = time.perf_counter(), time.process_time()
    report = build_site(root, out, **kw)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<36} {wall:7.2f} s wall {cpu:7.2f} s CPU   {report.written:4d} pages written, "
          f"{report.unchanged:4d} unchanged")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="site folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "atlas"
        shutil.copytree(EMBEDDED, root)  # a copy, so that one model's files can be touched
        out = args.out or Path(tmp) / "site"
        full = timed("full (458 + 462 languages, 2 models)", root, out, force=True)
        same = timed("rerun, nothing changed", root, out)
        shard = next((root / "counts" / "model=smollm2-135m").rglob("counts.parquet"))
        os.utime(shard)  # a rewritten shard of one model: only its pages are regenerated
        one = timed("rerun, smollm2-135m changed", root, out)
        pages = sum(1 for _ in out.rglob("*.html"))
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        print(f"site: {pages} pages, {size:.0f} MiB; nothing changed / full = {same / full:.3f}, "
              f"one model changed / full = {one / full:.2f}")


if __name__ == "__main__":
    main()
