"""Shared pieces of the neuron-set study scripts: the languages, held-out UDHR windows, and resumable JSON-lines output.

Held-out text: the atlas counted the first ``tokens_per_language`` tokens of each language's UDHR text (2048 for
gemma-3-270m, 512 for smollm2-135m); the windows here are cut from the tokens after that budget.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

FAMILIES = {  # close relatives, the point of the study
    "philippine": ["tgl_Latn", "ceb_Latn", "hil_Latn", "war_Latn"],
    "malayic": ["ind_Latn", "zlm_Latn", "jav_Latn"],
    "indic": ["hin_Deva", "mar_Deva", "npi_Deva"],
    "nguni": ["zul_Latn", "xho_Latn", "ssw_Latn"],
    "romance": ["fra_Latn", "spa_Latn"],
    "east-slavic": ["rus_Cyrl", "ukr_Cyrl"],
}
# Unrelated probes in five scripts. English and Chinese have no held-out UDHR text for gemma-3-270m (the atlas
# counted all but 24 and all of their tokens), so French and Japanese stand in for them.
PROBES = ["fra_Latn", "rus_Cyrl", "arb_Arab", "jpn_Jpan", "hin_Deva", "swh_Latn"]
# Targets: the languages of the relatives-24 panel with held-out text on both models (all but English and Chinese),
# 22 languages in 6 scripts; the first six were the targets of the study's first run.
TARGETS = ["tgl_Latn", "ind_Latn", "hin_Deva", "zul_Latn", "arb_Arab", "rus_Cyrl",
           "ceb_Latn", "hil_Latn", "war_Latn", "zlm_Latn", "jav_Latn", "mar_Deva", "npi_Deva", "xho_Latn", "ssw_Latn",
           "fra_Latn", "spa_Latn", "ukr_Cyrl", "pes_Arab", "jpn_Jpan", "swh_Latn", "tha_Thai"]
MODELS = ["gemma-3-270m", "smollm2-135m"]
METHODS = ["lape", "ovr", "mean_diff", "t"]  # the registered selection methods compared at equal size
SEEDS = [0, 1, 2]  # random controls: sets with a method's own per-layer counts, one per seed
OUT = Path(os.environ.get("STUDY_OUT", "out/study"))


def family_of(tag: str) -> list[str]:
    """The target's family (itself first), or just itself."""
    for members in FAMILIES.values():
        if tag in members:
            return [tag] + [m for m in members if m != tag]
    return [tag]


def eval_langs(tag: str) -> tuple[list[str], list[str]]:
    """(relatives, unrelated) evaluated for a target."""
    family = family_of(tag)
    return family[1:], [p for p in PROBES if p not in family]


def load(slug: str):
    """The packaged model in float32 eval mode, its tokenizer, and its atlas row."""
    import torch

    import neuron_atlas as na
    from neuron_atlas.modeling.load import load_packaged

    torch.set_num_threads(int(os.environ.get("STUDY_THREADS", "1")))  # 1: the shared machine is oversubscribed
    loaded = load_packaged(slug)
    return loaded.model.float().eval(), loaded.tokenizer, na.open().model(slug)


def udhr_ids(tokenizer, tag: str) -> list[int]:
    """All of the language's UDHR tokens, tokenized as the atlas build did."""
    from neuron_atlas.modeling.tokens import token_ids
    from neuron_atlas.corpus.udhr import UDHR

    return token_ids(tokenizer, UDHR().texts(tag), 0)


def held_out(tokenizer, tag: str, skip: int, n_windows: int, seq_len: int, offset: int = 0) -> list[list[int]]:
    """``n_windows`` windows of ``seq_len`` (BOS first where the tokenizer has one) after the first ``skip`` tokens."""
    from neuron_atlas.corpus import held_out as windows

    return windows(tag, tokenizer, skip=skip, seq_len=seq_len)[offset:offset + n_windows]


def done(path: Path) -> set[str]:
    """Keys of the records already written (a rerun skips them)."""
    return {json.loads(line)["key"] for line in path.read_text().splitlines() if line.strip()} if path.exists() else set()


def append(path: Path, record: dict) -> None:
    """One JSON line, flushed at once, so a cut run keeps every finished record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def deactivations(path: Path, slug: str, atlas, conditions, targets: list[str], kind: str, seq: int = 128,
                  n_windows: int = 2) -> None:
    """Switch each condition's neurons off (``conditions(atlas, slug, tag)`` → {name: mask or None}) and append the
    mean NLL change on held-out windows of the target, its relatives and the unrelated probes; resumable by key
    ``{kind}|{slug}|{tag}|{name}``."""
    import time

    import neuron_atlas as na
    from neuron_atlas.interventions.evaluate import nll

    model, tok, row = load(slug)
    finished = done(path)
    windows: dict[str, list] = {}
    base: dict[str, float] = {}

    def mean_nll(lang: str) -> float:
        if lang not in windows:
            windows[lang] = held_out(tok, lang, row.tokens_per_language, n_windows, seq)
        total, count = nll(model, windows[lang], batch_size=2)
        return total / count

    for tag in targets:
        relatives, unrelated = eval_langs(tag)
        langs = [tag, *relatives, *unrelated]
        for name, mask in conditions(atlas, slug, tag).items():
            key = f"{kind}|{slug}|{tag}|{name}"
            if key in finished:
                continue
            for lang in langs:
                if lang not in base:
                    base[lang] = mean_nll(lang)
            t = time.time()
            delta = {}
            if mask is not None:
                with na.interventions.deactivate(model, mask):
                    delta = {lang: mean_nll(lang) - base[lang] for lang in langs}
            append(path, {"key": key, "part": "deactivation", "model": slug, "target": tag, "set": name,
                          "n": 0 if mask is None else len(mask), "relatives": relatives, "unrelated": unrelated,
                          "delta": delta, "base": {x: base[x] for x in langs},
                          "windows": {x: len(windows[x]) for x in langs}, "seconds": time.time() - t})
            print(key, 0 if mask is None else len(mask), {k: round(v, 3) for k, v in delta.items()}, flush=True)
