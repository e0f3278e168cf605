"""Checks of what callers hand the public API and the CLI: types, finite numbers in range, printable names.

Each check returns the value (converted where it says so) or raises InvalidParameterError naming what was given
and what would be right, before any file is read; the CLI turns that error into exit status 2.
"""
from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

from ..errors import InvalidParameterError

MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds; None means no limit
MAX_COUNT = 2**31 - 1  # sizes, sequence lengths, budgets: what an int32 index (Arrow, torch) can hold


def shown(value: Any, limit: int = 60) -> str:
    """``repr`` of a value for a message: shortened, and with its type when that is the problem."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text if isinstance(value, str) else f"{text} ({type(value).__name__})"


def unprintable(text: str, *, controls: bool = False) -> str | None:
    """What makes ``text`` unusable as a name: a control character (``controls``: only NUL is refused, as in SQL text
    and values, where tabs and newlines belong) or a lone surrogate; None when nothing does."""
    for ch in text:
        kind = unicodedata.category(ch)
        if kind == "Cc" and (ch == "\x00" or not controls):
            return f"the control character {ch!r}"
        if kind == "Cs":
            return f"the lone surrogate {ch!r} (not encodable as UTF-8)"
    return None


def name(value: Any, what: str, example: str) -> str:
    """A printable, non-empty string (a model slug, language tag, method or panel name)."""
    if not isinstance(value, str):
        raise InvalidParameterError(f"{what} must be a string like {example}, got {shown(value)}")
    bad = unprintable(value)
    if bad:
        raise InvalidParameterError(f"{what} {value!r} holds {bad}; give printable text like {example}")
    if not value.strip():
        raise InvalidParameterError(f"{what} is empty; give a name like {example}")
    return value


def names(value: Any, what: str, example: str, kind: tuple[str, str] = ("language tag", "tags")) -> list[str]:
    """One name, 'a,b' (comma-separated) or a list/tuple of names, as a list of stripped names (at least one);
    ``kind`` words them in messages (singular, plural)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = list(value)
    else:
        items = None
    if items is None or not all(isinstance(item, str) for item in items):
        raise InvalidParameterError(f"{what} takes a {kind[0]}, 'a,b' or a list of {kind[1]} like {example}; "
                                    f"got {shown(value)}")
    out = [name(item, what, example).strip() for item in items if not isinstance(value, str) or item.strip()]
    if not out:
        raise InvalidParameterError(f"{what} needs at least one name (e.g. {example}), got {value!r}")
    return out


def number(value: Any, what: str, low: float, high: float, *, low_open: bool = False, expected: str = "") -> float:
    """A real, finite number in [low, high] (``low_open``: (low, high]); bools and strings are not numbers."""
    expected = expected or f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidParameterError(f"{what} must be {expected}, got {shown(value)}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float's range
        raise InvalidParameterError(f"{what} must be {expected}, got an integer of {len(str(abs(int(value))))} digits") from None
    if not math.isfinite(x) or x < low or x > high or (low_open and x == low):
        raise InvalidParameterError(f"{what} must be {expected}, got {shown(value)}")
    return x


def integer(value: Any, what: str, low: int, high: int = MAX_COUNT, *, expected: str = "") -> int:
    """An int (numpy ints too; not a bool or float) in [low, high]."""
    expected = expected or f"a whole number from {low} to {high:,}"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidParameterError(f"{what} must be {expected}, got {shown(value)}")
    if not low <= int(value) <= high:
        digits = len(str(abs(int(value))))
        raise InvalidParameterError(f"{what} must be {expected}, got {shown(value) if digits <= 30 else f'an integer of {digits} digits'}")
    return int(value)


def timeout(value: Any) -> float | None:
    """Seconds a query may run: None (no limit) or a finite number in (0, one week]."""
    if value is None:
        return None
    return number(value, "timeout", 0.0, MAX_TIMEOUT, low_open=True,
                  expected=f"a positive number of seconds, at most {MAX_TIMEOUT:g} (one week), or None for no limit")


def sql_text(value: Any) -> str:
    """The text of one SQL query: a string without NUL characters or lone surrogates."""
    if not isinstance(value, str):
        raise InvalidParameterError(f"sql() takes the query as a string like 'SELECT * FROM models', got {shown(value)}")
    bad = unprintable(value, controls=True)
    if bad:
        raise InvalidParameterError(f"the SQL query holds {bad}; write it as plain text")
    return value


def sql_params(value: Any) -> list[Any] | dict[str, Any] | None:
    """Bound parameters: None, a list/tuple (for ``?``) or a dict with string keys (for ``$name``)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        for key in value:
            name(key, "a named SQL parameter", "'lang' (for $lang)")
        items, out = list(value.values()), dict(value)
    elif isinstance(value, (list, tuple)):
        items, out = list(value), list(value)
    else:
        raise InvalidParameterError(f"params must be a list like ['tgl_Latn'] (for ?) or a dict like {{'lang': 'tgl_Latn'}} "
                                    f"(for $lang), got {shown(value)}")
    for item in items:
        bad = unprintable(item, controls=True) if isinstance(item, str) else None
        if bad:
            raise InvalidParameterError(f"the SQL parameter {item!r} holds {bad}; bind plain text")
    return out


def path(value: Any, what: str) -> str:
    """A file system path: a str or os.PathLike without NUL characters."""
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidParameterError(f"{what} must be a path (str or pathlib.Path), got {shown(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise InvalidParameterError(f"{what} must be a text path, got {shown(value)}")
    if "\x00" in text:
        raise InvalidParameterError(f"{what} {text!r} holds a NUL character, which no path can hold")
    return text
