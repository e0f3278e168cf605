"""Subnetwork fine-tuning: train only the FFN weights tied to a neuron set, through deltas on frozen weights.

``get_subnetwork_model(model, SubnetworkConfig(neurons))`` (or ``subnetwork(model, neurons)``) freezes the
model and gives every selected neuron a trainable gate row, up row and down column (|S|×hidden per
projection), so gradients and optimizer state exist only for the subnetwork. The model stays the same
``transformers`` object (train it with ``Trainer`` or a plain loop); ``save``/``load`` move just the
deltas, ``merge_and_unload`` writes them into the base weights.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import AtlasError, AtlasFormatError
from ..masks import DELTA_FORMAT, DELTA_FORMAT_VERSION, FFNShape, MaskError, NeuronMask, neuron_mask
from ..modeling.ffn import FFN, find_ffns
from ..modeling.load import parse_dtype
from .._files import write_bytes
from .config import SubnetworkConfig
from .layer import DELTA_NAME, NeuronDelta, add_delta_hook



class DeltaMismatchError(AtlasError, ValueError):
    """A saved delta belongs to another model, another neuron set, or another layout."""


class FinetuneModel(ABC):
    """What every fine-tuning method here offers: the model to train, its trainable parameters, save and merge."""

    model: nn.Module

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimizer should see (everything else is frozen)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def num_trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    def trainable_summary(self) -> str:
        """'trainable params: n || all params: m || trainable%: x', as PEFT prints it."""
        total = sum(p.numel() for p in self.model.parameters())
        n = self.num_trainable_parameters()
        return f"trainable params: {n:,} || all params: {total:,} || trainable%: {100 * n / max(total, 1):.4f}"

    @abstractmethod
    def save(self, path: str | Path) -> None:
        """Write what training changed (and nothing else) to ``path``."""

    @abstractmethod
    def load(self, path: str | Path) -> None:
        """Read what ``save`` wrote back into this model, refusing files made for another model or set."""

    @abstractmethod
    def merge_and_unload(self) -> nn.Module:
        """Fold the training into the base weights and return the plain model."""


class SubnetworkModel(FinetuneModel):
    """A model whose selected FFN neurons train through NeuronDelta modules hooked onto its frozen projections."""

    def __init__(self, model: nn.Module, config: SubnetworkConfig) -> None:
        if any(isinstance(m, NeuronDelta) for m in model.modules()):
            raise AtlasError("this model already carries a subnetwork; merge_and_unload() or unload() it first")
        self.model, self.config = model, config
        self.ffns: list[FFN] = find_ffns(model)
        self.shapes = [FFNShape.of(f) for f in self.ffns]
        self.mask: NeuronMask = neuron_mask(config.neurons, lang=config.lang, shape=self.shapes)
        if not len(self.mask):
            raise MaskError(f"cannot fine-tune an empty subnetwork ({self.mask.describe()})")
        self._requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
        self._handles: list[Any] = []
        self.deltas: dict[str, NeuronDelta] = {}
        model.requires_grad_(False)
        for ffn, shape in zip(self.ffns, self.shapes):
            idx = self.mask.indices[ffn.layer]
            if idx.size:
                for proj in config.projections:
                    self._attach(ffn, shape, proj, idx)
        if not self.deltas:
            raise MaskError(f"projections {config.projections} select no weights of this {self.shapes[0].kind} FFN "
                            "(plain and fused FFNs have no separate 'gate'; use 'up' and 'down')")

    def _attach(self, ffn: FFN, shape: FFNShape, proj: str, idx: np.ndarray) -> None:
        module = getattr(ffn, proj)
        if module is None:
            return
        weight = module.weight
        index = torch.from_numpy(idx.copy()).to(weight.device)
        if proj == "up" and shape.kind == "fused_gated":
            index = torch.cat([index, index + shape.width])  # gate_up_proj rows are [gate; up]
        dtype = parse_dtype(self.config.dtype) if self.config.dtype else weight.dtype
        delta = NeuronDelta(index, shape.hidden, "in" if proj == "down" else "out", dtype, shape.transposed)
        module.add_module(DELTA_NAME, delta)
        self._handles.append(module.register_forward_hook(add_delta_hook))
        self.deltas[f"layers.{ffn.layer}.{proj}"] = delta

    # --- files --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the deltas (plus the neuron set) as one safetensors file, atomically."""
        from safetensors.torch import save

        tensors = {k: d.weight.detach().cpu().contiguous() for k, d in self.deltas.items()}
        offsets = np.concatenate([[0], np.cumsum(self.mask.counts())])
        tensors["indices"] = torch.from_numpy(np.concatenate(self.mask.indices).astype(np.int32))
        tensors["offsets"] = torch.from_numpy(offsets.astype(np.int64))
        meta = {"format": DELTA_FORMAT, "format_version": str(DELTA_FORMAT_VERSION),
                "mask": json.dumps(self.mask.metadata(), default=str),
                "base": json.dumps(describe_base(self.model, self.shapes)),
                "projections": json.dumps(list(self.config.projections))}
        data = save(tensors, metadata=meta)
        write_bytes(data, path)

    def load(self, path: str | Path) -> None:
        """Load deltas saved by ``save``; every check runs before anything is written (no partial loads)."""
        mask, header, tensors = read_delta(path)
        if mask != self.mask:
            raise DeltaMismatchError(
                f"{path} was trained for another neuron set ({mask.describe()}, fingerprint {mask.fingerprint()[:12]}); "
                f"this subnetwork is {self.mask.describe()} (fingerprint {self.mask.fingerprint()[:12]})")
        _check_base(path, json.loads(header["base"]), describe_base(self.model, self.shapes))
        want = {k: tuple(d.weight.shape) for k, d in self.deltas.items()}
        got = {k: tuple(t.shape) for k, t in tensors.items()}
        if want != got:
            raise DeltaMismatchError(f"{path} holds deltas {sorted(got)} but this subnetwork has {sorted(want)} "
                                     f"(projections {list(self.config.projections)}); shapes differ")
        with torch.no_grad():
            for key, delta in self.deltas.items():
                delta.weight.copy_(tensors[key])

    # --- merge --------------------------------------------------------------------------------------------
    def merge_and_unload(self) -> nn.Module:
        """Add every delta into its base weight (in place), remove the hooks and deltas, return the model."""
        for key, delta in self.deltas.items():
            delta.merge_into(self._module(key).weight)
        return self.unload()

    def unload(self) -> nn.Module:
        """Remove the hooks and deltas without merging, restore the parameters' requires_grad, return the model."""
        for handle in self._handles:
            handle.remove()
        for key in self.deltas:
            delattr(self._module(key), DELTA_NAME)
        self._handles.clear()
        self.deltas.clear()
        for name, p in self.model.named_parameters():
            p.requires_grad_(self._requires_grad.get(name, False))
        return self.model

    def _module(self, key: str) -> nn.Module:
        _, layer, proj = key.split(".")
        return getattr(self.ffns[int(layer)], proj)

    def __repr__(self) -> str:
        return f"SubnetworkModel({type(self.model).__name__}, {self.mask.describe()}, {self.trainable_summary()})"


def get_subnetwork_model(model: nn.Module, config: SubnetworkConfig) -> SubnetworkModel:
    """Freeze ``model`` and make only the subnetwork of ``config.neurons`` trainable (PEFT's get_peft_model)."""
    return SubnetworkModel(model, config)


def subnetwork(model: nn.Module, neurons: Any, *, lang: str | list[str] | None = None,
               projections: tuple[str, ...] = ("gate", "up", "down"), dtype: str | None = None) -> SubnetworkModel:
    """Shortcut for ``get_subnetwork_model(model, SubnetworkConfig(neurons, lang, projections, dtype))``."""
    return SubnetworkModel(model, SubnetworkConfig(neurons, lang=lang, projections=projections, dtype=dtype))


def load_subnetwork(model: nn.Module, path: str | Path) -> SubnetworkModel:
    """Rebuild the subnetwork a delta file was saved from (its neuron set travels with it) and load the deltas."""
    mask, header, tensors = read_delta(path)
    _check_base(path, json.loads(header["base"]), describe_base(model, [FFNShape.of(f) for f in find_ffns(model)]))
    dtype = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    sub = SubnetworkModel(model, SubnetworkConfig(mask, projections=tuple(json.loads(header["projections"])),
                                                  dtype=dtype))
    try:
        sub.load(path)
    except BaseException:
        sub.unload()
        raise
    return sub


def read_delta(path: str | Path) -> tuple[NeuronMask, dict[str, str], dict[str, torch.Tensor]]:
    """The neuron set, header and delta tensors of a file written by ``SubnetworkModel.save``."""
    from safetensors import safe_open

    mask = NeuronMask.load(path)
    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys() if k.startswith("layers.")}
    if header.get("format") != DELTA_FORMAT or "base" not in header:
        raise AtlasFormatError(f"{path}: a neuron mask, not a subnetwork delta (format {header.get('format')!r})")
    return mask, header, tensors


def describe_base(model: nn.Module, shapes: list[FFNShape]) -> dict[str, Any]:
    """What a delta file records of the model it was trained on, and checks on load."""
    return {"architecture": type(model).__name__, "n_layers": len(shapes), "width": shapes[0].width,
            "hidden": shapes[0].hidden, "kind": shapes[0].kind, "transposed": shapes[0].transposed,
            "name_or_path": getattr(getattr(model, "config", None), "name_or_path", ""),
            "base_fingerprint": base_fingerprint(model)}


def _check_base(path: Any, saved: dict, current: dict) -> None:
    """Raise DeltaMismatchError naming the first difference between the saved and the current base model."""
    for key in ("architecture", "n_layers", "width", "hidden", "kind", "transposed", "base_fingerprint"):
        if saved.get(key) != current.get(key):
            what = "weights (fingerprint of the input embeddings)" if key == "base_fingerprint" else key
            raise DeltaMismatchError(
                f"{path} was trained on another model: {what} {saved.get(key)!r} there vs {current.get(key)!r} here "
                f"(saved from {saved.get('name_or_path') or 'an unnamed model'})")


def base_fingerprint(model: nn.Module) -> str:
    """sha256 of the first 16 rows of the input embeddings rounded to bf16: tells checkpoints apart, any dtype.

    Embeddings are never touched by a subnetwork, so the fingerprint survives training and merging.
    """
    weight = model.get_input_embeddings().weight
    rows = weight[:16].detach().to("cpu", torch.bfloat16).view(torch.int16).numpy()
    return hashlib.sha256(rows.tobytes() + str(tuple(weight.shape)).encode()).hexdigest()
