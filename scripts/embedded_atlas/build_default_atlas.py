"""Build the embedded default atlas: gemma-3-270m and smollm2-135m over every UDHR language with enough text.

    python scripts/embedded_atlas/build_default_atlas.py --out ATLAS            # both models, the settings the embedded atlas has
    python scripts/embedded_atlas/build_default_atlas.py --out ATLAS --models smollm2-135m --tokens-per-language 2048

Resumable: rerun the same command after an interruption and only the missing (model, language) shards are counted.
Models built in separate folders (to run them side by side) are joined with ``neuron-atlas merge SOURCE ATLAS``.
The build records format v2 (act(gate) moments and residual means, float64) beside the counts; the embedded atlas
is made from it by ``scripts/embedded_atlas/make_embedded_atlas.py ATLAS``, which keeps the embedded counts bit for bit and rounds
the statistics to fit the package (benchmarks/RESULTS.md, "Stored precision and size").
Each model's settings are the ones its embedded build recorded (see ``neuron-atlas models``); the budgets were
chosen from the measured CPU throughput (benchmarks/RESULTS.md, "Builder") and the 64 MB size of the package.
"""
from __future__ import annotations

import argparse
import time

from rich.console import Console

from neuron_atlas.builder.run import build

# Per model: the build settings of the embedded atlas (tokens per language, sequence length).
MODELS = {
    "gemma-3-270m": {"tokens_per_language": 2048, "seq_len": 512},
    "smollm2-135m": {"tokens_per_language": 512, "seq_len": 128},
}
COMMON = {"batch_size": 8, "dtype": "bfloat16", "min_tokens": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="atlas folder (created or extended)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ", ".join(MODELS))
    parser.add_argument("--langs", default="all")
    parser.add_argument("--tokens-per-language", type=int, help="override every model's budget")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    console = Console(stderr=True)
    for model in args.models.split(","):
        settings = {**COMMON, **MODELS[model]}
        if args.tokens_per_language is not None:
            settings["tokens_per_language"] = args.tokens_per_language
        start = time.time()
        report = build(model, "udhr", args.langs, out=args.out, device=args.device, console=console, **settings)
        console.print(
            f"DONE {model}: built {len(report.built)}, already present {len(report.existing)}, skipped "
            f"{len(report.skipped)} ({', '.join(report.skipped)}); {sum(report.built.values()):,} tokens at "
            f"{report.tokens_per_second:,.0f} tok/s; wall {time.time() - start:,.0f} s", highlight=False)


if __name__ == "__main__":
    main()
