"""Rounding the v2 statistics of a whole atlas onto coarse grids so that Parquet (byte-stream split + zstd) stores
them in few bytes, while queries on them answer as on the float64 values (measured: benchmarks/stats_precision.py).

Values stay float64 (the format does not change; readers need no decoding): a mean is rounded to a multiple of a
power-of-two step chosen per (model, layer) from how much the means differ between the atlas' languages, a
variance to ``var_bits`` significant bits, a residual mean to a per-(model, point) step like the means'.
``compact_atlas`` writes such a copy of an atlas (how the embedded atlas is made from a full-precision build).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AtlasError


@dataclass(frozen=True)
class Precision:
    """Grid fineness: a step is 2**-bits of the spread (rms over languages and neurons/dimensions of the deviation
    from the languages' average) of its layer; ``var_bits`` significant bits of each variance. ``moments=False``
    leaves the act(gate) moments out (residual means only).

    Attributes:
        mean_bits: the act(gate) means' step is 2**-mean_bits of their layer's spread (default 8).
        var_bits: significant bits kept of each act(gate) variance (default 8).
        residual_bits: the residual means' step is 2**-residual_bits of their point's spread (default 4).
        moments: keep the act(gate) moments (default True; False: residual means only).
    """

    mean_bits: int = 8
    var_bits: int = 8
    residual_bits: int = 4
    moments: bool = True


def layer_steps(values: np.ndarray, bits: int) -> np.ndarray:
    """Per layer (axis 1 of ``values[language, layer, ...]``): the power-of-two step 2**-bits of the spread of the
    languages' values around their average.

    Args:
        values: ``[language, layer, ...]`` statistics of one model.
        bits: the step is 2**-bits of the spread, rounded down to a power of two.

    Returns:
        numpy.ndarray: float64 ``[layer]``, one power-of-two step per layer (2**-bits where the spread is 0).
    """
    deviation = values - values.mean(axis=0, keepdims=True)
    axes = (0, *range(2, values.ndim))
    spread = np.sqrt(np.mean(np.square(deviation), axis=axes))
    spread = np.where(spread > 0, spread, 1.0)
    return np.exp2(np.floor(np.log2(spread)) - bits)


def round_to_step(values: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``values[..., layer, x]`` rounded to the nearest multiple of ``step[layer]`` (exact in float64).

    Args:
        values: an array whose last two axes are (layer, x).
        step: one power-of-two step per layer (``layer_steps``).

    Returns:
        numpy.ndarray: float64, the shape of ``values``, each value a multiple of its layer's step.
    """
    step = np.asarray(step, dtype=np.float64).reshape(-1, 1)
    return np.round(values / step) * step  # step is a power of two: the division and product are exact


def round_significant(values: np.ndarray, bits: int) -> np.ndarray:
    """``values`` rounded to ``bits`` significant bits, the leading one included (relative error <= 2**-bits).

    Args:
        values: the values to round (e.g. variances).
        bits: significant bits kept.

    Returns:
        numpy.ndarray: float64, the shape of ``values``.
    """
    mantissa, exponent = np.frexp(values)
    return np.ldexp(np.round(mantissa * 2.0**bits) / 2.0**bits, exponent)


def compact_atlas(source: str | Path, out: str | Path, precision: dict[str, Precision | None],
                  counts_from: str | Path | None = None) -> dict[str, int]:
    """Copy every model of ``source`` into the new atlas ``out`` with its v2 statistics rounded by ``precision[model]``
    (None or a missing model: counts only). ``counts_from``: take the counts shards from this atlas instead (same
    languages and token counts, checked), e.g. an earlier build whose counts must stay bit for bit. Returns the
    languages written per model; the LAPE tables are derived afresh from the counts.

    Args:
        source: the local atlas whose models and v2 statistics are copied.
        out: the new local atlas folder to write (created if missing).
        precision: per model slug, the grids of its statistics; None or a slug left out: counts only.
        counts_from: a local atlas to take the counts shards and model rows from (default None: ``source``).

    Returns:
        dict[str, int]: per model slug, the number of languages written.

    Raises:
        AtlasError: ``source`` lacks languages ``counts_from`` has, the counts and the statistics of a language
            were taken over other token counts, or ``out`` already holds a shard being written.
        MissingStatisticsError: ``precision`` asks to keep statistics ``source`` does not hold for a language.
        AtlasFormatError: a file read is corrupt or missing, or ``out`` is a non-empty folder without
            ``atlas.json``.
        InvalidParameterError: ``out`` is a file, or lies inside one.
    """
    from ..format.reader import load_moments, load_residual, read_model, read_shard
    from ..format.layout import Layout
    from ..format.writer import AtlasWriter

    from ..format.reader import read_manifest

    src = Layout(str(source))
    counts = Layout(str(counts_from)) if counts_from is not None else src
    for layout in {src.root: src, counts.root: counts}.values():
        read_manifest(layout)  # a folder that is no atlas is refused before anything is written
    writer = AtlasWriter(out)
    written = {}
    for slug in src.model_slugs():
        row = read_model(counts, slug)
        langs = counts.count_langs(slug)  # the kept atlas' languages (a rebuild may hold more: a lower min_tokens)
        missing = sorted(set(langs) - set(src.count_langs(slug)))
        if missing:
            raise AtlasError(f"{slug}: {src.root} lacks {', '.join(missing[:8])} of {counts.root}; cannot take the "
                             "counts of one and the statistics of the other")
        spec = precision.get(slug)
        mean = var = residual = None
        if spec is not None:
            residual, res_tokens = load_residual(src, read_model(src, slug), langs)
            residual = round_to_step(residual, layer_steps(residual, spec.residual_bits))
            if spec.moments:
                mean, var, _ = load_moments(src, read_model(src, slug), langs)
                mean = round_to_step(mean, layer_steps(mean, spec.mean_bits))
                var = round_significant(var, spec.var_bits)
        writer.add_model(row)
        for k, lang in enumerate(langs):
            fired, n = read_shard(counts, row, lang)
            if spec is not None and n != res_tokens[k]:
                raise AtlasError(f"{slug}/{lang}: the counts have {n} tokens, the statistics {res_tokens[k]}; "
                                 "not the same text")
            writer.add_counts(slug, lang, fired.reshape(row.n_layers, row.ffn_width), n,
                              moments=(mean[k], var[k]) if mean is not None else None,
                              residual=residual[k] if residual is not None else None)
        writer.finalize(slug)
        written[slug] = len(langs)
    return written


def recompress_atlas(root: str | Path, compression_level: int = 19) -> tuple[int, int]:
    """Rewrite every table file of the local atlas at ``root`` at zstd ``compression_level``: the same rows, metadata
    and row groups in fewer bytes (an atlas that ships, as the embedded one does). Returns (bytes before, after).

    Raises:
        AtlasNotFoundError: ``root`` holds no atlas.
        AtlasFormatError: a file of the atlas is corrupt (it is named; nothing after it is rewritten).
    """
    from ..format.layout import Layout, file_metadata, read_parquet, write_parquet
    from ..format.reader import read_manifest
    from ..format.schema import TABLES

    layout = Layout(str(root))
    read_manifest(layout)
    before = after = 0
    for table in TABLES:
        for _, path in layout.files(table.name):
            before += layout.size(path)
            rows = read_parquet(path, table.name)
            write_parquet(rows.replace_schema_metadata(None), path, file_metadata(rows, path) or None,
                          row_group_size=table.row_group_rows, compression_level=compression_level)
            after += layout.size(path)
    return before, after
