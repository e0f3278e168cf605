"""Subnetwork fine-tuning vs the alternatives, side by side on one model, batch and step count; and the cost
of an intervention's hooks on a forward pass.

Training methods (each in its own fresh process, so peak memory is its own):
  subnetwork    neuron_atlas.finetune.subnetwork: |S|×hidden deltas per projection on frozen weights
  dense_masked  FFN weights trainable, dense gradients zeroed outside the subnetwork by tensor hooks
                (composable-sft / llm-compressor style), AdamW over the full FFN weights
  clone_slices  the seed paper's forward: trainable row/column slices written into clones of the full weights
  lora32        PEFT LoRA r=32 (alpha 64) on gate/up/down

Peak memory is the process's peak resident set (VmHWM, reset through /proc/self/clear_refs before the
first step) minus its resident set just before it: what training adds on top of the loaded model.
Step time is the median over the timed steps (forward + backward + AdamW step) of the process's CPU time
(``time.process_time``, one torch thread by default): on a shared machine wall time mostly measures the
neighbours, CPU time the work. Wall time is printed too. Each figure is the best of the rounds.

    python benchmarks/finetune.py                       # gemma-3-270m if cached, else a tiny Llama-shaped model
    python benchmarks/finetune.py --model tiny --steps 5
    python benchmarks/finetune.py --part finetune --model llama-3.1-8b --device cuda --dtype bfloat16 \
        --methods subnetwork lora32 --batch 4 --seq 2048       # issue 12's GPU check (random weights)

On CUDA, peak memory is ``torch.cuda.max_memory_allocated`` minus the allocation before the first step, and step
time is wall time with the device synchronized.

The quality experiments (Tang et al.'s deactivation matrix, fine-tuning in small) are in studies/study_udhr_split.py.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from random_models import SHAPES, random_llama

METHODS = ("subnetwork", "dense_masked", "clone_slices", "lora32")


def load_model(name: str, dtype: str = "float32", device: str = "cpu", layers: int | None = None):
    """gemma-3-270m from the packaged cache, or a random-weight Llama shape (``random_models.SHAPES``)."""
    if name == "gemma-3-270m":
        from neuron_atlas.modeling.load import load_packaged

        return load_packaged("gemma-3-270m", dtype=dtype, device=device).model.train()
    return random_llama(name, dtype, device, layers).train()


def benchmark_mask(model, top: float, seed: int = 0):
    """round(width·top) random neurons in every layer: the cost depends on the set's size, not on which neurons."""
    from neuron_atlas.masks import NeuronMask
    from neuron_atlas.modeling.ffn import find_ffns

    ffns = find_ffns(model)
    rng = np.random.default_rng(seed)
    k = max(1, round(ffns[0].width * top))
    return NeuronMask([rng.choice(f.width, k, replace=False) for f in ffns], ffns[0].width,
                      languages=["benchmark"])


def dense_masked(model, mask):
    """Dense FFN gradients, zeroed outside the subnetwork by hooks on the weights' gradients."""
    import torch

    from neuron_atlas.modeling.ffn import find_ffns

    model.requires_grad_(False)
    params = []
    for ffn, wm in zip(find_ffns(model), mask.weight_masks(model)):
        for proj, w in wm.items():
            weight = getattr(ffn, proj).weight
            keep = torch.from_numpy(w.dense())
            weight.requires_grad_(True)
            weight.register_hook(lambda g, keep=keep: g.masked_fill(~keep, 0))
            params.append(weight)
    return params


def clone_slices(model, mask):
    """The seed paper's approach: slices as parameters, full weights cloned and overwritten in every forward."""
    import torch
    import torch.nn.functional as F

    from neuron_atlas.modeling.ffn import find_ffns

    model.requires_grad_(False)
    params = []
    for ffn in find_ffns(model):
        idx = torch.from_numpy(mask.indices[ffn.layer].copy())
        gate = torch.nn.Parameter(ffn.gate.weight[idx].clone())
        up = torch.nn.Parameter(ffn.up.weight[idx].clone())
        down = torch.nn.Parameter(ffn.down.weight[:, idx].clone())
        params += [gate, up, down]

        def forward(x, ffn=ffn, idx=idx, gate=gate, up=up, down=down):
            gw, uw, dw = ffn.gate.weight.clone(), ffn.up.weight.clone(), ffn.down.weight.clone()
            gw[idx], uw[idx], dw[:, idx] = gate, up, down
            return F.linear(ffn.act(F.linear(x, gw)) * F.linear(x, uw), dw)

        ffn.module.forward = forward
    return params


def setup(method: str, model, mask):
    """The parameters to optimise under ``method`` (and the model modified in place)."""
    if method == "subnetwork":
        from neuron_atlas.finetune import subnetwork

        return subnetwork(model, mask).trainable_parameters(), model
    if method == "lora32":
        from neuron_atlas.finetune import lora

        adapter = lora(model, r=32)
        return adapter.trainable_parameters(), adapter.model
    return {"dense_masked": dense_masked, "clone_slices": clone_slices}[method](model, mask), model


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(args) -> dict:
    """One method in this process: set up, reset the peak RSS, train ``steps`` steps, report."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = args.device.startswith("cuda")
    model = load_model(args.model, args.dtype, args.device, args.layers)
    mask = benchmark_mask(model, args.top)
    params, train_model = setup(args.worker, model, mask)
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    generator = torch.Generator().manual_seed(1)
    vocab = model.get_input_embeddings().weight.shape[0]
    batches = [torch.randint(0, vocab, (args.batch, args.seq), generator=generator).to(args.device)
               for _ in range(args.steps)]
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated() / 1024
        torch.cuda.reset_peak_memory_stats()
    else:
        before = rss_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    cpu, wall = [], []
    for x in batches:
        start, start_cpu = time.perf_counter(), time.process_time()
        train_model(input_ids=x, labels=x).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 1024 if cuda else rss_kib("VmHWM")
    trainable = sum(p.numel() for p in params)
    state = sum(p.numel() * p.element_size() for p in params) * 3  # grad + AdamW's two moments
    ffns_hidden = model.config.hidden_size
    return {"method": args.worker, "trainable": trainable, "expected_3hS": 3 * ffns_hidden * len(mask),
            "peak_mib": (peak - before) / 1024, "state_mib": state / 2**20,
            "step_s": statistics.median((wall if cuda else cpu)[args.warmup:]),
            "wall_s": statistics.median(wall[args.warmup:]),
            "n_neurons": len(mask)}


def run_worker(method: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--model", args.model, "--batch", str(args.batch),
           "--seq", str(args.seq), "--steps", str(args.steps), "--warmup", str(args.warmup), "--top", str(args.top),
           "--threads", str(args.threads), "--device", args.device, "--dtype", args.dtype,
           *(["--layers", str(args.layers)] if args.layers else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if out.returncode:
        raise RuntimeError(f"{method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def finetune_table(args) -> str:
    results: dict[str, list[dict]] = {m: [] for m in args.methods}
    for r in range(args.rounds):
        order = args.methods if r % 2 == 0 else args.methods[::-1]  # alternate order against drift
        for method in order:
            results[method].append(run_worker(method, args))
            print(f"round {r + 1} {method}: {results[method][-1]}", file=sys.stderr)
    best = {m: min(rs, key=lambda x: x["step_s"]) | {"peak_mib": min(x["peak_mib"] for x in rs),
                                                       "wall_s": min(x["wall_s"] for x in rs)}
            for m, rs in results.items()}
    lora = best.get("lora32")
    first = next(iter(best.values()))
    cuda = args.device.startswith("cuda")
    where = args.device if cuda else f"CPU ({args.threads} thread)"
    peak, step = ("peak CUDA memory added MiB", "step s") if cuda else ("peak RSS added MiB", "step CPU s")
    lines = [f"model {args.model}, batch {args.batch}×{args.seq} tokens, {args.steps} steps ({args.warmup} warm-up), "
             f"{first['n_neurons']} neurons (top {args.top:.0%} per layer), {args.dtype}, {where}, "
             f"best of {args.rounds} rounds",
             "", f"| method | trainable params | grad+AdamW state MiB | {peak} | {step} | step wall s | "
             f"peak / LoRA | {step} / LoRA |", "|---|---|---|---|---|---|---|---|"]
    for m, r in best.items():
        ratio_mem = f"{r['peak_mib'] / lora['peak_mib']:.2f}" if lora else "-"
        ratio_t = f"{r['step_s'] / lora['step_s']:.2f}" if lora else "-"
        lines.append(f"| {m} | {r['trainable']:,} | {r['state_mib']:.1f} | {r['peak_mib']:.0f} | {r['step_s']:.3f} | "
                     f"{r['wall_s']:.3f} | {ratio_mem} | {ratio_t} |")
    sub = best.get("subnetwork")
    if sub:
        lines.append(f"\nsubnetwork trainable params {sub['trainable']:,} = 3·hidden·|S| = {sub['expected_3hS']:,}: "
                     f"{sub['trainable'] == sub['expected_3hS']}")
    return "\n".join(lines)


def intervention_table(args) -> str:
    """Forward time with and without deactivation hooks on 1% of neurons, interleaved blocks, median ratio."""
    import torch

    from neuron_atlas.interventions.hooks import deactivate

    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    mask = benchmark_mask(model, args.top)
    vocab = model.get_input_embeddings().weight.shape[0]
    x = torch.randint(0, vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    plain, hooked = [], []
    with torch.inference_mode():
        model(x)
        for _ in range(args.reps):
            start = time.process_time()
            model(x)
            plain.append(time.process_time() - start)
            with deactivate(model, mask):
                start = time.process_time()
                model(x)
                hooked.append(time.process_time() - start)
    ratios = [h / p for h, p in zip(hooked, plain)]
    return (f"model {args.model}, forward of {args.batch}×{args.seq} tokens, {len(mask)} neurons set to 0, "
            f"{args.reps} interleaved pairs, CPU time, {args.threads} thread\n\n"
            f"| plain s (median) | hooked s (median) | ratio (median of pairs) |\n"
            f"|---|---|---|\n| {statistics.median(plain):.4f} | {statistics.median(hooked):.4f} | "
            f"{statistics.median(ratios):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cached = Path(os.environ.get("NEURON_ATLAS_CACHE", Path.home() / ".cache" / "neuron-atlas"))
    has_gemma = (cached / "models" / "gemma-3-270m" / "neuron_atlas_source.json").is_file()
    parser.add_argument("--model", default="gemma-3-270m" if has_gemma else "tiny", choices=["gemma-3-270m", *SHAPES])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--layers", type=int, help="random shapes: keep only this many decoder layers")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=float, default=0.01, help="share of each layer's neurons in the subnetwork")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--reps", type=int, default=20, help="forward pairs for the intervention overhead")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--part", default="all", choices=["all", "finetune", "interventions"])
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.part in ("all", "finetune"):
        print(finetune_table(args))
    if args.part in ("all", "interventions"):
        print()
        print(intervention_table(args))


if __name__ == "__main__":
    main()
