"""FFN geometry without torch: each layer's kind, sizes and weight layout, as masks and deltas need them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import AtlasError


@dataclass(frozen=True)
class FFNShape:
    """What a mask needs to know of one layer's FFN: kind, sizes, and whether weights are stored [in, out] (Conv1D)."""

    kind: str  # "gated" | "fused_gated" | "plain"
    hidden: int
    width: int
    transposed: bool = False

    @classmethod
    def of(cls, ffn: Any) -> FFNShape:
        """The shape of a ``neuron_atlas.modeling.ffn.FFN``; GPT-2's Conv1D stores weights [in, out]."""
        return cls(ffn.kind, ffn.hidden, ffn.width, type(ffn.down).__name__ == "Conv1D")

    def weight_shapes(self) -> dict[str, tuple[int, int]]:
        """Shape of each projection's weight tensor as stored (gate/up/down; fused gate_up is ``up``)."""
        rows = 2 * self.width if self.kind == "fused_gated" else self.width
        out = {"up": (rows, self.hidden), "down": (self.hidden, self.width)}
        if self.kind == "gated":
            out = {"gate": (self.width, self.hidden), **out}
        return {k: (s[::-1] if self.transposed else s) for k, s in out.items()}


def ffn_shapes(target: Any) -> list[FFNShape]:
    """FFN shapes from a list of FFNShape, or from a torch model via ``modeling.ffn.find_ffns``."""
    if isinstance(target, Sequence) and all(isinstance(s, FFNShape) for s in target):
        return list(target)
    if hasattr(target, "named_modules"):
        from .ffn import find_ffns

        return [FFNShape.of(f) for f in find_ffns(target)]
    raise AtlasError(f"expected a model or a list of FFNShape, got {type(target).__name__}")
