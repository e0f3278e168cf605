"""The points of the residual stream that transformers' ``output_hidden_states`` returns, as modules to hook.

For a model of L decoder blocks, ``hidden_states[0]`` is the input of block 0 (the embeddings' output, after any
scaling or position embeddings), ``hidden_states[l]`` for 0 < l < L the output of block l−1, and
``hidden_states[L]`` the output of the model's final norm: transformers returns the last entry after that norm,
not the raw output of the last block. ``edit_residual`` rewrites the stream at one of these points.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..errors import AtlasError
from .ffn import decoder_layers

_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f", "final_norm")


@dataclass(frozen=True)
class ResidualPoint:
    """Where ``hidden_states[layer]`` flows: the ``input`` (first argument) or the ``output`` of ``module``."""

    layer: int
    module: nn.Module
    where: Literal["input", "output"]


def final_norm(model: nn.Module) -> nn.Module:
    """The norm the model applies after its last decoder block (a sibling of the blocks' list named like a norm)."""
    name, layers = decoder_layers(model)
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    norms = {n: m for n, m in parent.named_children() if m is not layers and "norm" in type(m).__name__.lower()}
    named = [n for n in _FINAL_NORM_NAMES if n in norms]
    if len(norms) == 1 or named:
        return norms[named[0]] if named else next(iter(norms.values()))
    raise AtlasError(f"cannot find the final norm of {type(model).__name__} beside {name}: found "
                     f"{sorted(norms) or 'no norm'} (expected one of {', '.join(_FINAL_NORM_NAMES)})")


def residual_points(model: nn.Module) -> list[ResidualPoint]:
    """The L+1 points ``output_hidden_states`` indexes: block 0's input, blocks 0..L−2's outputs, the final norm's."""
    _, layers = decoder_layers(model)
    points = [ResidualPoint(0, layers[0], "input")]
    points += [ResidualPoint(i + 1, block, "output") for i, block in enumerate(layers[:-1])]
    return points + [ResidualPoint(len(layers), final_norm(model), "output")]


def edit_residual(point: ResidualPoint, edit: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Hook ``point`` so that its hidden states [batch, seq, hidden] become ``edit(h)``; returns the hook's handle.

    The hook runs before any other on the module (transformers records ``hidden_states`` with forward hooks of its
    own), so what the model returns as ``hidden_states[layer]`` is the edited stream.
    """
    if point.where == "input":
        def pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                return (edit(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": edit(kwargs["hidden_states"])}

        return point.module.register_forward_pre_hook(pre_hook, with_kwargs=True, prepend=True)

    def hook(module: nn.Module, args: tuple, output: Any) -> Any:
        if isinstance(output, tuple):  # blocks that return (hidden_states, attention weights, cache, ...)
            return (edit(output[0]), *output[1:])
        return edit(output)

    return point.module.register_forward_hook(hook, prepend=True)
