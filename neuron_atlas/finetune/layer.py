"""The trainable piece of a subnetwork: a delta on some rows or columns of one frozen projection.

``axis='out'``: the delta holds rows of the weight (output channels: gate/up/fc_in rows of the selected
neurons), and the projection's output gets ``index_add(-1, S, x @ Δᵀ)``. ``axis='in'``: the delta holds
columns (input channels: down/fc_out columns), and the output gets ``h[..., S] @ Δᵀ``. Either way the base
weight is read as is (never cloned), and only the delta receives a gradient. The delta is stored in the
nn.Linear ``[out, in]`` convention; ``transposed`` projections (GPT-2's Conv1D) are handled at merge time.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

DELTA_NAME = "neuron_delta"


class NeuronDelta(nn.Module):
    """Trainable values for selected output (``'out'``) or input (``'in'``) channels of one projection, zero at start."""

    def __init__(self, index: torch.Tensor, other: int, axis: Literal["out", "in"], dtype: torch.dtype,
                 transposed: bool = False) -> None:
        super().__init__()
        k = index.numel()
        self.axis, self.transposed = axis, transposed
        shape = (k, other) if axis == "out" else (other, k)
        self.weight = nn.Parameter(torch.zeros(shape, dtype=dtype, device=index.device))
        self.register_buffer("index", index, persistent=False)

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Add the delta's contribution to the projection's output ``out`` (in place; ``out`` is never saved)."""
        w = self.weight if self.weight.dtype == x.dtype else self.weight.to(x.dtype)
        if self.axis == "out":
            return out.index_add_(-1, self.index, F.linear(x, w))
        return out.add_(F.linear(x.index_select(-1, self.index), w))

    @torch.no_grad()
    def merge_into(self, weight: torch.Tensor) -> None:
        """Add the delta into the base ``weight`` at its rows/columns (``weight`` is ``[in, out]`` if transposed)."""
        delta = self.weight.to(weight.dtype)
        dim = 0 if self.axis == "out" else 1
        if self.transposed:
            weight.index_add_(1 - dim, self.index, delta.T)
        else:
            weight.index_add_(dim, self.index, delta)

    def extra_repr(self) -> str:
        return f"axis={self.axis!r}, shape={tuple(self.weight.shape)}, dtype={self.weight.dtype}"


def add_delta_hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    """Forward hook of a projection carrying a NeuronDelta child: base output plus the delta's part."""
    return getattr(module, DELTA_NAME)(args[0], out)
