"""Subnetwork fine-tuning: train only the FFN weights tied to a neuron set, through deltas on frozen weights.

``get_subnetwork_model(model, SubnetworkConfig(neurons))`` (or ``subnetwork(model, neurons)``) freezes the
model and gives every selected neuron a trainable gate row, up row and down column (|S|×hidden per
projection), so gradients and optimizer state exist only for the subnetwork. The model stays the same
``transformers`` object (train it with ``Trainer`` or a plain loop); while it carries the subnetwork its
``save_pretrained``/``push_to_hub`` write the adapter (PEFT's folder layout, ``adapter.py``), as a PeftModel's do, so
Trainer checkpoints hold only the deltas. ``save``/``load`` move a single delta file; ``merge_and_unload`` writes
the deltas into the base weights and gives back the plain model.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._utils.files import write_bytes
from ..errors import AtlasError, DeltaMismatchError, MaskError
from ..masks import DELTA_FORMAT, DELTA_FORMAT_VERSION, FFNShape, NeuronMask, neuron_mask
from ..modeling.ffn import FFN, find_ffns
from ..modeling.load import PACKAGES, PROVENANCE_FILE, parse_dtype
from . import adapter
from .config import SubnetworkConfig
from .layer import DELTA_NAME, NeuronDelta, add_delta_hook


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
        self._paths: dict[str, str] = {}  # delta key -> the projection's module path in the model
        names = {id(m): n for n, m in model.named_modules()}
        model.requires_grad_(False)
        for ffn, shape in zip(self.ffns, self.shapes):
            idx = self.mask.indices[ffn.layer]
            if idx.size:
                for proj in config.projections:
                    self._attach(ffn, shape, proj, idx, names)
        if not self.deltas:
            raise MaskError(f"projections {config.projections} select no weights of this {self.shapes[0].kind} FFN "
                            "(plain and fused FFNs have no separate 'gate'; use 'up' and 'down')")
        if hasattr(model, "save_pretrained"):  # a transformers model: its own save/push now write the adapter
            model.__class__ = _with_subnetwork(type(model))
            model._neuron_subnetwork = self

    def _attach(self, ffn: FFN, shape: FFNShape, proj: str, idx: np.ndarray, names: dict[int, str]) -> None:
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
        self._paths[f"layers.{ffn.layer}.{proj}"] = names[id(module)]

    # --- files --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the deltas (plus the neuron set) as one safetensors file, atomically."""
        write_bytes(self._delta_file(), path)

    def save_pretrained(self, save_directory: str | os.PathLike, *, state_dict: dict[str, torch.Tensor] | None = None,
                        is_main_process: bool = True, **_: Any) -> None:
        """Write the adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``), PEFT's layout.

        ``state_dict`` (the model's, as Trainer passes it under DeepSpeed/FSDP) supplies the deltas when given;
        only the main process writes. Other ``save_pretrained`` options (sharding, serialization) do not apply.
        """
        if not is_main_process:
            return
        weights = self._delta_file(state_dict)
        config = adapter.adapter_config(
            base=describe_base(self.model, self.shapes), mask=self.mask.metadata(),
            revision=self.config.revision or getattr(getattr(self.model, "config", None), "_commit_hash", None),
            projections=list(self.config.projections), dtype=str(next(iter(self.deltas.values())).weight.dtype)
            .removeprefix("torch."), target_modules=[self._paths[k] for k in self.deltas], weights=weights)
        adapter.write_adapter(save_directory, config, weights)

    def push_to_hub(self, repo_id: str, *, revision: str = "main", create_pr: bool = False, token: str | None = None,
                    private: bool | None = None, commit_message: str | None = None, **_: Any) -> Any:
        """Publish the adapter folder (and a model card) as one commit to the Hub model repo ``repo_id``."""
        from .publish import push_adapter

        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            return push_adapter(folder, repo_id, revision=revision, create_pr=create_pr, token=token,
                                private=private, commit_message=commit_message)

    @classmethod
    def from_pretrained(cls, model: nn.Module, model_id: str | os.PathLike, *, revision: str | None = None,
                        token: str | None = None, cache_dir: str | os.PathLike | None = None,
                        is_trainable: bool = False) -> SubnetworkModel:
        """Rebuild a saved subnetwork on ``model`` from an adapter folder, a delta file or a Hub model repo.

        As PEFT's ``from_pretrained``: frozen and in eval mode unless ``is_trainable``. The base must be the model
        the adapter was trained on (same shape and weights), else DeltaMismatchError.
        """
        where = adapter.resolve_adapter(model_id, revision=revision, token=token, cache_dir=cache_dir)
        sub = load_subnetwork(model, where)
        if not is_trainable:
            for delta in sub.deltas.values():
                delta.weight.requires_grad_(False)
            model.eval()
        return sub

    def _delta_file(self, state_dict: dict[str, torch.Tensor] | None = None) -> bytes:
        """The delta file's bytes: deltas (from ``state_dict`` when given), the neuron set, the base's description."""
        from safetensors.torch import save

        if state_dict is None:
            tensors = {k: d.weight.detach().cpu().contiguous() for k, d in self.deltas.items()}
        else:
            tensors = {k: state_dict[f"{self._paths[k]}.{DELTA_NAME}.weight"].detach().cpu().contiguous()
                       for k in self.deltas}
        offsets = np.concatenate([[0], np.cumsum(self.mask.counts())])
        tensors["indices"] = torch.from_numpy(np.concatenate(self.mask.indices).astype(np.int32))
        tensors["offsets"] = torch.from_numpy(offsets.astype(np.int64))
        meta = {"format": DELTA_FORMAT, "format_version": str(DELTA_FORMAT_VERSION),
                "mask": json.dumps(self.mask.metadata(), default=str),
                "base": json.dumps(describe_base(self.model, self.shapes)),
                "projections": json.dumps(list(self.config.projections))}
        return save(tensors, metadata=meta)

    def load(self, path: str | Path) -> None:
        """Load deltas saved by ``save`` or ``save_pretrained`` (a file or an adapter folder); every check runs
        before anything is written (no partial loads)."""
        self._load(adapter.read_adapter(path))

    def _load(self, saved: adapter.Adapter) -> None:
        """Copy the deltas of a validated adapter in, after checking it is this subnetwork's on this model."""
        path, mask = saved.path, saved.mask
        if mask != self.mask:
            raise DeltaMismatchError(
                f"{path} was trained for another neuron set ({mask.describe()}, fingerprint {mask.fingerprint()[:12]}); "
                f"this subnetwork is {self.mask.describe()} (fingerprint {self.mask.fingerprint()[:12]})")
        _check_base(path, saved.header.base.model_dump(), describe_base(self.model, self.shapes))
        want = {k: tuple(d.weight.shape) for k, d in self.deltas.items()}
        got = {k: tuple(t.shape) for k, t in saved.tensors.items()}
        if want != got:
            raise DeltaMismatchError(f"{path} holds deltas {sorted(got)} but this subnetwork has {sorted(want)} "
                                     f"(projections {list(self.config.projections)}); shapes differ")
        with torch.no_grad():
            for key, delta in self.deltas.items():
                delta.weight.copy_(saved.tensors[key])

    # --- merge --------------------------------------------------------------------------------------------
    def merge_and_unload(self) -> nn.Module:
        """Add every delta into its base weight (in place), remove the hooks and deltas, return the model."""
        for key, delta in self.deltas.items():
            delta.merge_into(self._module(key).weight)
        return self.unload()

    def unload(self) -> nn.Module:
        """Remove the hooks and deltas without merging, restore the parameters' requires_grad, return the model."""
        if getattr(self.model, "_neuron_subnetwork", None) is self:
            self.model.__class__ = type(self.model)._subnetwork_base
            del self.model._neuron_subnetwork
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
        name = getattr(type(self.model), "_subnetwork_base", type(self.model)).__name__
        return f"SubnetworkModel({name}, {self.mask.describe()}, {self.trainable_summary()})"


class _SavesSubnetwork:
    """Mixed into a transformers model's class while it carries a subnetwork: ``save_pretrained`` and
    ``push_to_hub`` (what Trainer, TRL and users call) write the adapter, as a PeftModel's do, not the whole model."""

    _neuron_subnetwork: SubnetworkModel
    _subnetwork_base: type

    def save_pretrained(self, save_directory: str | os.PathLike, *, state_dict: dict[str, torch.Tensor] | None = None,
                        is_main_process: bool = True, **kwargs: Any) -> None:
        self._neuron_subnetwork.save_pretrained(save_directory, state_dict=state_dict, is_main_process=is_main_process)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        return self._neuron_subnetwork.push_to_hub(repo_id, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> tuple:
        """Pickle (torch.save, deepcopy) through the model's own class: the combined class is made at run time."""
        return (_new_with_subnetwork, (self._subnetwork_base,), *super().__reduce_ex__(protocol)[2:])


_CLASSES: dict[type, type] = {}


def _new_with_subnetwork(cls: type) -> nn.Module:
    """An empty instance of ``cls`` with the mixin, for unpickling (its state is set afterwards)."""
    combined = _with_subnetwork(cls)
    return combined.__new__(combined)


def _with_subnetwork(cls: type) -> type:
    """``cls`` with ``_SavesSubnetwork`` in front (one class per model class, named after it)."""
    if cls not in _CLASSES:
        _CLASSES[cls] = type(f"{cls.__name__}WithSubnetwork", (_SavesSubnetwork, cls),
                             {"_subnetwork_base": cls, "__module__": __name__})
    return _CLASSES[cls]


def attached_subnetwork(model: nn.Module) -> SubnetworkModel | None:
    """The SubnetworkModel a transformers model currently carries, if any."""
    return getattr(model, "_neuron_subnetwork", None)


def get_subnetwork_model(model: nn.Module, config: SubnetworkConfig) -> SubnetworkModel:
    """Freeze ``model`` and make only the subnetwork of ``config.neurons`` trainable (PEFT's get_peft_model)."""
    return SubnetworkModel(model, config)


def subnetwork(model: nn.Module, neurons: Any, *, lang: str | list[str] | None = None,
               projections: tuple[str, ...] = ("gate", "up", "down"), dtype: str | None = None) -> SubnetworkModel:
    """Shortcut for ``get_subnetwork_model(model, SubnetworkConfig(neurons, lang, projections, dtype))``."""
    return SubnetworkModel(model, SubnetworkConfig(neurons, lang=lang, projections=projections, dtype=dtype))


def load_subnetwork(model: nn.Module, path: str | Path) -> SubnetworkModel:
    """Rebuild the subnetwork a delta file or adapter folder was saved from (its neuron set travels with it) and
    load the deltas, trainable (``SubnetworkModel.from_pretrained`` also reads Hub repos)."""
    saved = adapter.read_adapter(path)
    _check_base(path, saved.header.base.model_dump(),
                describe_base(model, [FFNShape.of(f) for f in find_ffns(model)]))
    revision = saved.config.revision if saved.config is not None else None
    sub = SubnetworkModel(model, SubnetworkConfig(saved.mask, projections=tuple(saved.header.projections),
                                                  dtype=saved.dtype, revision=revision))
    try:
        sub._load(saved)
    except BaseException:
        sub.unload()
        raise
    return sub


def read_delta(path: str | Path) -> tuple[NeuronMask, dict[str, str], dict[str, torch.Tensor]]:
    """The neuron set, header (safetensors metadata) and delta tensors of a file written by ``SubnetworkModel.save``
    or of an adapter folder, validated by ``adapter.read_adapter`` (AtlasFormatError/DeltaMismatchError if not)."""
    saved = adapter.read_adapter(path)
    return saved.mask, dict(saved.metadata), dict(saved.tensors)


def describe_base(model: nn.Module, shapes: list[FFNShape]) -> dict[str, Any]:
    """What a delta file records of the model it was trained on, and checks on load."""
    cls = getattr(type(model), "_subnetwork_base", type(model))
    return {"architecture": cls.__name__, "n_layers": len(shapes), "width": shapes[0].width,
            "hidden": shapes[0].hidden, "kind": shapes[0].kind, "transposed": shapes[0].transposed,
            **base_name(getattr(getattr(model, "config", None), "name_or_path", "") or ""),
            "base_fingerprint": base_fingerprint(model)}


def base_name(name_or_path: str) -> dict[str, str]:
    """``name_or_path`` as an adapter records it: a packaged model (``modeling.load.load_packaged``, loaded from its
    cache folder under this machine's ``$NEURON_ATLAS_CACHE``) by its slug and PyPI source, never by that local path;
    anything else (a Hub id, the user's own folder) as it is."""
    folder = Path(name_or_path) if name_or_path else None
    if folder is not None and folder.name in PACKAGES and (folder / PROVENANCE_FILE).is_file():
        try:
            source = json.loads((folder / PROVENANCE_FILE).read_text()).get("source")
        except (OSError, ValueError, AttributeError):
            source = None
        if isinstance(source, str) and source.startswith("pypi:"):
            return {"name_or_path": folder.name, "source": source}
    return {"name_or_path": name_or_path}


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
