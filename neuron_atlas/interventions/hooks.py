"""Switch selected FFN neurons off, clamp them to a value, or shift them, while a transformers model runs; or add a
vector to the residual stream (``steer_residual``).

Each intervention is a forward pre-hook on every affected layer's down projection (fc_out), editing the
FFN's intermediate activation ``act(gate(x)) * up(x)`` (``act(fc_in(x))`` for plain FFNs) in the columns of
the selected neurons. It works in ``forward``, ``generate`` and training. Without autograd the edit is in place, so
the overhead is one indexed write.

Creating an intervention changes nothing: it acts inside a ``with`` block (TransformerLens' ``model.hooks(...)``
convention) or between ``enable()`` and ``disable()`` (PEFT's ``enable_adapters``/``disable_adapters``), so a model
is never left edited by a forgotten object.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import nn

from ..errors import InvalidParameterError, MaskError
from ..masks import FFNShape, NeuronMask, neuron_mask, neuron_masks
from ..modeling.ffn import find_ffns, hidden_size
from ..modeling.residual import edit_residual, residual_points
from ..modeling.threads import COMPUTE, torch_threads

Value = float | np.ndarray | torch.Tensor | Mapping[int, Any]
_H = TypeVar("_H", bound="_Hooks")


class _Hooks:
    """Forward hooks prepared on a model, attached only inside a ``with`` block or between ``enable()`` and
    ``disable()``; subclasses set ``_attach``, which registers them and returns the handles."""

    _handles: list

    def _attach(self) -> list:
        raise NotImplementedError

    def enable(self: _H) -> _H:
        """Attach the hooks (idempotent): the model runs edited until ``disable()``."""
        if not self._handles:
            self._handles = self._attach()
        return self

    def disable(self) -> None:
        """Take the hooks off (idempotent): the model runs as before."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    remove = disable  # the torch hook handles' word

    @property
    def active(self) -> bool:
        """Whether the hooks are attached now."""
        return bool(self._handles)

    def __enter__(self: _H) -> _H:
        return self.enable()

    def __exit__(self, *exc: object) -> None:
        self.disable()


class Intervention(_Hooks):
    """Hooks that set (``op='set'``) or shift (``op='add'``) the selected neurons' activations, attached inside a
    ``with`` block or between ``enable()`` and ``disable()``."""

    def __init__(self, model: nn.Module, neurons: Any, *, op: Literal["set", "add"], value: Value,
                 lang: str | list[str] | None = None) -> None:
        if op not in ("set", "add"):
            raise InvalidParameterError(f"op must be 'set' or 'add', got {op!r}")
        ffns = find_ffns(model)
        self.mask: NeuronMask = neuron_mask(neurons, lang=lang, shape=[FFNShape.of(f) for f in ffns])
        if not len(self.mask):
            raise MaskError(f"nothing to intervene on: the mask ({self.mask.describe()}) is empty")
        self.op = op
        hooks = []  # every layer's values are checked before any hook goes on
        for ffn in ffns:
            idx = self.mask.indices[ffn.layer]
            if idx.size:
                device = ffn.down.weight.device
                values = _layer_values(value, ffn.layer, idx, self.mask)
                hooks.append((ffn.down, _EditHook(op, torch.from_numpy(idx.copy()).to(device), values.to(device))))
        self._hooks, self._handles = hooks, []

    def _attach(self) -> list:
        return [down.register_forward_pre_hook(hook) for down, hook in self._hooks]

    def __repr__(self) -> str:
        return f"Intervention(op={self.op!r}, {self.mask.describe()}, {'active' if self.active else 'inactive'})"


def deactivate(model: nn.Module, neurons: Any, value: Value = 0.0, *, lang: str | list[str] | None = None) -> Intervention:
    """Set the neurons' activations to ``value`` (0: Tang et al.'s deactivation; a constant: steering)."""
    return Intervention(model, neurons, op="set", value=value, lang=lang)


def add_offset(model: nn.Module, neurons: Any, offset: Value, *, lang: str | list[str] | None = None) -> Intervention:
    """Add ``offset`` (a scalar or one value per neuron) to the neurons' activations."""
    return Intervention(model, neurons, op="add", value=offset, lang=lang)


class _EditHook:
    """The pre-hook of one down projection: writes or adds ``values`` at ``index`` of the last dimension."""

    def __init__(self, op: str, index: torch.Tensor, values: torch.Tensor) -> None:
        self.op, self.index, self.values = op, index, values
        self.fill = float(values.reshape(-1)[0]) if values.numel() == 1 and op == "set" else None
        self._cast: dict[torch.dtype, torch.Tensor] = {}

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        h = args[0]
        inplace = not (torch.is_grad_enabled() and h.requires_grad)
        if self.fill is not None:
            h = h.index_fill_(-1, self.index, self.fill) if inplace else h.index_fill(-1, self.index, self.fill)
        else:
            values = self._cast.get(h.dtype)
            if values is None:
                values = self._cast.setdefault(h.dtype, self.values.to(h.dtype))
            src = values.expand(*h.shape[:-1], self.index.numel())
            if self.op == "set":
                h = h.index_copy_(-1, self.index, src) if inplace else h.index_copy(-1, self.index, src)
            else:
                h = h.index_add_(-1, self.index, src) if inplace else h.index_add(-1, self.index, src)
        return (h, *args[1:])


def _layer_values(value: Value, layer: int, idx: np.ndarray, mask: NeuronMask) -> torch.Tensor:
    """The values of one layer's selected neurons, as a float32 tensor of 1 (scalar) or ``len(idx)`` entries."""
    if isinstance(value, Mapping):
        got = value.get(layer)
        if got is None:
            raise MaskError(f"value dict has no entry for layer {layer}, which has {idx.size} selected neurons")
        arr = torch.as_tensor(np.asarray(got) if not isinstance(got, torch.Tensor) else got).float().reshape(-1)
        if arr.numel() not in (1, idx.size):
            raise MaskError(f"layer {layer}: {arr.numel()} values for {idx.size} selected neurons")
        return arr
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor([float(value)])
    arr = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value).float()
    if arr.numel() == 1:
        return arr.reshape(1)
    if tuple(arr.shape) != mask.shape:
        raise MaskError(f"per-neuron values must be a scalar, a {{layer: values}} dict or a [n_layers, width] = "
                        f"{list(mask.shape)} array; got shape {list(arr.shape)}")
    return arr[layer, torch.from_numpy(idx.copy())]


@torch.no_grad()
def mean_activations(model: nn.Module, windows: Sequence[Sequence[int]], neurons: Any, *,
                     skip_first: bool = False, threads: int | None = COMPUTE.threads) -> np.ndarray:
    """Mean FFN activation (the down projection's input) of the selected neurons over every token of ``windows``.

    Returns a float32 ``[n_layers, width]`` array (0 outside the mask); ``skip_first`` leaves each window's first
    position (a BOS token) out of the mean. Windows run one at a time, so there is no padding to mask.
    ``threads``: torch's CPU threads for the forward passes (default: the policy of ``modeling.threads``:
    ``$NEURON_ATLAS_THREADS``, else the idle cores); torch's own setting is restored after.
    """
    ffns = find_ffns(model)
    mask = neuron_mask(neurons, shape=[FFNShape.of(f) for f in ffns])
    device = next(model.parameters()).device
    sums = {f.layer: torch.zeros(mask.indices[f.layer].size, dtype=torch.float64) for f in ffns}
    index = {f.layer: torch.from_numpy(mask.indices[f.layer].copy()).to(device) for f in ffns}
    start, count = int(skip_first), 0

    def hook(layer: int):
        def record(module: nn.Module, args: tuple) -> None:
            sums[layer] += args[0][0, start:].index_select(-1, index[layer]).double().sum(0).cpu()
        return record

    handles = [f.down.register_forward_pre_hook(hook(f.layer)) for f in ffns if mask.indices[f.layer].size]
    try:
        with torch_threads(threads):
            for window in windows:
                model(input_ids=torch.tensor([list(window)], device=device))
                count += len(window) - start
    finally:
        for handle in handles:
            handle.remove()
    if count <= 0:
        raise InvalidParameterError("no tokens to average over: give at least one window longer than its skipped first token")
    out = np.zeros(mask.shape, dtype=np.float32)
    for layer, total in sums.items():
        out[layer, mask.indices[layer]] = (total / count).numpy()
    return out


def steer(model: nn.Module, neurons: Any, *, to: str, source: str | None = None, values: Value | None = None,
          text: Any = None, tokenizer: Any = None, seq_len: int = 128, max_tokens: int = 1024,
          threads: int | None = COMPUTE.threads) -> Intervention:
    """Steer generation towards language ``to`` as CLaS-Bench's neuron method does: the ``source`` language's
    neurons are switched off (0) and ``to``'s are set to their mean activation on text in ``to``.

    ``neurons`` holds both languages' sets (e.g. ``atlas.neurons(model, ["en", "tl"], size=200)``). The means come
    from ``values`` (a ``[n_layers, width]`` array or ``{layer: values}`` of stored statistics) or from a short
    calibration on ``text`` (``max_tokens`` tokens of ``to``, with ``tokenizer``; ``threads``: torch's CPU threads
    for it, as in ``mean_activations``). A neuron in both sets takes ``to``'s value.
    """
    ffns = find_ffns(model)
    shapes = [FFNShape.of(f) for f in ffns]
    target = neuron_mask(neurons, lang=to, shape=shapes)
    if values is None:
        if text is None:
            raise InvalidParameterError("steer() needs the target's mean activations: pass values= or calibration text= in "
                             f"{to!r} (with tokenizer= for a string)")
        from ..modeling.tokens import bos_id, sequences

        if isinstance(text, str) and tokenizer is None:
            raise InvalidParameterError("calibration text given as a string without a tokenizer; pass tokenizer= or token ids")
        ids = tokenizer(text, add_special_tokens=False)["input_ids"] if isinstance(text, str) else [int(t) for t in text]
        bos = bos_id(tokenizer) if isinstance(text, str) else None
        values = mean_activations(model, sequences(ids[:max_tokens], seq_len, bos), target, skip_first=bos is not None,
                                  threads=threads)
    chosen = target.dense()
    full = np.zeros(target.shape, dtype=np.float32)
    for layer in target.layers():
        idx = target.indices[layer]
        full[layer, idx] = _layer_values(values, layer, idx, target).numpy()
    if source is not None:  # an empty source set switches nothing off
        chosen = chosen | next(iter(neuron_masks(neurons, lang=[source], shape=shapes).values())).dense()
    mask = NeuronMask.from_dense(chosen, model=target.model, languages=target.languages, params=target.params)
    return Intervention(model, mask, op="set", value=full)


class ResidualSteering(_Hooks):
    """A hook adding ``strength · vector`` to the residual stream at one ``output_hidden_states`` point, attached
    inside a ``with`` block or between ``enable()`` and ``disable()``."""

    def __init__(self, model: nn.Module, vector: np.ndarray | torch.Tensor, layer: int, strength: float = 1.0) -> None:
        points = residual_points(model)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(points):
            raise InvalidParameterError(f"layer must be an output_hidden_states index 0..{len(points) - 1} (0: the "
                                        f"embeddings, {len(points) - 1}: after the final norm), got {layer!r}")
        vec = torch.as_tensor(np.asarray(vector) if not isinstance(vector, torch.Tensor) else vector).float()
        if vec.dim() == 2 and vec.shape[0] == len(points):  # all layers' vectors, as steering_vector(layer=None) gives
            vec = vec[layer]
        point, param = points[layer], next(model.parameters())
        hidden = hidden_size(model)
        if vec.dim() != 1 or (hidden is not None and vec.numel() != hidden):
            raise InvalidParameterError(f"the steering vector must have shape [{hidden}] (or [{len(points)}, {hidden}] "
                                        f"for every layer), got {list(vec.shape)}")
        self.layer, self.strength = int(layer), float(strength)
        self.delta = (self.strength * vec).to(param.device)
        self._cast: dict[torch.dtype, torch.Tensor] = {}
        self._point, self._handles = point, []

    def _attach(self) -> list:
        return [edit_residual(self._point, self._add)]

    def _add(self, h: torch.Tensor) -> torch.Tensor:
        delta = self._cast.get(h.dtype)
        if delta is None:
            delta = self._cast.setdefault(h.dtype, self.delta.to(h.device, h.dtype))
        return h + delta

    def __repr__(self) -> str:
        return (f"ResidualSteering(layer={self.layer}, strength={self.strength}, |v|={float(self.delta.norm()):.4g}, "
                f"{'active' if self.active else 'inactive'})")


def steer_residual(model: nn.Module, vector: np.ndarray | torch.Tensor, layer: int, strength: float = 1.0) -> ResidualSteering:
    """Add ``strength · vector`` to every position's hidden state at ``output_hidden_states`` index ``layer``.

    Layer 0 is the embeddings' output (block 0's input), layer l the output of block l−1, and the last layer the
    output of the final norm, as transformers indexes ``hidden_states``; so a DiffMean vector from
    ``atlas.steering_vector(model, lang, layer=l)`` is added where its means were taken. ``vector`` is ``[hidden]``
    or ``[n_layers + 1, hidden]`` (the row ``layer`` is used).
    """
    return ResidualSteering(model, vector, layer, strength)
