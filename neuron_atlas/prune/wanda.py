"""Wanda pruning masks (|W_ij|·‖X_j‖₂, lowest fraction of each output row removed) and the magnitude baseline.

Translation-calibrated pruning (Kim et al. 2024) is Wanda with few-shot translation prompts as calibration data;
``monolingual`` is plain Wanda on monolingual text and ``magnitude`` uses |W_ij| alone (per layer, as Wanda's
``prune_magnitude``). The same ratio applies to every nn.Linear of every decoder block; embeddings and the LM head
stay dense. Masks are True where a weight is removed, saved as safetensors and applied in place.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..errors import AtlasError, InvalidParameterError
from .._utils.files import write_bytes
from .._utils.progress import bar as progress_bar
from ..languages.tags import parse_pair
from .calibration import EOS, CalibrationSet, monolingual_set, open_source, translation_set
from ..modeling.ffn import decoder_layers
from ..modeling.threads import COMPUTE, torch_threads
from .stats import InputNorms, input_norms, prunable_linears


def parse_pattern(pattern: str, sparsity: float | None) -> tuple[float, tuple[int, int] | None]:
    """(sparsity, (n, m) or None) from 'unstructured' or 'N:M' (N of every M consecutive inputs removed)."""
    if pattern == "unstructured":
        if sparsity is None or not 0.0 <= sparsity < 1.0:
            raise InvalidParameterError(f"unstructured pruning needs a sparsity in [0, 1), got {sparsity}")
        return float(sparsity), None
    match = re.fullmatch(r"(\d+):(\d+)", pattern)
    if not match or not 0 < int(match[1]) < int(match[2]):
        raise InvalidParameterError(f"pattern {pattern!r}: use 'unstructured' or 'N:M' with 0 < N < M, e.g. '2:4'")
    n, m = int(match[1]), int(match[2])
    if sparsity is not None and abs(sparsity - n / m) > 1e-9:
        raise InvalidParameterError(f"pattern {pattern} removes {n}/{m} = {n / m:g} of the weights, "
                                    f"but sparsity={sparsity} was asked; pass sparsity={n / m:g} or None")
    return n / m, (n, m)


def row_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """True at the int(in_features · sparsity) lowest scores of every row (ties: lower column index first)."""
    k = int(scores.shape[1] * sparsity)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask.scatter_(1, torch.sort(scores, dim=1, stable=True).indices[:, :k], True)
    return mask


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """True at the n lowest scores of every group of m consecutive input columns of every row."""
    rows, cols = scores.shape
    if cols % m:
        raise InvalidParameterError(f"{n}:{m} sparsity needs in_features divisible by {m}, got {cols}")
    groups = scores.reshape(rows, cols // m, m)
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(2, torch.sort(groups, dim=2, stable=True).indices[..., :n], True)
    return mask.reshape(rows, cols)


def layer_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """True at the int(numel · sparsity) lowest scores of the whole matrix (Wanda's magnitude baseline)."""
    k = int(scores.numel() * sparsity)
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    mask[torch.sort(scores.flatten(), stable=True).indices[:k]] = True
    return mask.reshape(scores.shape)


@dataclass
class Masks:
    """Pruning masks by linear-layer name (True = weight removed) with what produced them."""

    masks: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)

    def sparsity(self) -> float:
        """Fraction of all masked weights that are removed."""
        return sum(int(m.sum()) for m in self.masks.values()) / max(sum(m.numel() for m in self.masks.values()), 1)

    def __repr__(self) -> str:
        """A few lines: what made the masks, how much they remove, by kind of weight and by layer (not the tensors)."""
        removed = {name: int(m.sum()) for name, m in self.masks.items()}
        size = {name: m.numel() for name, m in self.masks.items()}
        made = ", ".join(str(self.metadata[k]) for k in ("method", "pattern") if self.metadata.get(k) is not None)
        lines = [f"Masks({made + ': ' if made else ''}{len(self.masks)} weights, {sum(removed.values()):,} of "
                 f"{sum(size.values()):,} removed = {self.sparsity():.1%})"]
        kinds: dict[str, list[str]] = {}
        layers: dict[int, list[str]] = {}
        for name in self.masks:
            found = re.match(r"(?:.*?\.)?(\d+)\.(.+)", name)
            kinds.setdefault(found[2] if found else name, []).append(name)
            if found:
                layers.setdefault(int(found[1]), []).append(name)

        def rate(names: list[str]) -> float:
            return sum(removed[n] for n in names) / max(sum(size[n] for n in names), 1)

        def share(names: list[str]) -> str:
            return f"{rate(names):.1%}"

        label = max((len(kind) for kind in kinds), default=0)
        lines += [f"  {kind:<{label}}  ×{len(names)}  {share(names)} removed" for kind, names in kinds.items()]
        if layers:
            by_layer = sorted(layers.items())
            if len(by_layer) <= 8:
                lines.append("  by layer: " + ", ".join(f"{i} {share(names)}" for i, names in by_layer))
            else:
                ranked = sorted(by_layer, key=lambda item: rate(item[1]))
                lines.append(f"  by layer: {len(by_layer)} layers, from {share(ranked[0][1])} (layer {ranked[0][0]}) "
                             f"to {share(ranked[-1][1])} (layer {ranked[-1][0]})")
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        """Write the masks as one safetensors file, atomically; metadata goes in its header as JSON."""
        tensors = {name: m.to(torch.bool).contiguous().cpu() for name, m in self.masks.items()}
        meta = {"neuron_atlas": json.dumps(self.metadata, sort_keys=True)}
        write_bytes(safetensors_bytes(tensors, metadata=meta), path)

    @classmethod
    def load(cls, path: str | Path) -> Masks:
        """Read masks written by ``save``."""
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("neuron_atlas", "{}"))
        return cls(load_file(str(path)), meta)

    def apply(self, model: nn.Module) -> None:
        """Zero the removed weights of ``model`` in place; every mask must name a weight of the same shape."""
        modules = dict(model.named_modules())
        for name, mask in self.masks.items():
            module = modules.get(name)
            if module is None or not hasattr(module, "weight"):
                raise AtlasError(f"mask {name!r} names no layer with a weight in {type(model).__name__} "
                                 "(masks apply only to the model they were computed for)")
            if tuple(module.weight.shape) != tuple(mask.shape):
                raise AtlasError(f"mask {name!r} has shape {tuple(mask.shape)} but the weight has "
                                 f"{tuple(module.weight.shape)}")
        with torch.no_grad():
            for name, mask in self.masks.items():
                modules[name].weight.masked_fill_(mask.to(modules[name].weight.device), 0)


def wanda_scores(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """|W_ij| · s_j with s_j the column factor (‖X_j‖₂, or its contrast form)."""
    return weight.detach().abs().double() * scale.to(weight.device, torch.float64)[None, :]


def masks_from_scores(scores: torch.Tensor, sparsity: float, nm: tuple[int, int] | None) -> torch.Tensor:
    return nm_mask(scores, *nm) if nm else row_mask(scores, sparsity)


def wanda_masks(model: nn.Module, norms: InputNorms, *, sparsity: float | None = 0.5, pattern: str = "unstructured",
                contrast: InputNorms | None = None, metadata: dict | None = None) -> Masks:
    """Wanda masks for every prunable linear layer from calibration norms (optionally against a contrast set)."""
    ratio, nm = parse_pattern(pattern, sparsity)
    out = {}
    for name, module in prunable_linears(model).items():
        if name not in norms.sumsq:
            raise AtlasError(f"no calibration norms for {name!r}; were they collected on this model?")
        out[name] = masks_from_scores(wanda_scores(module.weight, norms.scale(name, contrast)), ratio, nm).cpu()
    return Masks(out, {"method": "wanda", "sparsity": ratio, "pattern": pattern,
                       "calibration_tokens": norms.tokens, **(metadata or {})})


def sequential_wanda_masks(model: nn.Module, calib: CalibrationSet, *, sparsity: float | None = 0.5,
                           pattern: str = "unstructured", contrast: CalibrationSet | None = None,
                           batch_size: int = 4, metadata: dict | None = None,
                           threads: int | None = COMPUTE.threads) -> Masks:
    """Wanda as its authors run it: block i is scored on inputs that flow through the already pruned blocks < i.

    Each block costs one calibration pass truncated after that block (about n_layers / 2 full passes in all);
    the model is pruned while this runs and its weights are restored before returning. ``threads``: torch's CPU
    threads (default: the policy of ``modeling.threads``), recorded in the metadata.
    """
    ratio, nm = parse_pattern(pattern, sparsity)
    linears = prunable_linears(model)
    original = {name: m.weight.detach().clone() for name, m in linears.items()}
    out: dict[str, torch.Tensor] = {}
    _, blocks = decoder_layers(model)
    # block i's pass runs blocks 0..i: (i + 1) / L of a full pass, so the bar counts full-pass tokens and its ETA holds
    total = (calib.tokens + (contrast.tokens if contrast is not None else 0)) * (len(blocks) + 1) / 2
    try:
        with torch_threads(threads) as n, progress_bar("sequential Wanda", total, "tok") as bar:
            for i, block in enumerate(blocks):
                bar.describe(f"sequential Wanda: block {i + 1}/{len(blocks)}")
                own = {n: m for n, m in linears.items() if any(m is x for x in block.modules())}
                weight = (i + 1) / len(blocks)
                norms = input_norms(model, calib, batch_size=batch_size, modules=own, stop_after=block, bar=bar,
                                    weight=weight)
                against = (input_norms(model, contrast, batch_size=batch_size, modules=own, stop_after=block, bar=bar,
                                       weight=weight) if contrast is not None else None)
                masks = Masks({n: masks_from_scores(wanda_scores(m.weight, norms.scale(n, against)), ratio, nm).cpu()
                               for n, m in own.items()})
                masks.apply(model)
                out.update(masks.masks)
    finally:
        with torch.no_grad():
            for name, m in linears.items():
                m.weight.copy_(original[name])
    return Masks(out, {"method": "wanda", "sequential": True, "sparsity": ratio, "pattern": pattern,
                       "calibration_tokens": calib.tokens, **(metadata or {}), "threads": n})


def magnitude_masks(model: nn.Module, *, sparsity: float | None = 0.5, pattern: str = "unstructured",
                    per: str = "layer") -> Masks:
    """|W| masks: the lowest fraction of each layer (Wanda's baseline, ``per='layer'``) or of each row (``'row'``)."""
    if per not in ("layer", "row"):
        raise InvalidParameterError(f"per must be 'layer' or 'row', got {per!r}")
    ratio, nm = parse_pattern(pattern, sparsity)
    out = {}
    for name, module in prunable_linears(model).items():
        scores = module.weight.detach().abs()
        out[name] = (nm_mask(scores, *nm) if nm else
                     layer_mask(scores, ratio) if per == "layer" else row_mask(scores, ratio)).cpu()
    return Masks(out, {"method": "magnitude", "sparsity": ratio, "pattern": pattern, "per": per})


def _source_langs(pairs: Sequence[str | Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(parse_pair(p)[0] for p in pairs))


def _calibrated(model: nn.Module, calib: CalibrationSet, contrast: CalibrationSet | None, *, sequential: bool,
                sparsity: float | None, pattern: str, batch_size: int, metadata: dict, threads: int | None) -> Masks:
    """Calibrate and score with ``threads`` torch threads (recorded in the masks' metadata)."""
    with torch_threads(threads) as n:
        if sequential:
            return sequential_wanda_masks(model, calib, sparsity=sparsity, pattern=pattern, contrast=contrast,
                                          batch_size=batch_size, metadata=metadata, threads=n)
        total = calib.tokens + (contrast.tokens if contrast is not None else 0)
        with progress_bar("Wanda calibration", total, "tok") as bar:
            against = input_norms(model, contrast, batch_size=batch_size, bar=bar) if contrast is not None else None
            norms = input_norms(model, calib, batch_size=batch_size, bar=bar)
        return wanda_masks(model, norms, sparsity=sparsity, pattern=pattern, contrast=against,
                           metadata={**metadata, "threads": n})


def translation_calibrated(model: nn.Module, tokenizer: Any, pairs: Sequence[str | Sequence[str]],
                           sparsity: float | None = 0.3, corpus: Any = "udhr", *, pattern: str = "unstructured",
                           contrast: str | CalibrationSet | None = None, sequential: bool = False,
                           nsamples: int = 100, shots: int = 4, max_length: int = 512, sep: str = EOS, seed: int = 0,
                           batch_size: int = 4, threads: int | None = COMPUTE.threads) -> Masks:
    """Kim et al. (2024): Wanda calibrated on few-shot translation prompts of ``pairs`` (e.g. ['sw-en']).

    ``contrast='monolingual'`` (or any CalibrationSet) scores against a contrast set: rms_j² / rms^c_j.
    ``sequential=True`` scores each block after pruning the earlier ones, as the authors' code does.
    ``threads``: torch's CPU threads for calibration and scoring (default: the policy of ``modeling.threads``:
    ``$NEURON_ATLAS_THREADS``, else the idle cores; torch's own setting after), recorded in the metadata.
    """
    name, corpus = corpus if isinstance(corpus, str) else type(corpus).__name__, open_source(corpus)
    calib = translation_set(tokenizer, corpus, pairs, nsamples=nsamples, shots=shots, max_length=max_length,
                            sep=sep, seed=seed)
    if contrast == "monolingual":
        contrast = monolingual_set(tokenizer, corpus, _source_langs(pairs), nsamples=nsamples, shots=shots,
                                   max_length=max_length, sep=sep, seed=seed)
    elif isinstance(contrast, str):
        raise InvalidParameterError(f"contrast={contrast!r}: use 'monolingual', a CalibrationSet or None")
    return _calibrated(model, calib, contrast, sequential=sequential, sparsity=sparsity, pattern=pattern,
                       batch_size=batch_size, threads=threads,
                       metadata={"calibration": "translation", "pairs": ["-".join(parse_pair(p)) for p in pairs],
                                 "corpus": name, "nsamples": nsamples, "shots": shots, "max_length": max_length,
                                 "seed": seed, "contrast": None if contrast is None else contrast.kind})


def monolingual(model: nn.Module, tokenizer: Any, pairs: Sequence[str | Sequence[str]],
                sparsity: float | None = 0.3, corpus: Any = "udhr", *, pattern: str = "unstructured",
                sequential: bool = False, nsamples: int = 100, shots: int = 4, max_length: int = 512,
                sep: str = EOS, seed: int = 0, batch_size: int = 4, threads: int | None = COMPUTE.threads) -> Masks:
    """Plain Wanda baseline: calibrated on monolingual text of the pairs' source languages (the authors' 'mono');
    ``threads`` as in ``translation_calibrated``."""
    langs = _source_langs(pairs)
    calib = monolingual_set(tokenizer, corpus, langs, nsamples=nsamples, shots=shots, max_length=max_length,
                            sep=sep, seed=seed)
    return _calibrated(model, calib, None, sequential=sequential, sparsity=sparsity, pattern=pattern,
                       batch_size=batch_size, threads=threads,
                       metadata={"calibration": "monolingual", "langs": langs,
                                 "corpus": corpus if isinstance(corpus, str) else type(corpus).__name__,
                                 "nsamples": nsamples, "shots": shots, "max_length": max_length, "seed": seed})


def magnitude(model: nn.Module, tokenizer: Any = None, pairs: Sequence[str | Sequence[str]] = (),
              sparsity: float | None = 0.3, corpus: Any = None, *, pattern: str = "unstructured",
              per: str = "layer", threads: int | None = COMPUTE.threads, **_calibration: Any) -> Masks:
    """Magnitude baseline with the same call shape as ``translation_calibrated`` (it needs no data)."""
    with torch_threads(threads):
        return magnitude_masks(model, sparsity=sparsity, pattern=pattern, per=per)
