"""CPU throughput by torch threads and dtype, side by side in one run: the same real model (smollm2-135m via
the project's loader), corpus and languages built at 1 thread, 2 threads, and the default (``--threads`` unset:
the idle cores), interleaved over repeats, plus one float32-vs-bfloat16 pair at the default threads.

    PYTHONPATH=. python benchmarks/threads.py --model smollm2-135m --langs tl,id --tokens 512 --repeats 3

Prints counted tokens per second (forward passes only: BuildReport.tokens_per_second) and the ratios to 1 thread.

The other torch entry points follow the same policy (``modeling.threads``); ``--tasks`` times them the same way, at
1 thread, 2 threads and the default, interleaved, wall-clock seconds per call (the neighbours' load is what the
policy answers to, so CPU time would hide it):

  finetune      one ``SubnetworkTrainer`` step (forward, backward, AdamW) on the tl set of the embedded atlas,
                ``--ft-batch`` UDHR sequences of ``--ft-seq`` tokens (``train_runtime`` / steps)
  steer         ``steer(text=...)``: mean activations of the tl set over ``--steer-tokens`` UDHR Tagalog tokens
  deactivation  ``deactivation_matrix`` of the tl and id sets on ``--deact-tokens`` tokens of each

    PYTHONPATH=. python benchmarks/threads.py --tasks finetune,steer,deactivation --repeats 3

Prints the median seconds of each setting and the default's median divided by the best setting's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from neuron_atlas.builder.run import build
from neuron_atlas.corpus import open_corpus
from neuron_atlas.modeling.load import load_packaged
from neuron_atlas.modeling.threads import idle_cores, resolve_threads, usable_cores

TASKS = ("build", "finetune", "steer", "deactivation")


def one(loaded, corpus, langs: str, tokens: int, seq_len: int, batch: int, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as out:
        report = build(loaded, corpus, langs, out=out, slug="bench", tokens_per_language=tokens, seq_len=seq_len,
                       batch_size=batch, threads=threads, progress=False)
    return report.tokens_per_second


def entry_points(loaded, corpus, args) -> dict[str, Callable[[int | None], float]]:
    """Per task, a call at ``threads`` (None: the policy's default) returning its wall-clock seconds."""
    import transformers

    import neuron_atlas as na
    from neuron_atlas.finetune import SubnetworkTrainer, subnetwork
    from neuron_atlas.interventions.evaluate import deactivation_matrix
    from neuron_atlas.interventions.hooks import steer

    model, tok = loaded.model, loaded.tokenizer
    neurons = na.open().neurons(args.model, ["tl", "id"], size=200)
    text = {lang: "\n".join(corpus.texts(lang)) for lang in ("tl", "id")}
    ids = tok(text["tl"], add_special_tokens=False)["input_ids"]
    rows = [ids[i * args.ft_seq:(i + 1) * args.ft_seq] for i in range(args.ft_batch * 4)]
    data = [{"input_ids": r, "labels": r} for r in rows]
    out: dict[str, Callable[[int | None], float]] = {}
    if "finetune" in args.tasks:
        sub = subnetwork(model, neurons, lang="tl")
        sub.model.train()
        scratch = tempfile.mkdtemp(prefix="threads-bench-")
        train_args = transformers.TrainingArguments(output_dir=scratch, max_steps=args.ft_steps, report_to=[],
                                                    per_device_train_batch_size=args.ft_batch, save_strategy="no",
                                                    use_cpu=True, logging_strategy="no", learning_rate=1e-4,
                                                    disable_tqdm=True)

        def finetune(threads):
            trainer = SubnetworkTrainer(model=sub.model, args=train_args, train_dataset=data, threads=threads)
            trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # no metrics dict per call
            return trainer.train().metrics["train_runtime"] / args.ft_steps

        out["finetune"] = finetune
    if "steer" in args.tasks:
        def steering(threads):
            started = time.perf_counter()
            steer(model, neurons, to="tl", text=text["tl"], tokenizer=tok, seq_len=128, max_tokens=args.steer_tokens,
                  threads=threads)
            return time.perf_counter() - started

        out["steer"] = steering
    if "deactivation" in args.tasks:
        def deactivation(threads):
            started = time.perf_counter()
            deactivation_matrix(model, neurons, text, tok, seq_len=128, max_tokens=args.deact_tokens,
                                progress=False, threads=threads)
            return time.perf_counter() - started

        out["deactivation"] = deactivation
    return out


def time_entry_points(loaded, corpus, args) -> None:
    """The non-build tasks at 1, 2 and the default threads, interleaved (each repeat runs every setting in turn,
    starting from a different one), one warm-up call each first."""
    calls = entry_points(loaded, corpus, args)
    settings = {"1 thread": 1, "2 threads": 2, "default": None}
    seconds = {(task, name): [] for task in calls for name in settings}
    picked: dict[str, list[int]] = {task: [] for task in calls}
    for task, call in calls.items():
        call(1)  # warm-up: tokenizer, allocator, the optimizer's first step
    order = list(settings)
    for repeat in range(args.repeats):
        for task, call in calls.items():
            for name in order[repeat % 3:] + order[:repeat % 3]:
                if settings[name] is None:
                    picked[task].append(resolve_threads(None))  # what the policy chose just before the call
                seconds[task, name].append(call(settings[name]))
    table = Table(title=f"{args.model} CPU entry points, wall seconds per call (median of {args.repeats}, "
                        f"interleaved); {usable_cores()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    for col in ("task", "1 thread: s (runs)", "2 threads: s (runs)", "default: s (runs)", "default picked",
                "default ÷ best"):
        table.add_column(col)
    for task in calls:
        med = {name: statistics.median(seconds[task, name]) for name in settings}
        best = min(med["1 thread"], med["2 threads"])
        table.add_row(task, *(f"{med[n]:.2f} ({', '.join(f'{v:.1f}' for v in seconds[task, n])})" for n in settings),
                      ", ".join(map(str, picked[task])), f"{med['default'] / best:.2f}")
    Console(width=200).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--langs", default="tl,id")
    ap.add_argument("--tokens", type=int, default=512, help="tokens per language")
    ap.add_argument("--bf16-tokens", type=int, default=128, help="tokens per language of the bfloat16 build")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default="build", help=f"comma-separated, of {', '.join(TASKS)}")
    ap.add_argument("--ft-batch", type=int, default=2, help="sequences per fine-tuning step")
    ap.add_argument("--ft-seq", type=int, default=128, help="tokens per fine-tuning sequence")
    ap.add_argument("--ft-steps", type=int, default=1, help="fine-tuning steps per timed call")
    ap.add_argument("--steer-tokens", type=int, default=512, help="calibration tokens of steer(text=...)")
    ap.add_argument("--deact-tokens", type=int, default=64, help="tokens per language of the deactivation matrix")
    args = ap.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",")]
    if unknown := set(args.tasks) - set(TASKS):
        ap.error(f"unknown tasks {sorted(unknown)}; choose from {', '.join(TASKS)}")
    corpus = open_corpus("udhr")
    started = time.perf_counter()
    load = os.getloadavg()[0]
    default = idle_cores()
    f32 = load_packaged(args.model, "float32")
    if "build" not in args.tasks:
        time_entry_points(f32, corpus, args)
        print(f"total {time.perf_counter() - started:.0f} s; load average {load:.1f} at the start")
        return

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
    if len(args.tasks) > 1:
        time_entry_points(f32, corpus, args)


if __name__ == "__main__":
    main()
