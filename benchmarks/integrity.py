"""What the checks on open cost: cold open + first query before and after, side by side in one run.

    python benchmarks/integrity.py [--root /tmp/na-bench-8b] [--before-rev REV] [--repeat 5]

"Before" is the package as of ``--before-rev`` (default: the commit before content fingerprints came in), unpacked
with ``git archive`` into a temporary folder; "after" is this checkout. Both read the same files (the old code ignores
the fingerprint in the footers). Each measure runs in a fresh process, import included, alternating before/after,
and the median of ``--repeat`` runs is reported with the ratio after / before. Atlases: the embedded one and the
32 × 14336 × 200 synthetic atlas of ``benchmarks/query.py`` (built once if missing).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

NEURONS = ("import time; t0 = time.perf_counter(); import neuron_atlas as na; "
           "s = na.open({root!r}).neurons({model!r}, lang='tl', top='1%'); len(s); print(time.perf_counter() - t0)")
SQL = ("import time, warnings; warnings.simplefilter('ignore'); t0 = time.perf_counter(); import neuron_atlas as na; "
       "t = na.open({root!r}).sql('SELECT layer, neuron, p FROM lape WHERE model = ? AND lang = ?', [{model!r}, 'tgl_Latn']); "
       "t.num_rows; print(time.perf_counter() - t0)")


def before_checkout(rev: str | None) -> tuple[Path, str]:
    """The package as of ``rev`` in a temporary folder (nothing in this repository is touched)."""
    if rev is None:
        added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--",
                                "neuron_atlas/fingerprint.py"], capture_output=True, text=True, check=True).stdout.split()
        rev = f"{added[-1]}^"
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], capture_output=True, text=True,
                         check=True).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"na-before-{sha}"
    if not (folder / "neuron_atlas" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "neuron_atlas"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder, sha


def cold(code: str, pythonpath: Path) -> tuple[float, float]:
    """(wall seconds the code reports, CPU seconds of the whole process): CPU time is what a busy machine
    disturbs least, so both are kept."""
    env = {"PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return float(out.stdout.strip().splitlines()[-1]), cpu


def synthetic(root: Path) -> Path:
    """The 32 × 14336 × 200 atlas of benchmarks/query.py, built with this checkout's writer if missing."""
    import numpy as np
    from query import D, L, language_tags

    import neuron_atlas as na
    from neuron_atlas.testing import make_atlas

    model, tags = "llama-3.1-8b-synthetic", language_tags(200)
    if not ((root / "atlas.json").exists() and len(na.open(root).langs_of(model)) == len(tags)):
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        rng = np.random.default_rng(8)
        tokens = np.exp(rng.uniform(np.log(1e4), np.log(1e5), size=len(tags))).astype(np.int64)
        make_atlas(root, model=model, n_layers=L, ffn_width=D, langs=tags, tokens=tokens, seed=8)
    return root


def in_process(root: Path, model: str) -> dict[str, float]:
    """Where the time of the checks on open goes (this checkout, warm imports, best of 3)."""
    import pyarrow.parquet as pq

    from neuron_atlas.format import containment
    from neuron_atlas.format import fingerprint
    from neuron_atlas.format.layout import Layout
    from neuron_atlas.format.verify import check_atlas, check_model

    layout, files = Layout(str(root)), sorted(root.rglob("*.parquet"))
    footers = [pq.read_metadata(f) for f in files]

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return {
        "symlink walk (containment.escapes)": best(lambda: containment.escapes(root)),
        f"fingerprints of all {len(files)} footers (hashing only)": best(
            lambda: [fingerprint.digest(md, fingerprint.identity(f)) for md, f in zip(footers, files)]),
        "checks of one model's derived tables (as neurons() runs them)": best(
            lambda: check_model(layout, model, shards=False)),
        "checks of every file (as sql() runs them)": best(lambda: check_atlas(layout)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("/tmp/na-bench-8b"))
    ap.add_argument("--before-rev", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from neuron_atlas.atlas import EMBEDDED

    before, sha = before_checkout(args.before_rev)
    atlases = [("embedded (2 models, 927 files)", EMBEDDED, "gemma-3-270m"),
               ("synthetic 32×14336×200", synthetic(args.root), "llama-3.1-8b-synthetic")]
    print(f"before: {sha} ({before}); after: this checkout; median of {args.repeat} fresh processes each\n")
    print("| atlas | first query (fresh process, import included) | before | after | after / before | CPU before | "
          "CPU after | CPU after / before |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, root, model in atlases:
        for what, code in (("open + first neurons()", NEURONS), ("open + first sql()", SQL)):
            code = code.format(root=str(root), model=model)
            cold(code, ROOT), cold(code, before)  # warm the page cache for both
            b, a = [], []
            for _ in range(args.repeat):
                b.append(cold(code, before))
                a.append(cold(code, ROOT))
            mb, ma = (statistics.median(x for x, _ in runs) for runs in (b, a))
            cb, ca = (statistics.median(c for _, c in runs) for runs in (b, a))
            print(f"| {name} | {what} | {mb * 1e3:.0f} ms | {ma * 1e3:.0f} ms | {ma / mb:.2f}× | {cb * 1e3:.0f} ms | "
                  f"{ca * 1e3:.0f} ms | {ca / cb:.2f}× |", flush=True)
    print("\n| atlas | check (this checkout, in process, best of 3) | time |")
    print("|---|---|---:|")
    for name, root, model in atlases:
        for what, seconds in in_process(root, model).items():
            print(f"| {name} | {what} | {seconds * 1e3:.1f} ms |", flush=True)


if __name__ == "__main__":
    main()
