"""Build the embedded default atlas: gemma-3-270m and smollm2-135m over every UDHR language with enough text.

    python builders/build_default_atlas.py --out /work/atlas-build/atlas 2>&1 | tee -a /work/atlas-build/build.log
Resumable: rerun the same command after an interruption and only the missing (model, language) shards are counted.
Models built in separate folders (to run them side by side) are merged with ``--merge-from FOLDER``.
The token budgets were chosen from the measured CPU throughput (see benchmarks/RESULTS.md, "Builder").
"""
from __future__ import annotations

import argparse
import time

from rich.console import Console

from neuron_atlas.build.run import build
from neuron_atlas.storage import Layout, read_parquet
from neuron_atlas.writer import AtlasWriter

MODELS = ("gemma-3-270m", "smollm2-135m")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="atlas folder (created or extended)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--langs", default="all")
    parser.add_argument("--tokens-per-language", type=int, default=1024)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--min-tokens", type=int, default=None, help="skip languages with fewer tokens (default: half the budget)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--merge-from", help="copy the models and count shards of this atlas into --out, then exit")
    args = parser.parse_args()
    console = Console(stderr=True)
    if args.merge_from:
        merge(args.merge_from, args.out, console)
        return
    for model in args.models.split(","):
        start = time.time()
        report = build(model, "udhr", args.langs, out=args.out, tokens_per_language=args.tokens_per_language,
                       seq_len=args.seq_len, batch_size=args.batch_size, dtype=args.dtype, device=args.device,
                       min_tokens=args.min_tokens, console=console)
        console.print(
            f"DONE {model}: built {len(report.built)}, already present {len(report.existing)}, skipped "
            f"{len(report.skipped)} ({', '.join(report.skipped)}); {sum(report.built.values()):,} tokens at "
            f"{report.tokens_per_second:,.0f} tok/s; wall {time.time() - start:,.0f} s", highlight=False)


def merge(source: str, out: str, console: Console) -> None:
    """Add every model of the atlas ``source`` that ``out`` lacks (never mixing two builds' provenance), with its shards."""
    src, writer = AtlasWriter(source), AtlasWriter(out)
    present = set(writer.layout.model_slugs())
    for slug in Layout(source).model_slugs():
        if slug in present:
            console.print(f"kept {slug}: {out} has its own build of it; not merged")
            continue
        writer.add_model(src.model(slug))
        row = src.model(slug)
        tags = [t for t in src.layout.count_langs(slug) if not writer.has_counts(slug, t)]
        for tag in tags:
            table = read_parquet(src.layout.counts(slug, tag), "counts")
            fired = table["fired"].to_numpy().reshape(row.n_layers, row.ffn_width)
            writer.add_counts(slug, tag, fired, int(table["tokens"][0].as_py()))
        writer.finalize(slug)
        console.print(f"merged {slug}: {len(tags)} shards from {source} into {out}")


if __name__ == "__main__":
    main()
