"""The README.md data card of a published atlas: YAML front matter (licence, languages, one ``datasets`` config per
table of ``schema.TABLES`` so every table loads with ``datasets.load_dataset`` and shows in the Hub's viewer), body
and figure."""
from __future__ import annotations

import html
import io
import os
import re
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..format.derived import STORED_TOP_RATE
from ..errors import AtlasError, InvalidParameterError
from ..format.schema import TABLES
from ..format.layout import Layout

if TYPE_CHECKING:
    from ..atlas import Atlas

CARD_TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "atlas_card.md"  # the one source of every card
FIGURE_PATH = "figures/neurons_per_layer.png"


def _fmt_rate(rate: float) -> str:
    return f"{rate * 100:g}%"


def default_sets_path(slug: str) -> str:
    """Where the publishing commit puts a model's default sets (what ``atlas.neurons(model)`` answers)."""
    return f"default/{slug}.parquet"


# Markdown's link, image, code span, table cell and escape characters, as entities: a value cannot start any of them
_MARKDOWN = str.maketrans({"[": "&#91;", "]": "&#93;", "`": "&#96;", "|": "&#124;", "\\": "&#92;"})
_PLAIN = re.compile(r"[\w./:@+=,~-]+")  # nothing in it for HTML or Markdown: shown as it is, in code too


def text(value: object) -> str:
    """A value from the atlas (a model's row, metadata, the manifest's description) as inert card text on one line:
    HTML escaped (no tag, attribute or entity of its own survives) and Markdown's active characters as entities
    (no link, image, code span or table cell of its own), whitespace runs (newlines too) as one space."""
    return html.escape(" ".join(str(value).split()), quote=True).translate(_MARKDOWN)


def code(value: object) -> str:
    """A value shown as code: `value` when it is plain (letters, digits, ``_./:@+=,~-``), else an HTML code element
    holding ``text(value)`` (a code span would show entities literally, and a backtick in it could end it)."""
    value = " ".join(str(value).split())
    return f"`{value}`" if _PLAIN.fullmatch(value) else f"<code>{text(value)}</code>"


def plain(value: object) -> str:
    """A value the template puts inside code (a repo id, a model slug, a language tag in the usage example): as it
    is when plain (as valid ids, slugs and tags are), else ``text(value)``, inert."""
    value = str(value)
    return value if _PLAIN.fullmatch(value) else text(value)


def hub_link(repo: str) -> str:
    """A Markdown link for a Hub model id ('org/name'); anything else (a local path, ``pypi:...``) as plain code."""
    if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9]", repo or "") and ".." not in repo:
        return f"[{repo}](https://huggingface.co/{repo})"
    return code(repo) if repo else "–"


def licence_id(text: str | None) -> str:
    """A source's licence as a Hub licence id ('Apache-2.0' -> 'apache-2.0'); 'unknown' when none is stated."""
    value = (text or "").strip().lower()
    return value if re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", value) and value not in ("none", "n/a") else "unknown"


def check_licence(license: str | None) -> None:
    """Refuse a ``license`` that is no Hub licence id (lowercase letters, digits, ``.+-``: 'mit', 'cc-by-4.0')."""
    if license is not None and not (isinstance(license, str) and re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", license)):
        raise InvalidParameterError(f"licence {license!r} is not a Hub licence id: give one such as mit, apache-2.0, "
                                    "cc-by-4.0 or other (see https://huggingface.co/docs/hub/repositories-licenses)")


def atlas_licence(summary: list[dict[str, Any]]) -> str:
    """The data's licence as its sources give it: theirs when all agree, 'other' when they differ, 'unknown' when
    any source states none (statistics built here carry the licence of a model and corpus no one has stated)."""
    found = {item["licence"] for item in summary}
    if "unknown" in found or not found:
        return "unknown"
    return found.pop() if len(found) == 1 else "other"


def card_summary(atlas: Atlas) -> list[dict[str, Any]]:
    """Per model: provenance row, languages, lape metadata, default top rate and neurons per layer at that rate."""
    from ..format.reader import read_derived

    out = []
    for slug in atlas.model_slugs:
        derived = read_derived(atlas.layout, slug)
        top = derived.stored_top_rate if derived is not None and derived.imported else 0.01  # the default query
        by_layer = atlas.neurons(slug, top=top).by_layer() if derived is not None else None
        meta = derived.meta if derived else {}
        out.append({"row": atlas.model(slug), "langs": atlas.langs_of(slug), "meta": meta, "top": top,
                    "licence": licence_id(meta.get("licence")) if meta.get("imported") else "unknown",
                    "by_layer": by_layer, "count_langs": atlas.layout.count_langs(slug)})
    return out


def figure_png(summary: list[dict[str, Any]]) -> bytes | None:
    """The card's chart of language-specific neurons per layer, one bar colour per model (None without matplotlib)."""
    from ..plots import neurons_per_layer

    series = {f"{item['row'].model} (top {_fmt_rate(item['top'])})": item["by_layer"]
              for item in summary if item["by_layer"] is not None}
    if not series:
        return None
    buf = io.BytesIO()
    try:
        neurons_per_layer(series, buf, title="Language-specific neurons per layer (summed over languages)")
    except ImportError:
        return None
    return buf.getvalue()


def dataset_configs(layout: Layout, defaults: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """First each of the ``defaults`` models' default sets (named by the model, the first one the dataset's default
    config: what ``atlas.neurons(model)`` answers), then one ``datasets`` config per table of ``schema.TABLES`` (and
    per value of the keys its card name holds, e.g. one per model), in the tables' order; a table with a ``split``
    key has one split per value (the counts: a split per language, as the hive folders ``lang=<tag>`` hold them),
    others one ``train`` split."""
    configs: list[dict[str, Any]] = [{"config_name": slug, "data_files": [{"split": "train", "path": default_sets_path(slug)}]}
                                     for slug in defaults]
    if configs:
        configs[0]["default"] = True
    for table in TABLES:
        named = [k for k in table.keys if f"{{{k}}}" in table.card_name or k == table.split]
        groups: dict[str, list[dict[str, str]]] = {}
        for keys, _ in layout.files(table.name):
            groups.setdefault(table.card_name.format(**keys), []).append(keys)
        for name, members in groups.items():
            def path(keys: dict[str, str]) -> str:
                return table.path.format(**{k: keys[k] if k in named else "*" for k in table.keys})

            files = ([{"split": keys[table.split], "path": path(keys)} for keys in members] if table.split
                     else [{"split": "train", "path": path(members[0])}])
            configs.append({"config_name": name, "data_files": files})
    return configs


def example_lang(item: dict[str, Any]) -> str:
    """The language of the card's usage example for one model of ``card_summary``: the one with the most neurons
    in the default set (among those with a count shard, which the counts example loads as a split), so the example
    answers rows; the first language when every set is empty."""
    langs, by_layer, shards = item["langs"], item["by_layer"], set(item["count_langs"])
    sizes: dict[str, int] = {}
    if by_layer is not None:
        for lang, n in zip(by_layer.column("lang").to_pylist(), by_layer.column("n_neurons").to_pylist()):
            sizes[lang] = sizes.get(lang, 0) + n
    found = [t for t in langs if sizes.get(t, 0) > 0 and (not shards or t in shards)]
    return max(found, key=sizes.__getitem__) if found else (langs[0] if langs else "eng_Latn")


def render_card(atlas: Atlas, repo_id: str, summary: list[dict[str, Any]], *, license: str | None = None,
                figure: str | None = FIGURE_PATH, template: str | os.PathLike | None = None) -> str:
    """The README.md data card: YAML front matter (licence, ISO 639-3 languages, one config per table) and body.

    ``license`` (a Hub licence id) defaults to the sources' own (``atlas_licence``), never to an assumed one.
    """
    from huggingface_hub import DatasetCardData

    from ..languages import tags as langs_mod

    check_licence(license)
    if not summary:
        raise AtlasError(f"{atlas.layout.root} holds no models; nothing to publish")
    all_langs = sorted({t for item in summary for t in item["langs"]})
    data = DatasetCardData(
        license=license or atlas_licence(summary),
        language=sorted({langs_mod.parse(t).iso639_3 for t in all_langs}),
        pretty_name=f"neuron-atlas: {repo_id.split('/')[-1]}",
        tags=["interpretability", "neurons", "multilingual", "lape", "neuron-atlas"],
        configs=dataset_configs(atlas.layout, [item["row"].model for item in summary if item["meta"]]),
    )
    rows = ["| model | weights | neurons | languages | source | default top | (language, neuron) pairs at that top | count shards |",
            "|---|---|---|---|---|---|---|---|"]
    provenance = []
    for item in summary:
        row, meta = item["row"], item["meta"]
        stored = int(sum(item["by_layer"].column("n_neurons").to_pylist())) if item["by_layer"] is not None else 0
        # every value from the atlas goes in through text() or code(): none can add HTML or Markdown of its own
        rows.append(
            f"| {code(row.model)} | {hub_link(row.hf_repo)} | {row.n_layers} × {row.ffn_width} "
            f"| {len(item['langs'])} | {text(row.source)} | {_fmt_rate(item['top'])} | {stored:,} | {len(item['count_langs'])} |"
        )
        if meta.get("imported"):
            how = (f"neuron sets imported from {text(meta.get('source'))} (file {code(meta.get('file', ''))}, top_rate "
                   f"{_fmt_rate(item['top'])}, licence: {text(meta.get('licence') or 'not stated')}); published "
                   "without statistics, so only that rate can be queried")
        else:
            tokens = f"{row.tokens_per_language:,} tokens per language" if row.tokens_per_language else "all text"
            how = (f"counted on {text(row.corpus)} {text(row.corpus_version)} ({tokens}, sequence length "
                   f"{row.seq_len or 'n/a'}, {text(row.dtype or 'default dtype')}); LAPE filter rate "
                   f"{text(meta.get('filter_rate', 'n/a'))}, activation bar ratio {text(meta.get('bar_ratio', 'n/a'))}")
        provenance.append(
            f"- **{text(row.model)}**: {code(row.hf_repo)} @ {code(row.revision or 'unrecorded')} "
            f"({text(row.architecture)}, {text(row.activation)} FFN{', gated' if row.gated else ''}); {how}. "
            f"Languages: {text(', '.join(item['langs']))}. Added {row.created:%Y-%m-%d} "
            f"(builder {text(row.builder_version or 'unrecorded')})."
        )
    first = next((item for item in summary if item["meta"]), summary[0])
    description = atlas.manifest.description or f"A neuron atlas of {len(summary)} model(s) and {len(all_langs)} languages."
    page = Path(template or CARD_TEMPLATE).read_text()
    return string.Template(page).substitute(
        front_matter=data.to_yaml(),  # YAML written by huggingface_hub: every value quoted as YAML needs
        title=text(data.pretty_name),
        description="\n".join(text(line) for line in description.splitlines()),  # its line breaks kept
        models_table="\n".join(rows),
        provenance="\n".join(provenance),
        figure=figure or "",
        repo_id=plain(repo_id),
        first_model=plain(first["row"].model),
        first_lang=plain(example_lang(first)),
        first_top=_fmt_rate(first["top"]),
        stored_top=_fmt_rate(STORED_TOP_RATE),
    )
