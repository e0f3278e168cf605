"""Fine-tune only the subnetwork of a neuron set (PEFT-style), plus the seed paper's baselines (needs [torch])."""
from typing import Any

from .baselines import FfnOnlyModel, LoraModel, ffn_only, lora, random_subnetwork
from .config import SubnetworkConfig
from .layer import NeuronDelta
from .model import (
    DeltaMismatchError,
    FinetuneModel,
    SubnetworkModel,
    attached_subnetwork,
    get_subnetwork_model,
    load_subnetwork,
    read_delta,
    subnetwork,
)
from .publish import plan_adapter_commit

_TRAINER = ("SubnetworkTrainer", "SubnetworkTrainerMixin")


def __getattr__(name: str) -> Any:
    """The Trainer classes load on first use: they import transformers' Trainer (and accelerate)."""
    if name in _TRAINER:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DeltaMismatchError", "FfnOnlyModel", "FinetuneModel", "LoraModel", "NeuronDelta", "SubnetworkConfig",
    "SubnetworkModel", "SubnetworkTrainer", "SubnetworkTrainerMixin", "attached_subnetwork", "ffn_only",
    "get_subnetwork_model", "load_subnetwork", "lora", "plan_adapter_commit", "random_subnetwork", "read_delta",
    "subnetwork",
]
