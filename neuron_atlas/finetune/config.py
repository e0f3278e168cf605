"""Configuration of a subnetwork fine-tuning run: which neurons, which projections, and the delta dtype."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameterError

PROJECTIONS = ("gate", "up", "down")


@dataclass
class SubnetworkConfig:
    """Train only the weights tied to ``neurons`` (any source ``neuron_mask`` accepts; ``lang`` picks languages).

    ``projections`` limits training to some of gate/up/down (``up`` is gate_up_proj for fused FFNs, fc_in for
    plain ones; plain and fused FFNs have no separate ``gate``). ``dtype`` is the deltas' dtype (default: the
    base weight's, e.g. bf16 deltas on a bf16 model; "float32" keeps fp32 deltas on a bf16 model). ``revision``
    names the base model's Hub revision for the adapter's config (as PEFT's ``revision``; the model's
    ``_commit_hash`` when it has one).
    """

    neurons: Any
    lang: str | list[str] | None = None
    projections: tuple[str, ...] = PROJECTIONS
    dtype: str | None = None
    revision: str | None = None

    def __post_init__(self) -> None:
        self.projections = tuple(self.projections)
        unknown = [p for p in self.projections if p not in PROJECTIONS]
        if unknown or not self.projections:
            raise InvalidParameterError(f"projections must be a non-empty subset of {PROJECTIONS}, got {self.projections}")
