"""Neuron selection methods by name: one module per method, each registering itself; a new method is one module
plus its name on the import line below (or ``register_method`` from anywhere, e.g. a test or a plugin)."""
# the built-in methods, registered on import; the order of registration is the order users see them in
from . import lape, ovr  # noqa: F401 - lape first: the default
from . import mean_diff, t  # noqa: F401
from .registry import STATISTICS, Method, Selection, Statistic, Statistics, get_method, method_names, register_method

__all__ = ["STATISTICS", "Method", "Selection", "Statistic", "Statistics", "get_method", "method_names", "register_method"]
