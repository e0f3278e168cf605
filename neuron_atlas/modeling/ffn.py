"""Find the feed-forward (FFN) block of every decoder layer of a causal LM, from its modules' shapes.

The decoder layers are the longest ``nn.ModuleList``; in each layer the FFN is the module whose
linear children are exactly an up projection ``hidden -> width`` (plus a gate of the same shape, or
fused ``hidden -> 2*width``) and a down projection ``width -> hidden``. Attention blocks never match
(their q/k/v/o shapes do not close into such a set). Where the module can be called on its own, the
gate/up order and the activation are confirmed by recomputing its output by hand.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import AtlasError

_ACT_ATTRS = ("act_fn", "act", "activation_fn", "activation", "gelu_impl", "activation_function")
_CONFIG_ACTS = ("hidden_act", "hidden_activation", "activation_function", "hidden_activation_fn")


@dataclass
class FFN:
    """One decoder layer's FFN: the modules to hook and how a neuron's activation is computed."""

    layer: int
    module: nn.Module  # the MLP block (the decoder layer itself for OPT-style fc1/fc2)
    kind: Literal["gated", "fused_gated", "plain"]
    gate: nn.Module | None  # gate_proj (gated); None for plain and fused
    up: nn.Module  # up_proj (gated), gate_up_proj (fused: rows [gate; up]), fc_in (plain)
    down: nn.Module  # down_proj / fc_out / c_proj / dense_4h_to_h
    act: Callable  # applied to the gate (gated) or fc_in output (plain)
    width: int  # FFN neurons
    hidden: int


def linear_shape(module: nn.Module) -> tuple[int, int] | None:
    """(in_features, out_features) of an nn.Linear or GPT-2 style Conv1D (transposed weight), else None."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "nx"):
        return module.nx, module.nf
    return None


def decoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The longest ModuleList of same-class blocks (the decoder layers), with its qualified name."""
    lists = [
        (name, mod) for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) and len({type(m) for m in mod}) == 1
        and linear_shape(mod[0]) is None
    ]
    if not lists:
        raise AtlasError(f"{type(model).__name__} has no nn.ModuleList of decoder layers; cannot find its FFNs")
    return max(lists, key=lambda item: len(item[1]))


def hidden_size(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("hidden_size", "n_embd", "d_model", "word_embed_proj_dim"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    return None


def find_ffns(model: nn.Module) -> list[FFN]:
    """The FFN of every decoder layer in order; raises AtlasError naming the modules found when unrecognised."""
    layers_name, layers = decoder_layers(model)
    hidden = hidden_size(model)
    ffns = []
    for index, layer in enumerate(layers):
        ffn = _layer_ffn(model, index, layer, hidden)
        if ffn is None:
            found = [f"{layers_name}.{index}.{n} {type(m).__name__}{linear_shape(m)}" for n, m in layer.named_modules()
                     if linear_shape(m) is not None]
            raise AtlasError(
                f"cannot find the FFN of decoder layer {index} of {type(model).__name__} "
                f"(hidden size {hidden}); linear modules found: {found or 'none'}. Expected an MLP whose linear "
                "layers are up hidden->width (+ gate of the same shape, or fused hidden->2*width) and down width->hidden"
            )
        ffns.append(ffn)
    return ffns


def _layer_ffn(model: nn.Module, index: int, layer: nn.Module, hidden: int | None) -> FFN | None:
    for module in layer.modules():
        linears = {n: c for n, c in module.named_children() if linear_shape(c) is not None}
        ffn = _match(model, index, module, linears, hidden, is_layer=module is layer)
        if ffn is not None:
            return ffn
    return None


def _match(model, index, module, linears, hidden, is_layer) -> FFN | None:
    """An FFN if ``linears`` (the module's linear children) are exactly up(/gate)/down projections."""
    shapes = {n: linear_shape(c) for n, c in linears.items()}
    downs = [n for n, (i, o) in shapes.items() if i != o and (hidden is None or o == hidden)]
    for down in downs:
        width, h = shapes[down]
        ins = [n for n, s in shapes.items() if n != down and s[0] == h]
        if len(ins) != len(shapes) - 1:
            continue  # some other linear child: not (only) an FFN
        same = [n for n in ins if shapes[n][1] == width]
        fused = [n for n in ins if shapes[n][1] == 2 * width]
        act = _activation(model, module)
        if len(ins) == 2 and len(same) == 2:
            gate, up = sorted(same, key=lambda n: ("gate" not in n, n in ("up_proj", "w3", "up"), n))
            candidates = [(gate, up), (up, gate)]
            for g, u in candidates:
                if _verified(module, hidden or h, lambda x, g=g, u=u: linears[down](act(linears[g](x)) * linears[u](x))):
                    return FFN(index, module, "gated", linears[g], linears[u], linears[down], act, width, h)
            return None
        if len(ins) == 1 and len(fused) == 1:
            gu = linears[fused[0]]

            def fused_forward(x, gu=gu):
                g, u = gu(x).chunk(2, dim=-1)
                return linears[down](act(g) * u)

            if _verified(module, hidden or h, fused_forward):
                return FFN(index, module, "fused_gated", None, gu, linears[down], act, width, h)
            return None
        if len(ins) == 1 and len(same) == 1:
            up = linears[same[0]]
            check = None if is_layer else (lambda x, up=up: linears[down](act(up(x))))
            if check is None or _verified(module, hidden or h, check):
                return FFN(index, module, "plain", None, up, linears[down], act, width, h)
            return None
    return None


def _activation(model: nn.Module, module: nn.Module) -> Callable:
    """The module's activation attribute, else the config's activation name via transformers' ACT2FN."""
    for attr in _ACT_ATTRS:
        act = getattr(module, attr, None)
        if callable(act) and not isinstance(act, (str, nn.Linear)):
            return act
    config = getattr(model, "config", None)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in _CONFIG_ACTS:
        name = getattr(config, attr, None)
        if isinstance(name, str):
            from transformers.activations import ACT2FN

            return ACT2FN[name]
    raise AtlasError(f"no activation found on {type(module).__name__} (attributes {_ACT_ATTRS}) or in the config")


@torch.inference_mode()
def _verified(module: nn.Module, hidden: int, by_hand: Callable) -> bool:
    """Whether ``by_hand(x)`` reproduces ``module(x)``; True when the module cannot be called on x alone."""
    param = next(module.parameters(), None)
    if param is None or param.device.type == "meta":
        return True
    x = torch.randn(1, 3, hidden, generator=torch.Generator().manual_seed(0)).to(param.device, param.dtype)
    training = module.training
    module.eval()
    try:
        expected = module(x)
    except (TypeError, RuntimeError, ValueError):
        return True  # e.g. BLOOM's MLP needs the residual too; fall back to the structural match
    finally:
        module.train(training)
    if isinstance(expected, tuple):
        expected = expected[0]
    got = by_hand(x)
    tol = 1e-4 if param.dtype == torch.float32 else 3e-2
    return got.shape == expected.shape and torch.allclose(got.float(), expected.float(), rtol=tol, atol=tol)
