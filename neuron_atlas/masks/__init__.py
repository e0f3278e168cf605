"""Neuron masks: the mask type and its file format (``mask``), built from any neuron source (``sources``)."""
from ..modeling.shape import FFNShape, ffn_shapes
from ..errors import MaskError
from .mask import DELTA_FORMAT, DELTA_FORMAT_VERSION, MASK_FORMAT, NeuronMask, WeightMask
from .sources import neuron_mask, neuron_masks

__all__ = [
    "DELTA_FORMAT", "DELTA_FORMAT_VERSION", "FFNShape", "MASK_FORMAT", "MaskError", "NeuronMask", "WeightMask",
    "ffn_shapes", "neuron_mask", "neuron_masks",
]
