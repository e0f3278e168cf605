"""Synthetic atlases from random counts with realistic skew, for tests, benchmarks and demos."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .format.schema import ModelRow
from .format.writer import AtlasWriter

# Real tags (FLORES-200 style) to draw synthetic language sets from.
SAMPLE_LANGS = (
    "eng_Latn fra_Latn deu_Latn spa_Latn ita_Latn por_Latn nld_Latn swe_Latn dan_Latn pol_Latn ces_Latn "
    "slk_Latn slv_Latn hrv_Latn srp_Cyrl srp_Latn bul_Cyrl rus_Cyrl ukr_Cyrl bel_Cyrl mkd_Cyrl ell_Grek tur_Latn "
    "azj_Latn kaz_Cyrl uzn_Latn arb_Arab heb_Hebr pes_Arab urd_Arab hin_Deva ben_Beng pan_Guru guj_Gujr mar_Deva "
    "npi_Deva tam_Taml tel_Telu kan_Knda mal_Mlym sin_Sinh tha_Thai lao_Laoo khm_Khmr mya_Mymr vie_Latn ind_Latn "
    "zlm_Latn tgl_Latn jav_Latn sun_Latn ceb_Latn cmn_Hans cmn_Hant jpn_Jpan kor_Kore khk_Cyrl bod_Tibt amh_Ethi "
    "tir_Ethi som_Latn swh_Latn hau_Latn yor_Latn ibo_Latn zul_Latn xho_Latn afr_Latn kin_Latn lin_Latn "
    "fin_Latn ekk_Latn lvs_Latn lit_Latn hun_Latn ron_Latn cat_Latn eus_Latn glg_Latn gle_Latn cym_Latn isl_Latn "
    "mlt_Latn als_Latn hye_Armn kat_Geor"
).split()


def random_counts(rng: np.random.Generator, n_langs: int, n_neurons: int, tokens: np.ndarray,
                  specific_share: float = 0.02) -> np.ndarray:
    """``fired[k, n]`` ~ Binomial(tokens[k], p[k, n]) with log-normal base rates and a few language-specific neurons."""
    base = np.clip(rng.lognormal(mean=np.log(0.08), sigma=1.0, size=n_neurons), 0, 0.9)
    p = base[None, :] * rng.lognormal(0.0, 0.25, size=(n_langs, n_neurons))
    specific = rng.random(n_neurons) < specific_share
    owners = rng.integers(0, n_langs, size=specific.sum())
    p[:, specific] *= 0.2
    p[owners, np.flatnonzero(specific)] = np.clip(base[specific] * 6, 0.05, 0.95)
    return rng.binomial(tokens[:, None], np.clip(p, 0, 1)).astype(np.int32)


def random_stats(rng: np.random.Generator, n_langs: int, n_layers: int, ffn_width: int,
                 hidden: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Format-v2 statistics: ``mean``/``var`` ``[k, layers, width]`` of act(gate) (a shared per-neuron level, small
    per-language shifts, a few language-specific neurons) and ``residual`` means ``[k, layers + 1, hidden]``."""
    shape = (n_layers, ffn_width)
    level, spread = rng.normal(0, 0.3, shape), rng.lognormal(np.log(0.2), 0.5, shape)
    mean = level + rng.normal(0, 0.02, (n_langs, *shape))
    specific = rng.random(shape) < 0.01
    mean[(rng.integers(0, n_langs, specific.sum()), *np.nonzero(specific))] += 0.5
    var = np.square(spread * rng.lognormal(0, 0.1, (n_langs, *shape)))
    residual = rng.normal(0, 1, (n_layers + 1, hidden)) * 4 + rng.normal(0, 0.5, (n_langs, n_layers + 1, hidden))
    return mean, var, residual


def make_atlas(root: str | Path, model: str = "toy", n_layers: int = 4, ffn_width: int = 64,
               langs: Sequence[str] | int = 6, tokens: int | Sequence[int] = 2000, seed: int = 0,
               finalize: bool = True, stats: bool = False, hidden_size: int | None = None) -> Path:
    """Write a synthetic model into the atlas at ``root`` (created if needed) and return the root; with ``stats``,
    random format-v2 statistics too (act(gate) moments, residual means: ``random_stats``). ``hidden_size``:
    default a quarter of ``ffn_width``."""
    rng = np.random.default_rng(seed)
    tags = list(SAMPLE_LANGS[:langs]) if isinstance(langs, int) else list(langs)
    tok = np.broadcast_to(np.asarray(tokens, dtype=np.int64), (len(tags),)).copy()
    writer = AtlasWriter(root)
    writer.add_model(ModelRow(
        model=model, hf_repo=f"synthetic/{model}", revision=f"seed={seed}", architecture="Synthetic",
        n_layers=n_layers, ffn_width=ffn_width, hidden_size=hidden_size or ffn_width // 4 or 1, activation="silu",
        corpus="synthetic", corpus_version="1", tokens_per_language=int(tok.max()), seq_len=0, dtype="n/a",
        builder_version="synthetic", created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    ))
    fired = random_counts(rng, len(tags), n_layers * ffn_width, tok)
    hidden = hidden_size or ffn_width // 4 or 1
    mean, var, residual = random_stats(np.random.default_rng([seed, 2]), len(tags), n_layers, ffn_width, hidden)
    for k, tag in enumerate(tags):
        writer.add_counts(model, tag, fired[k].reshape(n_layers, ffn_width), int(tok[k]), replace=True,
                          moments=(mean[k], var[k]) if stats else None, residual=residual[k] if stats else None)
    if finalize:
        writer.finalize(model)
    return Path(root)
