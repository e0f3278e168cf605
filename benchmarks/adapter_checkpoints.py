"""Trainer checkpoint sizes of a subnetwork: adapter-only (now) vs the whole model (what Trainer wrote before).

On a smollm2-135m-shaped model with random weights (fp32), the embedded atlas's Swahili sets (default top 1 % and
size=500): one Trainer step with a checkpoint, then every file of it, the delta parameters' bytes, and the whole
model as ``PreTrainedModel.save_pretrained`` writes it (the old checkpoint). Sizes only; no timings.

    python benchmarks/adapter_checkpoints.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
import transformers

sys.path.insert(0, str(Path(__file__).parent))
from random_models import random_llama

import neuron_atlas as na
from neuron_atlas.finetune import subnetwork


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    torch.set_num_threads(1)
    model = random_llama("smollm2-135m")
    atlas = na.open()
    rows = [{"input_ids": r, "labels": r} for r in torch.randint(0, 49152, (4, 32), generator=torch.Generator().manual_seed(0))]
    print(f"{'set':<22} {'neurons':>7} {'delta bytes':>12} {'adapter file':>12} {'optimizer':>10} "
          f"{'checkpoint':>11} {'whole model':>12} {'model/ckpt':>10}")
    for label, kw in (("sw, default top 1%", {}), ("sw, size=500", {"size": 500})):
        sub = subnetwork(model, atlas.neurons("smollm2-135m", lang="sw", **kw))
        with tempfile.TemporaryDirectory() as out:
            args = transformers.TrainingArguments(output_dir=out, max_steps=1, save_steps=1, per_device_train_batch_size=2,
                                                  report_to=[], use_cpu=True, logging_strategy="no", disable_tqdm=True)
            transformers.Trainer(model=model, args=args, train_dataset=rows).train()
            ckpt = Path(out) / "checkpoint-1"
            transformers.PreTrainedModel.save_pretrained(model, Path(out) / "whole")  # what Trainer wrote before
            delta = sum(d.weight.numel() * d.weight.element_size() for d in sub.deltas.values())
            adapter, optim = size(ckpt / "adapter_model.safetensors"), size(ckpt / "optimizer.pt")
            whole, total = size(Path(out) / "whole" / "model.safetensors"), size(ckpt)
            print(f"{label:<22} {len(sub.mask):>7,} {delta:>12,} {adapter:>12,} {optim:>10,} {total:>11,} {whole:>12,} "
                  f"{whole / total:>9.0f}x")
        sub.unload()


if __name__ == "__main__":
    main()
