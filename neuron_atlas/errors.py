"""Exceptions raised by neuron-atlas, each naming what was wrong and what would be right."""
from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable


class AtlasError(Exception):
    """Base class of every error neuron-atlas raises on purpose."""


class AtlasNotFoundError(AtlasError, FileNotFoundError):
    """No atlas at the given location (or no embedded atlas installed)."""


class AtlasFormatError(AtlasError, ValueError):
    """A file of the atlas is corrupt or does not match the documented schema."""


class UnknownModelError(AtlasError, KeyError):
    """The model slug is not in the atlas."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownLanguageError(AtlasError, KeyError):
    """The language tag is not understood, or the model has no such language."""

    def __str__(self) -> str:
        return str(self.args[0])


class CorpusError(AtlasError, ValueError):
    """A corpus cannot be opened or read: bad spec, missing file, failed download, missing text field."""


class MaskError(AtlasError, ValueError):
    """A neuron set is empty, out of range, or does not fit the model it is applied to."""


class DeltaMismatchError(AtlasError, ValueError):
    """A saved subnetwork delta or adapter belongs to another model, another neuron set, or another layout."""


class MissingStatisticsError(AtlasError, LookupError):
    """A query needs statistics of atlas format v2 (act(gate) moments, residual means) that the atlas does not hold for
    some languages: a v1 atlas, imported neuron sets, a build made before v2, or the embedded atlas (no act(gate)
    moments: its size budget). Names them, what the atlas does hold, and how to get the rest."""

    def __init__(self, model: str, langs: list[str], kind: str, what: str, command: str | None = None,
                 held: str | None = None, cost: str | None = None, of: int | None = None) -> None:
        self.model, self.langs, self.kind = model, list(langs), kind
        shown = ", ".join(self.langs[:8]) + (f" and {len(self.langs) - 8} more" if len(self.langs) > 8 else "")
        if of is not None and of == len(self.langs) > 8:  # every language asked: their count says it
            shown = f"any of the {of} languages compared"
        super().__init__(
            f"model {model!r} has no {what} for {shown}: "
            + (f"the atlas holds {held}. " if held else f"the atlas has no {kind} file for them. ")
            + (f"Rebuild the model's statistics with `{command}` (format v2 records them in the same pass as the "
               f"counts{'; ' + cost if cost else ''})" if command else
               "`neuron-atlas build` records them in the same pass as the counts"))


class AtlasWarning(UserWarning):
    """Part of the atlas is left out of answers because it failed validation (the message names the file)."""


class InvalidParameterError(AtlasError, ValueError):
    """A parameter is out of range or missing: a LAPE or query parameter, an intervention, evaluation or fine-tuning option."""


class CorpusSpecError(CorpusError, InvalidParameterError):
    """The corpus named is none: no such file or folder, or a malformed spec (bad input, CLI exit 2)."""


# The stdlib modules that call our code back (cached properties, thread pools): their frames are never the user's.
_CALLBACKS = ("functools.py", "threading.py", os.path.join("concurrent", ""))
# Frames in these packages are ours or the libraries we call through: a warning points past them, at the user's line.
_INTERNAL = (os.path.dirname(os.path.abspath(__file__)) + os.sep, f"{os.sep}fsspec{os.sep}", f"{os.sep}huggingface_hub{os.sep}", f"{os.sep}duckdb{os.sep}",
             f"{os.sep}pyarrow{os.sep}", *(os.path.join(os.path.dirname(os.__file__), m) for m in _CALLBACKS), "<frozen ")


def warn(message: str, category: type[Warning] = AtlasWarning) -> None:
    """Warn at the caller's own line (the first frame outside neuron-atlas and the libraries it reads through),
    so the warning names the condition and the user's code, never one of our source lines."""
    if sys.version_info >= (3, 12):  # the stdlib skips those frames itself
        warnings.warn(message, category, stacklevel=2, skip_file_prefixes=_internal_prefixes())
        return
    level, frame = 1, sys._getframe(1)
    while frame is not None and any(part in frame.f_code.co_filename for part in _INTERNAL):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level + 1)


@functools.cache
def _internal_prefixes() -> tuple[str, ...]:
    """``_INTERNAL`` as the path prefixes ``skip_file_prefixes`` takes: each library's folder where it is installed
    (found without importing it), our own, the stdlib callers and the frozen import machinery."""
    found = [os.path.dirname(os.path.abspath(__file__)) + os.sep, "<frozen "]
    found += [os.path.join(os.path.dirname(os.__file__), m) for m in _CALLBACKS]
    for name in ("fsspec", "huggingface_hub", "duckdb", "pyarrow"):
        spec = importlib.util.find_spec(name)
        found += [os.path.join(p, "") for p in (spec.submodule_search_locations or [])] if spec else []
    return tuple(found)


def closest(word: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """The choices most similar to `word` (case-insensitive), best first."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.5)
    prefix = [c for c in choices if c.lower().startswith(word.lower()[:3]) and c.lower() not in hits]
    return [lowered[h] for h in hits] + prefix[: max(0, n - len(hits))]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' Did you mean: a, b?' or '' when nothing is close."""
    near = closest(word, choices)
    return f" Did you mean: {', '.join(near)}?" if near else ""
