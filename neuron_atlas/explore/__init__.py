"""A static explorer site for an atlas: an index of models, a page per model and per language, charts as inline SVG.

``build_site(atlas, out)`` writes it (incrementally); ``neuron-atlas explore`` is the command. Pages need no server
and no network: the one stylesheet and script are copied from this package.
"""
from .build import SiteReport, build_site

__all__ = ["SiteReport", "build_site"]
