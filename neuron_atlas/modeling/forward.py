"""Running only the part of a forward pass a statistic needs: the decoder without its LM head, stopped early."""
from __future__ import annotations

from typing import Any

from torch import nn


class StopForward(Exception):
    """Raised by a hook after the last module a statistic needs, so the rest of the forward pass is skipped."""


def stop_forward(_module: nn.Module, _args: Any, _output: Any) -> None:
    """A forward hook that ends the forward pass (catch StopForward around the call)."""
    raise StopForward


def base_model(model: nn.Module) -> nn.Module:
    """The transformer without its LM head (no statistic here needs the head's logits)."""
    base = getattr(model, "base_model", model)
    return base if base is not None else model
