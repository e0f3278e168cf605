"""What exists for a model outside this atlas: published atlases and neuron sets, and what building one costs.

The facts live in ``data/catalog.json`` (data, not code); this module reads them, matches model names the way
users write them (``meta-llama/Llama-3.1-8B`` is ``llama-3.1-8b``) and turns them into the advice an unknown
model gets: one route per line, the published sets that have the languages asked with their import commands, and
the build of those languages with its modelled GPU time.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache

import pyarrow as pa
from ._utils.files import PACKAGE_DATA

CATALOG = PACKAGE_DATA / "catalog.json"


@dataclass(frozen=True)
class KnownFile:
    """One published neuron-set file: the model it describes, its language order and how it was made."""

    name: str  # preset name, e.g. "clas-bench/llama-3.1-8b-instruct"
    sha256: str  # how the importer recognises the file: by content, never by name
    model: str  # atlas slug
    hf_repo: str
    architecture: str
    n_layers: int
    ffn_width: int
    hidden_size: int
    languages: tuple[str, ...]
    top_rate: float
    source: str  # repo @ commit of the release
    licence: str
    corpus: str
    url: str = ""  # where the file can be downloaded
    tokens_per_language: int = 0
    missing: tuple[str, ...] = field(default=())  # languages whose lists the file lost
    activation: str = "silu"


@dataclass(frozen=True)
class Shape:
    """A model's decoder shape, enough for a cost estimate."""

    model: str
    hf_repo: str
    n_layers: int
    ffn_width: int
    hidden_size: int

    def flop_per_token(self) -> float:
        """2 × decoder parameters (attention 4h² + gated FFN 3hd per layer): the forward cost of one token."""
        return 2.0 * self.n_layers * (4 * self.hidden_size**2 + 3 * self.hidden_size * self.ffn_width)


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(CATALOG.read_text(encoding="utf-8"))


def published_sets() -> tuple[KnownFile, ...]:
    """Every published neuron-set file the importers know."""
    return tuple(
        KnownFile(**{**e, "languages": tuple(e["languages"]), "missing": tuple(e.get("missing", ()))})
        for e in _data()["neuron_sets"]
    )


def atlases() -> list[dict]:
    """Atlases known to exist (the embedded one; Hub atlas repositories once published), with how to open each."""
    return list(_data()["atlases"])


def slug_of(name: str) -> str:
    """The atlas slug users mean by a model name or Hub id: ``meta-llama/Llama-3.1-8B`` → ``llama-3.1-8b``."""
    base = name.strip().rstrip("/").rsplit("/", 1)[-1].lower()
    return re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._")


def packaged(slug: str) -> dict | None:
    """The exact weights behind a packaged model of the embedded atlas (``smollm2-135m``): the Hub id they are a
    quantisation of, base or instruct, the package and file, how they were dequantised, and the Hub ids of other
    weights the slug could be mistaken for. None for any other model."""
    return next((p for p in _data().get("packaged", []) if p["model"] == slug), None)


def weights_named(name: str) -> tuple[str, str | None] | None:
    """Which packaged model a Hub id names: (slug, None) for the weights it was built from, (slug, what they are)
    for other weights of the same slug (``HuggingFaceTB/SmolLM2-135M``: the base model, where the atlas holds the
    instruct model's neurons), or None when the name is no packaged model's."""
    wanted = name.strip().lower()
    for entry in _data().get("packaged", []):
        if entry["hub_id"].lower() == wanted:
            return entry["model"], None
        for other, what in entry["other_weights"].items():
            if other.lower() == wanted:
                return entry["model"], what
    return None


def shapes() -> list[Shape]:
    """Shapes of every model the catalog knows (published sets' models and a few common ones)."""
    seen: dict[str, Shape] = {}
    for e in _data()["models"]:
        seen[e["model"]] = Shape(**e)
    for k in published_sets():
        seen.setdefault(k.model, Shape(k.model, k.hf_repo, k.n_layers, k.ffn_width, k.hidden_size))
    return list(seen.values())


def shape_of(name: str) -> Shape | None:
    """The catalog's shape for a slug or Hub id, or None."""
    slug = slug_of(name)
    return next((s for s in shapes() if s.model == slug or s.hf_repo.lower() == name.strip().lower()), None)


def gpu_hours(shape: Shape, languages: int | None = None, tokens_per_language: int | None = None) -> float:
    """GPU-hours of building ``shape``'s atlas under the cost model of RESULTS (see ``cost_model`` in the data)."""
    cost = _data()["cost_model"]
    languages = languages or cost["languages"]
    tokens = tokens_per_language or cost["tokens_per_language"]
    return languages * tokens * shape.flop_per_token() / (cost["mfu"] * cost["peak_tflops"] * 1e12) / 3600


def build_command(hf_repo: str, langs: list[str] | None = None) -> str:
    """The command that builds an atlas of ``hf_repo`` at the cost model's scale: of ``langs`` (tags as the user wrote
    them), or of every language of the corpus when None."""
    cost = _data()["cost_model"]
    chosen = shlex.quote(",".join(langs)) if langs else "all"
    return (f"neuron-atlas build --model {hf_repo} --corpus hf:HuggingFaceFW/fineweb-2 --lang {chosen} "
            f"--tokens-per-language {cost['tokens_per_language']} --seq-len 2048 --dtype bfloat16 --device cuda "
            "--batch-size 0 --out ATLAS")


def import_command(entry: KnownFile) -> str:
    """Download-and-import commands for a published file (the importer recognises it by content)."""
    file = entry.url.rsplit("/", 1)[-1]
    return f"curl -LO {entry.url} && neuron-atlas import {file} --atlas ATLAS"


def _canonical(tag: str) -> str | None:
    """The canonical tag of ``tag``, or None when it does not parse (the query itself reports a bad tag)."""
    from .languages import tags as langs

    try:
        return langs.canonical(tag)
    except Exception:  # noqa: BLE001 - an unparsable tag is reported by the query itself, not here
        return None


def _covers(entry: KnownFile, lang: str) -> bool:
    wanted = _canonical(lang)
    return wanted is not None and any(_canonical(c) == wanted for c in entry.languages if c not in entry.missing)


def _named(tag: str) -> str:
    """'Tagalog (tl)' for a tag the user wrote ('Tagalog (tgl_Latn)' for the name itself), or the tag itself when
    it does not parse."""
    from .languages import tags as langs

    try:
        name = langs.parse(tag).name
    except Exception:  # noqa: BLE001 - naming is a courtesy; the query reports a bad tag itself
        return tag
    return f"{name} ({langs.canonical(tag) if tag.strip().lower() == name.lower() else tag})"


def advice(name: str, langs: list[str] | None = None) -> str:
    """How to get data for model ``name``, which the atlas lacks: 'To get it:' then one route per line, its command
    in backticks (the CLI prints an error on one line: the backticks keep each command apart from the next route).

    Routes: the known atlases that have it, the published neuron sets that have at least one of ``langs`` (every
    set when ``langs`` is empty), each with its download-and-import command, and the build of ``langs`` only with
    its modelled cost; sets that have none of ``langs`` are named on a last line, without a route.
    """
    slug = slug_of(name)
    sets = [k for k in published_sets() if k.model == slug or k.hf_repo.lower() == name.strip().lower()]
    sets += [k for k in published_sets() if k not in sets and k.model.startswith(slug + "-")]  # its -instruct too
    tags = {_canonical(g): g for g in reversed(langs or [])}  # one per language, as first written; a tag that
    asked = [g for c, g in reversed(tags.items()) if c is not None]  # does not parse is the query's to report
    routes = [f"open the atlas {a['name']}, which has it: `{a['open']}`"
              for a in atlases() if slug in a.get("models", [])]
    without = []
    for k in sets:
        has = [g for g in asked if _covers(k, g)]
        if asked and not has:
            without.append(f"{k.name} ({k.source})")
        else:
            routes.append(_import_route(k, asked, has))
    routes.append(_build_route(name, slug, sets, asked))
    lines = ["To get it:", *(f"  - {route}" for route in routes)]
    if without:
        which = _named(asked[0]) if len(asked) == 1 else "any of " + ", ".join(map(_named, asked))
        lines.append(f"  also published, without {which}: {', '.join(without)}")
    return "\n".join(lines)


def _import_route(k: KnownFile, asked: list[str], has: list[str]) -> str:
    """'import <set>, ... of <repo> from <repo@commit> (...): <commands>' for one published set."""
    if asked:
        lacks = [g for g in asked if g not in has]
        cover = f"has {', '.join(map(_named, has))}" + (f"; lacks {', '.join(map(_named, lacks))}" if lacks else "")
    else:
        codes = [c for c in k.languages if c not in k.missing]
        cover = f"{len(codes)} languages: {', '.join(codes)}"
    return (f"import {k.name}, neuron sets of {k.hf_repo} from {k.source} (licence {k.licence}, top "
            f"{k.top_rate:.0%}; {cover}): `{import_command(k)}`")


def _build_route(name: str, slug: str, sets: list[KnownFile], tags: list[str]) -> str:
    """'build <languages> (about <cost>; modelled, assuming ...): <command>' for the languages asked (all if none)."""
    shape = shape_of(name) or (Shape(slug, sets[0].hf_repo, sets[0].n_layers, sets[0].ffn_width,
                                     sets[0].hidden_size) if sets else None)
    repo = shape.hf_repo if shape else (name if "/" in name else "<org>/<model>")
    what = f"{', '.join(map(_named, tags))} only" if tags else "every language of the corpus"
    if shape is None:
        return (f"build {what} (no cost estimate: the catalog does not know the model's shape): "
                f"`{build_command(repo, tags or None)}`")
    cost = _data()["cost_model"]
    n = len(tags) or cost["languages"]
    return (f"build {what} (about {_gpu_time(gpu_hours(shape, languages=n))} on one {cost['gpu']}; modelled, "
            f"assuming {n} language{'s' if n > 1 else ''} × {cost['tokens_per_language'] / 1e6:g}M tokens at "
            f"{shape.flop_per_token() / 1e9:.1f} GFLOP/token and {cost['mfu']:.0%} MFU): "
            f"`{build_command(repo, tags or None)}`")


def _gpu_time(hours: float) -> str:
    """'22 GPU-hours', '2.5 GPU-hours' or '7 GPU-minutes'."""
    if hours >= 10:
        return f"{hours:,.0f} GPU-hours"
    if hours >= 1:
        return f"{hours:.1f} GPU-hours"
    return f"{max(1, round(hours * 60))} GPU-minutes"


def available() -> pa.Table:
    """One row per (model, source) the catalog knows: what it is, its languages and how to get it."""
    rows = [{"model": m, "kind": "atlas", "languages": a.get("languages", {}).get(m), "top_rate": None, "licence": "",
             "name": a["name"], "hf_repo": _repo(m), "get": a["open"]} for a in atlases() for m in a.get("models", [])]
    rows += [{"model": k.model, "kind": "sets", "languages": len(k.languages) - len(k.missing), "top_rate": k.top_rate,
              "licence": k.licence, "name": k.name, "hf_repo": k.hf_repo, "get": import_command(k)}
             for k in published_sets()]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("model", pa.string()), ("kind", pa.string()), ("languages", pa.int32()), ("top_rate", pa.float64()),
        ("licence", pa.string()), ("name", pa.string()), ("hf_repo", pa.string()), ("get", pa.string()),
    ]))


def _repo(slug: str) -> str:
    shape = next((s for s in shapes() if s.model == slug), None)
    return shape.hf_repo if shape else ""
