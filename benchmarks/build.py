"""Builder throughput, one run, same model and batches: (a) bare decoder forward, (b) the builder's recording,
(c) naive full ``model(...)`` with logits and Python-side counting. Prints tokens/s and ratios.

    python benchmarks/build.py --model gemma-3-270m --batches 3 --batch-size 4 --seq-len 256
Runs are interleaved (a, b, c, a, b, c, ...) and the median repeat is reported, to even out a shared CPU.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from neuron_atlas.build.record import Recorder, bos_id, pad_id, sequences, token_ids
from neuron_atlas.corpus.base import open_corpus
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
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--lang", default="eng_Latn")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

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
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    # the builder's counts equal the naive ones: the benchmark compares equal work
    assert np.array_equal(runs["(b) builder recording"]().fired, naive(model, data))

    table = Table(title=f"{args.model} {args.dtype}, {len(data)} batches of {args.batch_size}x{args.seq_len} "
                        f"({n_tokens} tokens), median of {args.repeats}, {torch.get_num_threads()} threads")
    for col in ("run", "tokens/s", "vs (a)"):
        table.add_column(col, justify="right" if col != "run" else "left")
    base = n_tokens / statistics.median(times["(a) bare decoder forward, no hooks"])
    for name, ts in times.items():
        rate = n_tokens / statistics.median(ts)
        table.add_row(name, f"{rate:,.0f}", f"{rate / base:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
