"""Builder throughput, one run, same model and batches: (a) bare decoder forward, (b) the builder's recording,
(c) naive full ``model(...)`` with logits and Python-side counting. Prints tokens/s and ratios.

    python benchmarks/build.py --model llama-3.1-8b --dtype bfloat16 --device cuda --batch-size 8 --seq-len 2048 \
        --peak-tflops 989
a random-weight Llama-3.1-8B-shaped model on the GPU (random token ids; issue 9's targets: (b) >= 0.95x (a),
(a) >= 40 % MFU); MFU = tokens/s x the decoder's FLOPs per token (torch's FLOP counter) / the peak.

    python benchmarks/build.py --model gemma-3-270m --dtype bfloat16 --batches 1 --batch-size 8 --seq-len 128 --repeats 7
(a) and (b) are interleaved (a, b, b, a, ...), then (c) repeated; ratios are the median of per-repeat ratios, in
wall time and in process CPU time, to even out a shared CPU.

    python benchmarks/build.py --part ray --model smollm2-135m --langs 8 --tokens 512
the same build in one process and on a local Ray cluster of 2 CPU actors (throughput ratio), and the per-shard
scheduling overhead of the Ray driver (1 actor, many near-empty shards, minus the same shards in one process).

    python benchmarks/build.py --part stats --model gemma-3-270m --dtype bfloat16 --batches 2 --batch-size 8 --seq-len 512 --repeats 5
count-only recording vs format-v2 recording (counts + act(gate) moments + residual means, forward run to the final
norm) side by side, interleaved (b, v2, v2, b, ...), same model, batches and tokens; prints tokens/s of both and
the ratio v2 / count-only in wall and process CPU time (issue 18's target: >= 0.95), and checks equal counts.

    python benchmarks/build.py --part cost
measured inputs of the cost on paper (benchmarks/RESULTS.md): FLOPs per token of a Llama-3.1-8B-shaped decoder
(meta device, torch's FLOP counter), bytes per statistic of 10M-token shards, and what a lazy query reads.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from neuron_atlas.builder.record import Recorder
from neuron_atlas.modeling.tokens import bos_id, pad_id, sequences, token_ids
from neuron_atlas.corpus import open_corpus
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import load_packaged
from random_models import SHAPES, random_llama


def batches(seqs: list[list[int]], size: int, pad: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for i in range(0, len(seqs), size):
        chunk = seqs[i:i + size]
        ids = torch.full((len(chunk), max(map(len, chunk))), pad)
        mask = torch.zeros_like(ids)
        for r, s in enumerate(chunk):
            ids[r, :len(s)], mask[r, :len(s)] = torch.tensor(s), 1
        out.append((ids, mask))
    return out


def bare(model, data) -> None:
    with torch.inference_mode():
        for ids, mask in data:
            model.base_model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), use_cache=False)
    if model.device.type == "cuda":  # wall time must cover the work, not just its launch
        torch.cuda.synchronize(model.device)


def naive(model, data, skip_first: bool = True) -> np.ndarray:
    """Full model with logits; each layer's act(gate) copied to the host and counted in numpy."""
    ffns = find_ffns(model)
    fired = np.zeros((len(ffns), ffns[0].width), dtype=np.int64)
    current = {}

    def hook(i, f):
        def fn(module, args, out):
            if f.kind == "fused_gated":
                out = out[..., :f.width]
            acts = f.act(out).float().cpu().numpy()
            valid = current["mask"].numpy().astype(bool)
            valid[:, 0] = not skip_first
            fired[i] += (acts[valid] > 0).sum(0)
        return fn

    hooks = [(f.gate if f.kind == "gated" else f.up).register_forward_hook(hook(i, f)) for i, f in enumerate(ffns)]
    try:
        with torch.inference_mode():
            for ids, mask in data:
                current["mask"] = mask
                model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float().cpu().numpy()
    finally:
        for h in hooks:
            h.remove()
    return fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["forward", "stats", "ray", "cost"], default="forward")
    parser.add_argument("--langs", type=int, default=8, help="--part ray: UDHR languages in the build")
    parser.add_argument("--tokens", type=int, default=512, help="--part ray: tokens per language")
    parser.add_argument("--model", default="gemma-3-270m",
                        help="a packaged model, or a random-weight shape: " + ", ".join(SHAPES))
    parser.add_argument("--lang", default="eng_Latn")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", type=int, help="random shapes: keep only this many decoder layers")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense peak for --dtype: adds an MFU column")
    parser.add_argument("--no-naive", action="store_true", help="skip (c) and the equal-counts check")
    args = parser.parse_args()
    if args.part not in ("forward", "stats"):
        from build_scale import cost, ray_rows

        return ray_rows(args) if args.part == "ray" else cost(args)

    flops = None
    if args.peak_tflops:
        from build_scale import llama_flops_per_token

        if args.model not in SHAPES or args.layers:
            parser.error("--peak-tflops needs a full random shape (its FLOPs per token come from the shape)")
        flops = llama_flops_per_token(args.seq_len, args.model)[0]
    if args.model in SHAPES:  # random weights, random tokens: throughput does not depend on either
        model = random_llama(args.model, args.dtype, args.device, args.layers).eval()
        generator = torch.Generator().manual_seed(0)
        seqs = torch.randint(0, model.config.vocab_size, (args.batches * args.batch_size, args.seq_len),
                             generator=generator).tolist()
        bos, pad = None, 0
    else:
        loaded = load_packaged(args.model, dtype=args.dtype, device=args.device)
        model, tok = loaded.model, loaded.tokenizer
        bos, pad = bos_id(tok), pad_id(tok)
        budget = args.batches * args.batch_size * (args.seq_len - (bos is not None))
        seqs = sequences(token_ids(tok, open_corpus("udhr").texts(args.lang), budget), args.seq_len, bos)
    data = batches(seqs, args.batch_size, pad)
    n_tokens = sum(len(s) for s in seqs)  # every position is computed, so tokens/s counts BOS too
    recorder = Recorder(model, stats=False)
    if args.part == "stats":
        return stats_rows(args, model, seqs, pad, bos, n_tokens, len(data))

    runs = {
        "(a) bare decoder forward, no hooks": lambda: bare(model, data),
        "(b) builder recording": lambda: recorder.count(seqs, args.batch_size, pad, skip_first=bos is not None),
        "(c) naive: full model + logits, numpy counting": lambda: naive(model, data, bos is not None),
    }
    if args.no_naive:
        del runs["(c) naive: full model + logits, numpy counting"]
    bare(model, data[:1])  # warm-up
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    names = list(runs)
    # (a) and (b) alternate in pairs, order flipped each repeat; (c) allocates the logits, which would slow
    # whatever runs after it (fresh pages), so it runs in its own loop afterwards
    order = [names[:2] if r % 2 == 0 else names[1::-1] for r in range(args.repeats)] + [names[2:]] * args.repeats
    for repeat in order:
        for name in repeat:
            w, c = time.perf_counter(), time.process_time()
            runs[name]()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    if not args.no_naive:  # the builder's counts equal the naive ones: the benchmark compares equal work
        assert np.array_equal(runs["(b) builder recording"]().fired, naive(model, data, bos is not None))

    table = Table(title=f"{args.model} {args.dtype} on {args.device}, {len(data)} batch(es) of "
                        f"{args.batch_size}x{args.seq_len} ({n_tokens} tokens), {args.repeats} repeats, "
                        f"{torch.get_num_threads()} threads")
    columns = ["run", "tokens/s (wall)", "vs (a) wall", "tokens/s (CPU)", "vs (a) CPU"] + (["MFU"] if flops else [])
    for col in columns:
        table.add_column(col, justify="right" if col != "run" else "left")
    a = "(a) bare decoder forward, no hooks"
    for name in runs:
        ratio_wall = statistics.median(x / y for x, y in zip(wall[a], wall[name]))
        ratio_cpu = statistics.median(x / y for x, y in zip(cpu[a], cpu[name]))
        rate = n_tokens / statistics.median(wall[name])
        mfu = [f"{rate * flops / (args.peak_tflops * 1e12):.1%}"] if flops else []
        table.add_row(name, f"{rate:,.0f}", f"{ratio_wall:.3f}", f"{n_tokens / statistics.median(cpu[name]):,.0f}",
                      f"{ratio_cpu:.3f}", *mfu)
    Console(width=140).print(table)


class TodaysCounter(Recorder):
    """The count-only hook of the builder before format v2 (main at be1c40f), verbatim: the baseline of issue 18."""

    def _hook(self, i, ffn):
        last, width = i == len(self.ffns) - 1, self.width

        def hook(module, args, out):
            if ffn.kind == "fused_gated":
                out = out[..., :width]
            fired = out.gt(0) if self._by_sign[i] else ffn.act(out).gt(0)
            counts = self._token_weights(out.device, torch.float32) @ fired.view(-1, width).to(torch.float32)
            self._acc[i] += counts.to(self._acc.device, torch.int64)
            if last:
                from neuron_atlas.modeling.forward import StopForward

                raise StopForward

        return hook


def stats_rows(args, model, seqs, pad: int, bos: int | None, n_tokens: int, n_batches: int) -> None:
    """Today's count-only builder vs format-v2 recording (and the new count-only mode), interleaved; tokens/s of
    each and the median per-repeat ratio to today's."""
    recorders = {"today's count-only builder": TodaysCounter(model, stats=False),
                 "count-only recording (stats=False)": Recorder(model, stats=False),
                 "v2 recording (counts + moments + residual)": Recorder(model, stats=True)}
    runs = {name: (lambda r=r: r.count(seqs, args.batch_size, pad, skip_first=bos is not None))
            for name, r in recorders.items()}
    names = list(runs)
    results = {name: runs[name]() for name in names}  # warm-up, and the counts must agree
    assert all(np.array_equal(results[names[0]].fired, r.fired) for r in results.values())
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each run first in turn
            w, c = time.perf_counter(), time.process_time()
            runs[name]()
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    table = Table(title=f"{args.model} {args.dtype} on {args.device}, {n_batches} batch(es) of {args.batch_size}x"
                        f"{args.seq_len} ({n_tokens} tokens), {args.repeats} repeats, {torch.get_num_threads()} threads")
    for col in ["run", "tokens/s (wall)", "vs today's (wall)", "tokens/s (CPU)", "vs today's (CPU)"]:
        table.add_column(col, justify="right" if col != "run" else "left")
    base = names[0]
    for name in names:
        ratio_wall = statistics.median(x / y for x, y in zip(wall[base], wall[name]))
        ratio_cpu = statistics.median(x / y for x, y in zip(cpu[base], cpu[name]))
        table.add_row(name, f"{n_tokens / statistics.median(wall[name]):,.0f}", f"{ratio_wall:.3f}",
                      f"{n_tokens / statistics.median(cpu[name]):,.0f}", f"{ratio_cpu:.3f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
