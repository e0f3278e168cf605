"""Neuron masks: the mask type and its file format (``mask``), built from any neuron source (``sources``), and where
other tools hook them (``hook_points``: TransformerLens hook names, Hugging Face module names)."""
from ..modeling.shape import FFNShape, ffn_shapes
from ..errors import MaskError
from .hook_points import module_inputs, residual_hook, transformer_lens_hooks
from .mask import DELTA_FORMAT, DELTA_FORMAT_VERSION, MASK_FORMAT, NeuronMask, WeightMask
from .sources import neuron_mask, neuron_masks

__all__ = [
    "DELTA_FORMAT", "DELTA_FORMAT_VERSION", "FFNShape", "MASK_FORMAT", "MaskError", "NeuronMask", "WeightMask",
    "ffn_shapes", "module_inputs", "neuron_mask", "neuron_masks", "residual_hook", "transformer_lens_hooks",
]
