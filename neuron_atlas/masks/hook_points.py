"""Where other tools hook a neuron set or a steering vector: TransformerLens hook names, and the Hugging Face
module names (nnsight's paths, plain torch hooks), each with the neurons' index arrays.

An intervention of this package edits the FFN's intermediate activation ``act(gate(x)) * up(x)`` (``act(fc_in(x))``
for plain FFNs) in the selected columns: in TransformerLens that is ``blocks.{l}.mlp.hook_post``; in a Hugging Face
model it is the input of layer l's down projection (``model.model.layers[l].mlp.down_proj`` on Llama-like models),
so ``model.<name>.input`` in nnsight, or a forward pre-hook in plain torch. A DiffMean vector at
``output_hidden_states`` index l is added at ``blocks.{l}.hook_resid_pre`` (the last index: ``ln_final.hook_normalized``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from .mask import NeuronMask


def transformer_lens_hooks(mask: NeuronMask) -> dict[str, np.ndarray]:
    """The TransformerLens hook of every layer the mask selects neurons in, with their indices.

    Args:
        mask: the neuron set (``neuron_mask(s)``).

    Returns:
        dict[str, numpy.ndarray]: ``{"blocks.{l}.mlp.hook_post": indices}`` (int64, sorted); for ``model.hooks(
        fwd_hooks=[(name, fn)])`` with ``fn(act, hook)`` editing ``act[..., indices]``.
    """
    return {f"blocks.{layer}.mlp.hook_post": mask.indices[layer].astype(np.int64) for layer in mask.layers()}


def module_inputs(mask: NeuronMask, model: Any) -> dict[str, np.ndarray]:
    """The Hugging Face module whose input holds each selected layer's FFN activation, with the neurons' indices.

    Args:
        mask: the neuron set, checked against the model's FFN shape.
        model: a transformers causal LM (the ``[torch]`` extra).

    Returns:
        dict[str, numpy.ndarray]: ``{module name: indices}``, e.g. ``{"model.layers.3.mlp.down_proj": [...]}``; the
        module's input ``[batch, seq, ffn_width]`` (its first positional argument) is the activation to edit, as
        ``model.get_submodule(name).register_forward_pre_hook`` or nnsight's ``model.<name>.input`` reach it.

    Raises:
        MaskError: the mask does not fit the model's FFNs.
    """
    from ..modeling.ffn import find_ffns

    ffns = find_ffns(model)
    mask.check(model)
    names = {module: name for name, module in model.named_modules()}
    return {names[ffns[layer].down]: mask.indices[layer].astype(np.int64) for layer in mask.layers()}


def residual_hook(layer: int, n_layers: int) -> str:
    """The TransformerLens hook at ``output_hidden_states`` index ``layer``, where a DiffMean vector is added.

    Args:
        layer: 0 (the embeddings' output) to ``n_layers`` (after the final norm).
        n_layers: the model's decoder layers.

    Returns:
        str: ``blocks.{layer}.hook_resid_pre`` (the input of block ``layer``), or ``ln_final.hook_normalized`` for
        ``layer == n_layers``.

    Raises:
        InvalidParameterError: ``layer`` is outside 0..n_layers.
    """
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer <= n_layers:
        raise InvalidParameterError(f"layer must be an output_hidden_states index 0..{n_layers}, got {layer!r}")
    return "ln_final.hook_normalized" if layer == n_layers else f"blocks.{int(layer)}.hook_resid_pre"
