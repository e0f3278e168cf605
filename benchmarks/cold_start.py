"""Cold start of the CLI's query path against the floor of its two engines (``import duckdb, pyarrow``).

Each command runs ``--repeats`` times in a fresh interpreter, the commands taking turns (so a change of load on a
shared machine falls on every row alike); the table shows the best CPU (user + system) and wall seconds and their
ratios to the floor, all measured in one run. pyarrow (>= 14) imports pandas, when it is installed, on its first
array conversion (``pa.array``, ``Array.to_numpy``, ``pa.scalar``); pandas is therefore not a core dependency, and
the rows "pandas not installed" hide it as an uninstalled package would be. The last row is the library's own query
(``na.open().neurons(...)`` written as CSV, no CLI): what is left above it is the CLI's.

Bytecode: an installed package has its modules compiled (pip writes the ``.pyc`` files at install), so every row runs
with a private bytecode cache (``PYTHONPYCACHEPREFIX``, a temporary folder; ``PYTHONDONTWRITEBYTECODE`` unset), filled
by one untimed run of each row first. ``--source`` measures without it, as an environment with
``PYTHONDONTWRITEBYTECODE=1`` runs an editable install: neuron_atlas compiled from source on every start.

    python benchmarks/cold_start.py [--repeats 7] [--source]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

QUERY = ["neurons", "gemma-3-270m", "--lang", "tl", "--format", "csv"]
HIDE_PANDAS = ("import importlib.abc, sys\n"
               "class NoPandas(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'pandas' or name.startswith('pandas.'):\n"
               "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
               "sys.meta_path.insert(0, NoPandas())\n")
CLI = f"import sys; from neuron_atlas.cli import main; sys.argv = ['neuron-atlas', *{QUERY!r}]; main()"
LIBRARY = ("import io, pyarrow.csv as csv, neuron_atlas as na\n"
           "csv.write_csv(na.open().neurons('gemma-3-270m', lang='tl').to_arrow(), io.BytesIO())\n")


def once(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(CPU, wall) seconds of one ``python -c code`` in a fresh interpreter."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--source", action="store_true",
                        help="no bytecode cache: compile neuron_atlas from source on every start")
    args = parser.parse_args()
    rows = {
        "floor: import duckdb, pyarrow": "import duckdb, pyarrow",
        "floor + import pandas": "import duckdb, pyarrow, pandas",
        f"neuron-atlas {' '.join(QUERY)}": CLI,
        "  the same, pandas not installed": HIDE_PANDAS + CLI,
        "  the library's query alone (no CLI), pandas not installed": HIDE_PANDAS + LIBRARY,
    }
    with tempfile.TemporaryDirectory(prefix="cold-start-pyc-") as cache:
        env = dict(os.environ)
        if not args.source:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = cache
            for code in rows.values():  # fill the cache, untimed
                once(code, env)
        best = {name: (float("inf"), float("inf")) for name in rows}
        for _ in range(args.repeats):
            for name, code in rows.items():
                cpu, wall = once(code, env)
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    floor = best["floor: import duckdb, pyarrow"]
    print("| command | CPU s | ÷ floor | wall s | ÷ floor |\n|---|---:|---:|---:|---:|")
    for name, (cpu, wall) in best.items():
        print(f"| `{name.strip()}` | {cpu:.3f} | {cpu / floor[0]:.2f} | {wall:.3f} | {wall / floor[1]:.2f} |")


if __name__ == "__main__":
    main()
