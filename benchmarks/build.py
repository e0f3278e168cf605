"""Builder throughput, one run, same model and batches: (a) bare decoder forward, (b) the builder's recording,
(c) naive full ``model(...)`` with logits and Python-side counting. Prints tokens/s and ratios.

    python benchmarks/build.py --model gemma-3-270m --dtype bfloat16 --batches 1 --batch-size 8 --seq-len 128 --repeats 7
(a) and (b) are interleaved (a, b, b, a, ...), then (c) repeated; ratios are the median of per-repeat ratios, in
wall time and in process CPU time, to even out a shared CPU.

    python benchmarks/build.py --part ray --model smollm2-135m --langs 8 --tokens 512
the same build in one process and on a local Ray cluster of 2 CPU actors (throughput ratio), and the per-shard
scheduling overhead of the Ray driver (1 actor, many near-empty shards, minus the same shards in one process).

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

from neuron_atlas.builder.record import Recorder, bos_id, pad_id, sequences, token_ids
from neuron_atlas.corpus import open_corpus
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import load_packaged


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
            model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)


def naive(model, data) -> np.ndarray:
    """Full model with logits; each layer's act(gate) copied to the host and counted in numpy."""
    ffns = find_ffns(model)
    fired = np.zeros((len(ffns), ffns[0].width), dtype=np.int64)
    current = {}

    def hook(i, f):
        def fn(module, args, out):
            if f.kind == "fused_gated":
                out = out[..., :f.width]
            acts = f.act(out).float().numpy()
            valid = current["mask"].numpy().astype(bool)
            valid[:, 0] = False
            fired[i] += (acts[valid] > 0).sum(0)
        return fn

    hooks = [(f.gate if f.kind == "gated" else f.up).register_forward_hook(hook(i, f)) for i, f in enumerate(ffns)]
    try:
        with torch.inference_mode():
            for ids, mask in data:
                current["mask"] = mask
                model(input_ids=ids, attention_mask=mask).logits.float().numpy()
    finally:
        for h in hooks:
            h.remove()
    return fired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["forward", "ray", "cost"], default="forward")
    parser.add_argument("--langs", type=int, default=8, help="--part ray: UDHR languages in the build")
    parser.add_argument("--tokens", type=int, default=512, help="--part ray: tokens per language")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--lang", default="eng_Latn")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.part != "forward":
        from build_scale import cost, ray_rows

        return ray_rows(args) if args.part == "ray" else cost(args)

    loaded = load_packaged(args.model, dtype=args.dtype)
    model, tok = loaded.model, loaded.tokenizer
    bos = bos_id(tok)
    budget = args.batches * args.batch_size * (args.seq_len - (bos is not None))
    texts = open_corpus("udhr").texts(args.lang)
    seqs = sequences(token_ids(tok, texts, budget), args.seq_len, bos)
    data = batches(seqs, args.batch_size, pad_id(tok))
    n_tokens = sum(len(s) for s in seqs)  # every position is computed, so tokens/s counts BOS too
    recorder = Recorder(model)

    runs = {
        "(a) bare decoder forward, no hooks": lambda: bare(model, data),
        "(b) builder recording": lambda: recorder.count(seqs, args.batch_size, pad_id(tok), skip_first=bos is not None),
        "(c) naive: full model + logits, numpy counting": lambda: naive(model, data),
    }
    bare(model, data[:1])  # warm-up
    wall = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    names = list(runs)
    # (a) and (b) alternate in pairs, order flipped each repeat; (c) allocates the logits, which would slow
    # whatever runs after it (fresh pages), so it runs in its own loop afterwards
    order = [names[:2] if r % 2 == 0 else names[1::-1] for r in range(args.repeats)] + [[names[2]]] * args.repeats
    for repeat in order:
        for name in repeat:
            w, c = time.perf_counter(), time.process_time()
            runs[name]()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    # the builder's counts equal the naive ones: the benchmark compares equal work
    assert np.array_equal(runs["(b) builder recording"]().fired, naive(model, data))

    table = Table(title=f"{args.model} {args.dtype}, {len(data)} batch(es) of {args.batch_size}x{args.seq_len} "
                        f"({n_tokens} tokens), {args.repeats} repeats, {torch.get_num_threads()} threads")
    for col in ("run", "tokens/s (wall)", "vs (a) wall", "tokens/s (CPU)", "vs (a) CPU"):
        table.add_column(col, justify="right" if col != "run" else "left")
    a = "(a) bare decoder forward, no hooks"
    for name in runs:
        ratio_wall = statistics.median(x / y for x, y in zip(wall[a], wall[name]))
        ratio_cpu = statistics.median(x / y for x, y in zip(cpu[a], cpu[name]))
        table.add_row(name, f"{n_tokens / statistics.median(wall[name]):,.0f}", f"{ratio_wall:.3f}",
                      f"{n_tokens / statistics.median(cpu[name]):,.0f}", f"{ratio_cpu:.3f}")
    Console(width=120).print(table)

if __name__ == "__main__":
    main()
