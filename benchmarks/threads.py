"""CPU build throughput by torch threads and dtype, side by side in one run: the same real model (smollm2-135m via
the project's loader), corpus and languages built at 1 thread, 2 threads, and the default (``--threads`` unset:
the idle cores), interleaved over repeats, plus one float32-vs-bfloat16 pair at the default threads.

    PYTHONPATH=. python benchmarks/threads.py --model smollm2-135m --langs tl,id --tokens 512 --repeats 3

Prints counted tokens per second (forward passes only: BuildReport.tokens_per_second) and the ratios to 1 thread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

from neuron_atlas.builder.run import build
from neuron_atlas.corpus import open_corpus
from neuron_atlas.modeling.load import load_packaged
from neuron_atlas.modeling.threads import idle_cores, usable_cores


def one(loaded, corpus, langs: str, tokens: int, seq_len: int, batch: int, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as out:
        report = build(loaded, corpus, langs, out=out, slug="bench", tokens_per_language=tokens, seq_len=seq_len,
                       batch_size=batch, threads=threads, progress=False)
    return report.tokens_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--langs", default="tl,id")
    ap.add_argument("--tokens", type=int, default=512, help="tokens per language")
    ap.add_argument("--bf16-tokens", type=int, default=128, help="tokens per language of the bfloat16 build")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    corpus = open_corpus("udhr")
    started = time.perf_counter()
    load = os.getloadavg()[0]
    default = idle_cores()
    f32 = load_packaged(args.model, "float32")

    def run(loaded, threads, tokens=args.tokens):
        return one(loaded, corpus, args.langs, tokens, args.seq_len, args.batch_size, threads)

    run(f32, 1, 64)  # warm-up: tokenizer, allocator, UDHR parse
    rates: dict[str, list[float]] = {"1 thread": [], "2 threads": [], f"default (idle cores: {default})": []}
    for _ in range(args.repeats):
        for name, threads in zip(rates, (1, 2, None)):
            rates[name].append(run(f32, threads))
    bf16 = load_packaged(args.model, "bfloat16")
    pair = {"float32": run(f32, None, args.bf16_tokens), "bfloat16": run(bf16, None, args.bf16_tokens)}

    table = Table(title=f"{args.model} CPU build, {args.langs} x {args.tokens} tokens, seq {args.seq_len}, batch "
                        f"{args.batch_size}; {usable_cores()} cores, load average {load:.1f} at start")
    for col in ("setting", "tok/s (median)", "runs", "÷ 1 thread"):
        table.add_column(col)
    base = statistics.median(rates["1 thread"])
    for name, values in rates.items():
        med = statistics.median(values)
        table.add_row(name, f"{med:,.0f}", ", ".join(f"{v:,.0f}" for v in values), f"{med / base:.2f}")
    for name, value in pair.items():
        table.add_row(f"{name}, default threads, {args.bf16_tokens} tok/lang", f"{value:,.0f}", "1",
                      f"{value / base:.2f}")
    Console().print(table)
    print(f"bfloat16 ÷ float32: {pair['bfloat16'] / pair['float32']:.2f}; total {time.perf_counter() - started:.0f} s; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
