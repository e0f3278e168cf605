"""Fine-tune only the subnetwork of a neuron set (PEFT-style), plus the seed paper's baselines (needs [torch])."""
from .._utils.lazy import lazy_attributes
from ..errors import DeltaMismatchError
from .baselines import FfnOnlyModel, LoraModel, ffn_only, lora, random_subnetwork
from .config import SubnetworkConfig
from .layer import NeuronDelta
from .model import (
    FinetuneModel,
    SubnetworkModel,
    attached_subnetwork,
    get_subnetwork_model,
    load_subnetwork,
    read_delta,
    subnetwork,
)
from .publish import plan_adapter_commit

# The Trainer classes load on first use: they import transformers' Trainer (and accelerate).
__getattr__ = lazy_attributes(__name__, {"SubnetworkTrainer": "trainer", "SubnetworkTrainerMixin": "trainer"})


__all__ = [
    "DeltaMismatchError", "FfnOnlyModel", "FinetuneModel", "LoraModel", "NeuronDelta", "SubnetworkConfig",
    "SubnetworkModel", "SubnetworkTrainer", "SubnetworkTrainerMixin", "attached_subnetwork", "ffn_only",
    "get_subnetwork_model", "load_subnetwork", "lora", "plan_adapter_commit", "random_subnetwork", "read_delta",
    "subnetwork",
]
