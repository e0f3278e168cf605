"""Named language panels (the published papers' language sets and documented study panels), read from data.

The table ``data/panels.csv`` holds one row per (panel, language) with the panel's source; codes are written as
the papers write them and resolved against a model's languages when used (``among="seed-12"``).
"""
from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from ..errors import InvalidParameterError, did_you_mean
from .._utils.files import PACKAGE_DATA

PANELS = PACKAGE_DATA / "panels.csv"


@lru_cache(maxsize=1)
def _rows() -> pa.Table:
    return pv.read_csv(PANELS)


def names() -> list[str]:
    """The panels' names, in the table's order."""
    return list(dict.fromkeys(_rows().column("panel").to_pylist()))


def is_panel_name(value: object) -> bool:
    """Whether an ``among=`` value names a panel: one string without commas (one language cannot be compared)."""
    return isinstance(value, str) and bool(value.strip()) and "," not in value


def panels() -> pa.Table:
    """One row per panel: name, number of languages, the languages (as the source writes them) and the source."""
    rows = _rows()
    langs = [panel(n) for n in names()]
    sources = [rows.filter(pc.equal(rows.column("panel"), n)).column("source")[0].as_py() for n in names()]
    return pa.table({"panel": names(), "n_langs": [len(x) for x in langs], "langs": [" ".join(x) for x in langs],
                     "source": sources})


def panel(name: str) -> list[str]:
    """The language codes of panel ``name``, in the source's order; an unknown name lists the panels."""
    if name not in names():
        raise InvalidParameterError(f"no language panel named {name!r}; panels: {', '.join(names())}."
                                    f"{did_you_mean(name, names())}")
    rows = _rows()
    return rows.filter(pc.equal(rows.column("panel"), name)).column("lang").to_pylist()
