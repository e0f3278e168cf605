"""Interventions on a running transformers model, and what they do to it: ``hooks`` switches selected FFN neurons
off, clamps or shifts them, or adds a steering vector to the residual stream; ``evaluate`` measures per-language
perplexity and Tang et al.'s deactivation matrix. Needs the ``[torch]`` extra."""
from . import evaluate
from .hooks import (
    Intervention, ResidualSteering, add_offset, deactivate, mean_activations, steer, steer_residual,
)

__all__ = ["Intervention", "ResidualSteering", "add_offset", "deactivate", "evaluate", "mean_activations", "steer",
           "steer_residual"]
