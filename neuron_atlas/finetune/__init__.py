"""Fine-tune only the subnetwork of a neuron set (PEFT-style), plus the seed paper's baselines (needs [torch])."""
from ..errors import DeltaMismatchError
from .baselines import FfnOnlyModel, LoraModel, ffn_only, lora, random_subnetwork
from .config import SubnetworkConfig
from .layer import NeuronDelta
from .model import (
    FinetuneModel,
    SubnetworkModel,
    get_subnetwork_model,
    load_subnetwork,
    read_delta,
    subnetwork,
)

__all__ = [
    "DeltaMismatchError", "FfnOnlyModel", "FinetuneModel", "LoraModel", "NeuronDelta", "SubnetworkConfig",
    "SubnetworkModel", "ffn_only", "get_subnetwork_model", "load_subnetwork", "lora", "random_subnetwork",
    "read_delta", "subnetwork",
]
