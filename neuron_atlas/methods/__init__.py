"""Neuron selection methods by name: one module per method, each registering itself; a new method is one module
plus its name on the import line below (or ``register_method`` from anywhere, e.g. a test or a plugin)."""
from . import lape, mean_diff, ovr, t  # noqa: F401 - the built-in methods, registered on import
from .registry import LOADERS, Method, Selection, Statistics, get_method, method_names, register_method

__all__ = ["LOADERS", "Method", "Selection", "Statistics", "get_method", "method_names", "register_method"]
