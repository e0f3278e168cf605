"""Queries on the format-v2 statistics against today's LAPE recomputation, side by side in one run, on a synthetic
v2 atlas of the embedded models' shapes (or on any atlas given with --atlas).

    python benchmarks/statistics_query.py [--atlas DIR] [--model gemma-3-270m] [--repeat 5] [--hub [--no-speed]]

Prints warm medians: every method over all the model's languages (``size='0.5%'``) next to
``neurons(model, among=<all languages>)`` (LAPE recomputed over the same languages), and ``steering_vector`` warm.
With ``--hub`` (needs olah: OLAH_PYTHON) the atlas is served by olah on loopback, and a lazy ``hf://``
``steering_vector(model, lang, layer=12)`` is measured in bytes: file bytes the filesystem fetched (counted at the
range reads) and everything the client received (through a counting proxy), next to the bound
2 × languages × hidden_size × stored bytes + one footer per file.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pyarrow.parquet as pq

import neuron_atlas as na
from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.maintenance.compact import Precision, compact_atlas
from neuron_atlas.testing import make_atlas

SHAPES = {"gemma-3-270m": (18, 2048, 640), "smollm2-135m": (30, 1536, 576)}  # layers, FFN width, hidden size


def synthetic(root: Path, model: str) -> Path:
    """A synthetic v2 atlas with the embedded model's shape and languages, its statistics rounded as the embedded
    atlas' are (``compact_atlas`` at the default ``Precision``); built once, reused."""
    if (root / "atlas.json").exists():
        return root
    n_layers, width, hidden = SHAPES[model]
    langs = na.open().langs_of(model) if (EMBEDDED / "atlas.json").exists() else 458
    print(f"building a synthetic v2 atlas of {model}'s shape at {root} ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="na-v2-full-") as full:
        make_atlas(full, model=model, n_layers=n_layers, ffn_width=width, langs=langs, tokens=2048, seed=0,
                   stats=True, hidden_size=hidden)
        compact_atlas(full, root, {model: Precision()})
    return root


def interleaved(queries: dict, repeat: int) -> dict[str, float]:
    """Warm median seconds of each query, run in rounds (each query once per round), so that the load of a shared
    machine falls on every query alike."""
    for fn in queries.values():
        fn()  # the first call fills the page cache and the atlas' own caches
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, fn in queries.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def speed(root: Path, model: str, repeat: int) -> None:
    atlas = na.open(root)
    langs = atlas.langs_of(model)
    lang = "tgl_Latn" if "tgl_Latn" in langs else langs[0]
    base = "lape, among=<all> (today's recomputation)"
    queries = {base: lambda: atlas.neurons(model, among=langs)}
    for method in ("lape", "ovr", "mean_diff", "t"):
        queries[f"{method}, size='0.5%', all languages"] = lambda m=method: atlas.neurons(model, method=m, size="0.5%")
    for method in ("mean_diff", "t"):
        queries[f"{method}, size='0.5%', lang={lang!r}"] = \
            lambda m=method: atlas.neurons(model, lang=lang, method=m, size="0.5%")
    got = interleaved(queries, repeat)
    print(f"\n{model}: {len(langs)} languages; warm medians of {repeat} interleaved rounds\n")
    print("| query | seconds | / LAPE among=<all> |\n|---|---:|---:|")
    for name, sec in got.items():
        print(f"| {name} | {sec:.3f} | {sec / got[base]:.2f} |")
    vectors = interleaved({layer: (lambda layer=layer: atlas.steering_vector(model, lang, layer=layer))
                           for layer in (12, None)}, max(repeat, 20))
    print("\n| steering_vector | ms warm |\n|---|---:|")
    for layer, sec in vectors.items():
        print(f"| layer={layer} | {sec * 1e3:.2f} |")
    cold = na.open(root)
    t0 = time.perf_counter()
    cold.steering_vector(model, lang, layer=12)
    print(f"| layer=12, first call on a fresh open (files in the page cache) | {(time.perf_counter() - t0) * 1e3:.1f} |")


def hub_bytes(root: Path, model: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from hub_reads import CountingProxy
    from olah_server import git_commit_folder, materialise, olah_python, start_olah

    from neuron_atlas import hub
    from neuron_atlas.hub import filesystem

    python = olah_python()
    if python is None:
        sys.exit("--hub needs olah: set OLAH_PYTHON to a Python that has it")
    from huggingface_hub import constants

    atlas = na.open(root)
    row, langs = atlas.model(model), atlas.langs_of(model)
    lang = "tgl_Latn" if "tgl_Latn" in langs else langs[0]
    files = sorted((root / "residual" / f"model={model}").glob("lang=*/residual.parquet"))
    meta = pq.read_metadata(files[0])
    stored = meta.schema.to_arrow_schema().field("mean").type.value_type.byte_width
    footer = max(pq.read_metadata(f).serialized_size + 8 for f in files)
    bound = 2 * len(langs) * row.hidden_size * stored + footer * len(files)
    fetched = {"bytes": 0}
    checked = filesystem._classes()[1]
    original = checked._fetch_range

    def counting(self, start, end):
        data = original(self, start, end)
        fetched["bytes"] += len(data)
        return data

    checked._fetch_range = counting
    repo = "bench/v2"
    with tempfile.TemporaryDirectory(prefix="v2-hub-") as tmp:
        base = Path(tmp)
        ops, _ = hub.plan_commit(root, repo)
        ops = [op for op in ops if not op.path_in_repo.startswith("activations/")]  # not read by the query; 0.2 GB
        git_commit_folder(materialise(ops, base / "content"), base / "mirrors" / "datasets" / repo, "v2 atlas")
        server = start_olah(python, base / "mirrors", base / "olah", ranges=True)
        proxy = CountingProxy(("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])))
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{proxy.port}"
        constants.HF_HUB_CACHE = str(base / "cache")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                received0 = proxy.received
                lazy = na.open(f"hf://datasets/{repo}")
                lazy.langs_of(model)
                opened = proxy.received - received0
                fetched["bytes"], received1 = 0, proxy.received
                got = lazy.steering_vector(model, lang, layer=12)
                query_received, query_fetched = proxy.received - received1, fetched["bytes"]
        finally:
            server.stop()
            checked._fetch_range = original
    assert (got == atlas.steering_vector(model, lang, layer=12)).all()
    print(f"\nlazy hf:// steering_vector({model!r}, {lang!r}, layer=12): {len(langs)} languages, hidden_size "
          f"{row.hidden_size}, {stored} bytes per stored float, {len(files)} residual files of "
          f"{sum(f.stat().st_size for f in files) / len(files):,.0f} bytes on average\n")
    print("| bytes | count | / bound |\n|---|---:|---:|")
    print(f"| bound: 2 × {len(langs)} × {row.hidden_size} × {stored} + {len(files)} footers of ≤ {footer:,} | {bound:,} | 1.00 |")
    print(f"| file bytes fetched by the query (range reads) | {query_fetched:,} | {query_fetched / bound:.2f} |")
    print(f"| everything the client received during the query (HTTP, listings) | {query_received:,} | {query_received / bound:.2f} |")
    print(f"| (before it: open and language listing) | {opened:,} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atlas", type=Path, help="a v2 atlas (default: a synthetic one of --model's shape, cached)")
    parser.add_argument("--model", default="gemma-3-270m", choices=sorted(SHAPES))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hub", action="store_true", help="also measure the bytes of a lazy hf:// steering_vector")
    parser.add_argument("--no-speed", action="store_true", help="skip the timings (with --hub: the bytes only)")
    args = parser.parse_args()
    root = args.atlas or synthetic(Path(tempfile.gettempdir()) / f"na-v2-{args.model}", args.model)
    if not args.no_speed:
        speed(root, args.model, args.repeat)
    if args.hub:
        hub_bytes(root, args.model)


if __name__ == "__main__":
    main()
