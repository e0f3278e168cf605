"""Cold start of the CLI's query path against the floor of its two engines (``import duckdb, pyarrow``).

Each command runs ``--repeats`` times in a fresh interpreter; the table shows the best CPU (user + system) and wall
seconds and their ratios to the floor, all measured in one run. pyarrow (>= 14) imports pandas, when it is
installed, on its first array conversion (``pa.array``, ``Array.to_numpy``, ``pa.scalar``); pandas is therefore
not a core dependency, and the row "pandas not installed" hides it as an uninstalled package would be.

    python benchmarks/cold_start.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

QUERY = ["neurons", "gemma-3-270m", "--lang", "tl", "--format", "csv"]
HIDE_PANDAS = ("import importlib.abc, sys\n"
               "class NoPandas(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'pandas' or name.startswith('pandas.'):\n"
               "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
               "sys.meta_path.insert(0, NoPandas())\n")
CLI = f"import sys; from neuron_atlas.cli import main; sys.argv = ['neuron-atlas', *{QUERY!r}]; main()"


def measure(code: str, repeats: int) -> tuple[float, float]:
    """Best (CPU, wall) seconds of ``python -c code`` over ``repeats`` fresh interpreters."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        best = (min(best[0], cpu), min(best[1], wall))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = {
        "floor: import duckdb, pyarrow": "import duckdb, pyarrow",
        "floor + import pandas": "import duckdb, pyarrow, pandas",
        f"neuron-atlas {' '.join(QUERY)}": CLI,
        "  the same, pandas not installed": HIDE_PANDAS + CLI,
    }
    results = {name: measure(code, args.repeats) for name, code in rows.items()}
    floor = results["floor: import duckdb, pyarrow"]
    print(f"| command | CPU s | ÷ floor | wall s | ÷ floor |\n|---|---:|---:|---:|---:|")
    for name, (cpu, wall) in results.items():
        print(f"| `{name.strip()}` | {cpu:.3f} | {cpu / floor[0]:.2f} | {wall:.3f} | {wall / floor[1]:.2f} |")


if __name__ == "__main__":
    main()
