"""The notices of a query: one line per language whose set is tiny or short of ``size``, saying why and what to
ask instead, and one for a panel whose languages the model lacks in part."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..format.derived import STORED_TOP_RATE
from ..neuronset import TINY


def panel_notice(panel: str, missing: list[str], model: str, n: int) -> str:
    return f"panel {panel!r}: {', '.join(missing)} not in {model!r}; compared the other {n}."


def short_notices(wanted: list[str], qualified: list[int], size: int, rule: str) -> dict[str, str]:
    """A line per language for which fewer than ``size`` neurons qualify under the method's ``rule``."""
    return {lang: f"{lang}: only {n} neurons have {rule}, fewer than size={size}."
            for lang, n in zip(wanted, qualified) if n < size}


def tiny_notices(sizes: dict[str, int], wanted: list[str], top_rate: float, columns: Callable[[np.ndarray], np.ndarray],
                 wider: Callable[[str], np.ndarray], tau_bar: float, tags: list[str]) -> dict[str, str]:
    """A line per language with fewer than TINY neurons: whom its wider (top-5%) neurons are shared with, what to ask.

    ``sizes``: neurons per language; ``columns(flat)``: p of every language of ``tags`` on those neurons;
    ``wider(lang)``: the language's neurons within the stored top share.
    """
    notices = {}
    for lang in wanted:
        n = int(sizes.get(lang, 0))
        if n >= TINY:
            continue
        mine = wider(lang)
        hits = (columns(mine) > tau_bar).sum(axis=1) if mine.size else np.zeros(len(tags), np.int64)
        hits[tags.index(lang)] = 0
        near = [f"{tags[k]} {hits[k]}/{mine.size}" for k in np.argsort(-hits, kind="stable")[:3] if hits[k]]
        why = (f"its top-{STORED_TOP_RATE:.0%} neurons are shared with {', '.join(near)}" if near
               else f"few neurons rank in the top {STORED_TOP_RATE:.0%} for it")
        notices[lang] = (f"{lang}: {n} neurons at top={top_rate:.2%} over {len(tags)} languages; {why}. Ask "
                         "size=500 for its own most specific neurons, among='diverse-10' (or a list) to compare "
                         "fewer languages, or method='ovr' with size='0.5%' for the neurons that set it apart from every "
                         "other language.")
    return notices
