"""Store the moment methods' rankings in the embedded atlas from a full-precision build, and check them.

    python scripts/embedded_atlas/build_default_atlas.py --out FULL        # float64 act(gate) moments of both models
    python scripts/embedded_atlas/add_method_ranks.py FULL                 # write method_ranks, recompress, compare

The embedded atlas leaves the act(gate) moments out (its size budget); ``neuron_atlas.methods.stored`` ranks every
language's neurons under each moment method (``mean_diff``, ``t``) against all the model's languages, to 1 % of
L·d, from FULL's moments, and writes the rankings beside the embedded atlas' LAPE tables; every file of the
embedded atlas is then rewritten at zstd level 19 (the same rows, ~4 % fewer bytes: room for the rankings within the
package budget). Then every language's
``neurons(method=..., size=...)`` at each checked size is asked of both atlases: the picks must be the same
neurons (Jaccard 1.0) with the same float64 scores, and the table prints the count of languages compared and any
that differ, with the file size added.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow.compute as pc

import neuron_atlas as na
from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.format.layout import Layout
from neuron_atlas.maintenance.compact import recompress_atlas
from neuron_atlas.methods.stored import ranked_methods, write_method_ranks

SIZES = ("0.5%", "1%", 50)


def compare(full: na.Atlas, embedded: na.Atlas, model: str, method: str, size) -> tuple[int, list[str]]:
    """(languages compared, languages whose picks or scores differ) for one method and size."""
    langs, differ = embedded.langs_of(model), []
    # every language in one pass over the moments, compared against the embedded atlas' languages (a rebuild may
    # count a few more: a lower minimum of tokens)
    a = full.neurons(model, method=method, size=size, among=langs).to_arrow()
    b = embedded.neurons(model, method=method, size=size).to_arrow()
    for lang in langs:
        x = a.filter(pc.equal(a.column("lang"), lang))
        y = b.filter(pc.equal(b.column("lang"), lang))
        same_neurons = x.select(["layer", "neuron"]).equals(y.select(["layer", "neuron"]))
        same_scores = np.array_equal(x.column("score").to_numpy(), y.column("score").to_numpy())
        if not (same_neurons and same_scores):
            differ.append(lang)
    return len(langs), differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("full", help="a full-precision build of the embedded models (build_default_atlas.py --out)")
    parser.add_argument("--models", default="gemma-3-270m,smollm2-135m")
    args = parser.parse_args()
    source, out = Layout(args.full), Layout(str(EMBEDDED))
    for model in args.models.split(","):
        start = time.perf_counter()
        rows = write_method_ranks(source, out, model)
        size = out.size(out.file("method_ranks", model=model))
        print(f"{model}: {rows:,} rows of {', '.join(ranked_methods())} in {size / 1e6:.2f} MB "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    before, after = recompress_atlas(EMBEDDED)
    print(f"embedded atlas recompressed: {before / 1e6:.2f} MB -> {after / 1e6:.2f} MB of table files", flush=True)
    full, embedded = na.open(args.full), na.open()
    print("\n| model | method | size | languages | differ from the full build |\n|---|---|---|---:|---|")
    for model in args.models.split(","):
        for method in ranked_methods():
            for size in SIZES:
                n, differ = compare(full, embedded, model, method, size)
                said = f"{len(differ)}: {', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}" if differ else "none"
                print(f"| {model} | {method} | {size} | {n} | {said} |", flush=True)


if __name__ == "__main__":
    main()
