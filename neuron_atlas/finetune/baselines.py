"""The seed paper's baselines behind the subnetwork's interface: a random subset of the same size, full
fine-tuning of the FFNs only, and LoRA on the FFN projections through PEFT."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._utils.files import write_bytes
from ..errors import DeltaMismatchError
from ..masks import FFNShape, neuron_mask
from ..modeling.ffn import find_ffns
from .config import SubnetworkConfig
from .model import FinetuneModel, SubnetworkModel, _check_base, describe_base

FFN_FORMAT = "neuron-atlas-ffn-weights"


def random_subnetwork(model: nn.Module, neurons: Any, *, per_layer: bool = True, seed: int = 0,
                      lang: str | list[str] | None = None, **config: Any) -> SubnetworkModel:
    """A subnetwork of random neurons, as many as ``neurons`` has in every layer (or in total if not ``per_layer``)."""
    shapes = [FFNShape.of(f) for f in find_ffns(model)]
    mask = neuron_mask(neurons, lang=lang, shape=shapes).random_like(per_layer=per_layer, seed=seed)
    return SubnetworkModel(model, SubnetworkConfig(mask, **config))


class FfnOnlyModel(FinetuneModel):
    """Full fine-tuning of every FFN projection (weights and biases); everything else frozen."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        ffns = find_ffns(model)
        self.shapes = [FFNShape.of(f) for f in ffns]
        self._requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
        ffn_ids = {id(m) for f in ffns for m in (f.gate, f.up, f.down) if m is not None}
        self.names = [f"{mod_name}.{p_name}" for mod_name, mod in model.named_modules() if id(mod) in ffn_ids
                      for p_name, _ in mod.named_parameters(recurse=False)]
        model.requires_grad_(False)
        params = dict(model.named_parameters())
        for name in self.names:
            params[name].requires_grad_(True)

    def save(self, path: str | Path) -> None:
        """Write every FFN weight (the whole trained part) as safetensors, atomically."""
        from safetensors.torch import save

        params = dict(self.model.named_parameters())
        data = save({n: params[n].detach().cpu().contiguous() for n in self.names},
                    metadata={"format": FFN_FORMAT, "base": json.dumps(describe_base(self.model, self.shapes))})
        write_bytes(data, path)

    def load(self, path: str | Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
        if header.get("format") != FFN_FORMAT:
            raise DeltaMismatchError(f"{path}: not an FFN weight file (format {header.get('format')!r})")
        _check_base(path, json.loads(header["base"]), describe_base(self.model, self.shapes))
        params = dict(self.model.named_parameters())
        if sorted(tensors) != sorted(self.names) or any(tensors[n].shape != params[n].shape for n in self.names):
            raise DeltaMismatchError(f"{path} holds other FFN tensors than this model's")
        with torch.no_grad():
            for name in self.names:
                params[name].copy_(tensors[name])

    def merge_and_unload(self) -> nn.Module:
        """The weights were trained in place: restore requires_grad and return the model."""
        for name, p in self.model.named_parameters():
            p.requires_grad_(self._requires_grad.get(name, False))
        return self.model


def ffn_only(model: nn.Module) -> FfnOnlyModel:
    """Full fine-tuning restricted to the FFNs (the seed paper's 'MLP-only' baseline)."""
    return FfnOnlyModel(model)


class LoraModel(FinetuneModel):
    """LoRA adapters (PEFT) on every FFN projection: gate/up/down, or fc_in/fc_out."""

    def __init__(self, model: nn.Module, r: int = 32, alpha: int | None = None, dropout: float = 0.0) -> None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ImportError("the LoRA baseline needs PEFT: pip install peft") from None
        ffn_ids = {id(m) for f in find_ffns(model) for m in (f.gate, f.up, f.down) if m is not None}
        targets = [name for name, mod in model.named_modules() if id(mod) in ffn_ids]
        config = LoraConfig(r=r, lora_alpha=alpha or 2 * r, lora_dropout=dropout, target_modules=targets,
                            fan_in_fan_out=any(type(m).__name__ == "Conv1D" for m in model.modules()),
                            task_type="CAUSAL_LM")
        self.model = get_peft_model(model, config)

    def save(self, path: str | Path) -> None:
        """The adapter in PEFT's own format (a folder with adapter_config.json and adapter_model.safetensors)."""
        self.model.save_pretrained(str(path))

    def load(self, path: str | Path) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(str(Path(path) / "adapter_model.safetensors")))

    def merge_and_unload(self) -> nn.Module:
        return self.model.merge_and_unload()


def lora(model: nn.Module, r: int = 32, alpha: int | None = None, dropout: float = 0.0) -> LoraModel:
    """LoRA of rank ``r`` on the FFN projections (alpha defaults to 2r)."""
    return LoraModel(model, r=r, alpha=alpha, dropout=dropout)
