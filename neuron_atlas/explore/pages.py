"""The explorer's HTML pages: the index of models, one page per model and one per (model, language).

Page structure lives in ``templates/*.html`` (``string.Template``, package data); this module fills them with
escaped text, tables and the SVG charts of ``charts``.
"""
from __future__ import annotations

import json
from functools import cache
from html import escape
from importlib import resources
from string import Template

import numpy as np

from ..format.schema import ModelRow
from ..languages import tags as langs_mod
from . import charts
from .cluster import average_linkage_order
from .gather import (
    SIM_SIZE,
    SIZES,
    Language,
    ModelData,
    method_summaries,
    token_summary,
)

PANEL = "relatives-24"  # the similarity map drawn large enough to label (the relatives study's panel: studies/FINDINGS.md)
N_RELATIVES = 15
EMBEDDED_LABEL = "the embedded atlas"


@cache
def template(name: str) -> Template:
    return Template(resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8"))


def page(title: str, main: str, root: str, crumbs: list[tuple[str, str | None]], atlas: str, version: str) -> str:
    """A whole HTML document: ``root`` is the relative path back to the site's top folder ('' or '../../')."""
    nav = " › ".join(f'<a href="{escape(href)}">{escape(text)}</a>' if href else escape(text) for text, href in crumbs)
    where = escape(atlas) if atlas == EMBEDDED_LABEL else f"the atlas <code>{escape(atlas)}</code>"
    return template("base.html").substitute(title=escape(title), root=root, crumbs=nav, main=main, atlas=where,
                                            version=escape(version))


def model_path(model: str) -> str:
    return f"models/{model}/index.html"


def lang_path(model: str, tag: str) -> str:
    return f"models/{model}/lang/{tag}.html"


# -- index ---------------------------------------------------------------------------------------------------
def index_page(rows: list[tuple[ModelRow, list[Language]]], atlas: str, version: str) -> str:
    body = []
    for row, langs in rows:
        scripts = len({x.script for x in langs})
        prov = (f"{escape(row.source)} {escape(row.builder_version)}, {row.created:%Y-%m-%d}<br>"
                f"<code>{escape(row.hf_repo)}</code><br>revision <code>{escape(_short(row.revision))}</code>, "
                f"{escape(row.dtype)}, {escape(row.architecture)}")
        body.append(
            f'<tr><td><a href="{model_path(row.model)}">{escape(row.model)}</a></td>'
            f'<td>{row.n_layers} × {row.ffn_width:,} ({row.n_layers * row.ffn_width:,} neurons; hidden {row.hidden_size}, '
            f'{escape(row.activation)}{", gated" if row.gated else ""})</td>'
            f'<td class="num">{len(langs)} <span class="note">({scripts} scripts)</span></td>'
            f'<td>{escape(row.corpus)} {escape(row.corpus_version)}</td>'
            f'<td>{escape(token_summary(langs))}</td><td>{prov}</td></tr>')
    methods = "\n".join(f"<li><b>{escape(name)} size=k</b>: each language's own k best neurons by {escape(summary)}"
                        f"{' among those above the activation bar' if name == 'lape' else ''}.</li>"
                        for name, summary in method_summaries().items())
    main = template("index.html").substitute(n_models=len(rows), rows="\n".join(body), methods=methods)
    return page("neuron atlas explorer", main, "", [("neuron atlas", None)], atlas, version)


# -- model page -----------------------------------------------------------------------------------------------
def model_page(data: ModelData, panel: list[str], atlas: str, version: str) -> str:
    row, langs = data.row, data.langs
    colours = charts.group_colours([x.script_name for x in langs])
    totals = {v.key: v.counts.sum(axis=1) for v in data.variants}
    options, heatmaps = _heatmaps(data, colours)
    d = totals["lape-top1"]
    default_sizes = (f"median {np.median(d):.0f}, {int((d == 0).sum())} of {len(langs)} languages with none, "
                     f"{int((d < 10).sum())} with fewer than 10, largest {int(d.max())}")
    main = template("model.html").substitute(
        model=escape(row.model), meta=_model_meta(row, langs), unavailable=_unavailable(data),
        script_legend=_script_legend(langs, colours), sim_note=escape(
            "a per-language budget, so every language has a set" if data.sim_variant != "lape-top1"
            else "the only sets this atlas can give for the model; languages with empty sets overlap with none"),
        options=options, heatmaps=heatmaps, sim_label=escape(_sim_label(data)), panel=_panel_map(data, panel, colours),
        n_langs=len(langs), full=_full_map(data, colours), diffmean=_diffmean_map(data, colours),
        coverage=_coverage(data, totals),
        default_sizes=escape(default_sizes), table=_language_table(data, totals))
    crumbs = [("neuron atlas", "../../index.html"), (row.model, None)]
    return page(f"{row.model} · neuron atlas", main, "../../", crumbs, atlas, version)


def _heatmaps(data: ModelData, colours: dict[str, str]) -> tuple[str, str]:
    """The options of the set switch and one neurons-per-layer heat map per shown set (rows grouped)."""
    langs, tags, grouped = data.langs, data.tags, data.grouped_order()
    options, heatmaps = [], []
    for v in (v for v in data.variants if v.size in (None, SIZES[1], SIM_SIZE)):
        selected = " selected" if v.key == data.sim_variant else ""
        options.append(f'<option value="{v.key}"{selected}>{escape(v.label)}</option>')
        svg = charts.layer_heatmap(v.counts[grouped], [f"{short_name(langs[i].name, 24)} {tags[i]}" for i in grouped],
                                   [f"{langs[i].name} ({tags[i]})" for i in grouped],
                                   [langs[i].script_name for i in grouped], [f"lang/{tags[i]}.html" for i in grouped],
                                   f"{data.row.model}: neurons per layer, {v.label}", f"heat-{v.key}", colours)
        heatmaps.append(f'<div data-variant="{v.key}">{svg}</div>')
    return "".join(options), "".join(heatmaps)


def _similarity(data: ModelData, order: np.ndarray, colours: dict[str, str], caption: str, ident: str,
                cell: int, matrix: np.ndarray | None = None, unit: str = "Jaccard", legend: str = "Jaccard overlap") -> str:
    """A language × language map in ``order`` (default: the Jaccard overlap of the similarity sets)."""
    langs, tags = data.langs, data.tags
    matrix = data.jaccard if matrix is None else matrix
    return charts.similarity_map(matrix[np.ix_(order, order)],
                                 [f"{short_name(langs[i].name, 22)} {tags[i]}" for i in order],
                                 [f"{langs[i].name} ({tags[i]})" for i in order], [langs[i].script_name for i in order],
                                 caption, ident, cell, [f"lang/{tags[i]}.html" for i in order], colours, unit, legend)


def _cell(n: int) -> int:
    """Pixels per cell of an all-languages map: small enough for ~460 languages, labelled below 60."""
    return 3 if n > 150 else 6 if n > 60 else 14


def _panel_map(data: ModelData, panel: list[str], colours: dict[str, str]) -> str:
    """The similarity of the study panel's languages, clustered among themselves, large enough to label."""
    sub = np.array([data.tags.index(t) for t in panel if t in data.tags], dtype=np.int64)
    if sub.size < 3:
        return ""
    order = sub[average_linkage_order(1.0 - data.jaccard[np.ix_(sub, sub)])]
    return (f"<h3>The {PANEL} panel (close relatives and unrelated languages in seven scripts)</h3>"
            + _similarity(data, order, colours, f"{data.row.model}: Jaccard overlap of the {PANEL} panel", "sim-panel", 18))


def _full_map(data: ModelData, colours: dict[str, str]) -> str:
    return _similarity(data, data.cluster_order, colours, f"{data.row.model}: Jaccard overlap, clustered", "sim-full",
                       _cell(len(data.tags)))


def _diffmean_map(data: ModelData, colours: dict[str, str]) -> str:
    """The cosine of the languages' residual DiffMean vectors, clustered on 1 − cosine (format-v2 atlases only)."""
    if data.diffmean is None:
        return ("<p class=\"note\">DiffMean similarity: this atlas holds no residual-stream means for the model "
                "(format v1 or imported sets); a format-v2 build adds them.</p>")
    n = len(data.tags)
    caption = f"{data.row.model}: cosine of DiffMean vectors at layer {data.diffmean_layer}, clustered"
    chart = _similarity(data, average_linkage_order(1.0 - data.diffmean), colours, caption, "sim-diffmean", _cell(n),
                        np.clip(data.diffmean, 0.0, 1.0), unit="cosine", legend="DiffMean cosine (≤ 0 as 0)")
    return (f"<h3>DiffMean cosine, all {n} languages</h3><p>Each language's steering vector (its mean hidden state at "
            f"layer {data.diffmean_layer} minus the other languages' mean, from the stored residual means) against "
            "every other's: languages the model represents alike point the same way. Negative cosines are drawn as "
            f"0.</p><div class=\"scroll wide\">{chart}</div>")


def _coverage(data: ModelData, totals: dict[str, np.ndarray]) -> str:
    """Per method and size: how many languages get the full size, fewer neurons, or none."""
    rows, full, part, none = [], [], [], []
    for v in (v for v in data.variants if v.size is not None):
        n = totals[v.key]
        rows.append(v.label)
        full.append(int((n >= v.size).sum()))
        part.append(int(((n > 0) & (n < v.size)).sum()))
        none.append(int((n == 0).sum()))
    return charts.stacked_bars(rows, [("full size", "#2171b5", full), ("fewer", "#fdae6b", part),
                                      ("none", "#d9d9d9", none)], len(data.tags),
                               f"{data.row.model}: languages with a full, smaller or empty set at each size")


def _script_legend(langs: list[Language], colours: dict[str, str]) -> str:
    n_script: dict[str, int] = {}
    for x in langs:
        n_script[x.script_name] = n_script.get(x.script_name, 0) + 1
    named = [(s, c) for s, c in colours.items() if c != charts.OTHER_COLOUR]
    items = [(c, f"{s} ({n_script[s]})") for s, c in named]
    if len(colours) > len(named):
        items.append((charts.OTHER_COLOUR, f"{len(colours) - len(named)} other scripts (hover a band for its name)"))
    return " ".join(f'<span class="key"><span class="swatch" style="background:{c}"></span>{escape(t)}</span>'
                    for c, t in items)


def _language_table(data: ModelData, totals: dict[str, np.ndarray]) -> str:
    langs, tags = data.langs, data.tags
    cols = [v for v in data.variants if v.size is None or v.size == SIM_SIZE]
    share = data.share.copy()
    np.fill_diagonal(share, -1)
    best = share.argmax(axis=1)
    head = ("<tr><th>Language</th><th>Tag</th><th>Script</th><th>Family</th><th class=\"num\">Tokens</th>"
            + "".join(f'<th class="num">{escape(v.label)}</th>' for v in cols)
            + '<th>Closest relative</th><th class="num">Share</th></tr>')
    body = []
    for i, x in enumerate(langs):
        rel = best[i] if share[i, best[i]] > 0 else None
        rel_cell = (f'<td><a href="lang/{tags[rel]}.html">{escape(langs[rel].name)}</a> <span class="tag">{tags[rel]}</span></td>'
                    f'<td class="num" data-sort="{share[i, rel]:.4f}">{share[i, rel]:.0%}</td>') if rel is not None else (
                    '<td></td><td class="num" data-sort="0">–</td>')
        search = escape(" ".join(langs_mod.aliases(x.tag)))  # other names a search finds it by: 'Filipino', 'tl'
        body.append(f'<tr data-search="{search}"><td><a href="lang/{x.tag}.html">{escape(x.name)}</a></td>'
                    f'<td><span class="tag">{x.tag}</span></td>'
                    f'<td>{escape(x.script_name)}</td><td>{escape(x.family)}</td>'
                    f'<td class="num">{"" if x.tokens is None else f"{x.tokens:,}"}</td>'
                    + "".join(f'<td class="num">{int(totals[v.key][i])}</td>' for v in cols) + rel_cell + "</tr>")
    return (f'<table class="data sortable" id="lang-table"><thead>{head}</thead><tbody>\n'
            + "\n".join(body) + "\n</tbody></table>")


# -- language page -----------------------------------------------------------------------------------------------
def lang_page(data: ModelData, i: int, atlas_arg: str, atlas: str, version: str) -> str:
    row, x, tags = data.row, data.langs[i], data.tags
    sim_label = _sim_label(data)
    grid = charts.layer_grid([v.label for v in data.variants], np.stack([v.counts[i] for v in data.variants]),
                             f"{row.model}, {x.tag}: neurons per layer under each method and size")
    share = data.share[i].copy()
    share[i] = 0
    top = [j for j in np.argsort(-share, kind="stable")[:N_RELATIVES] if share[j] > 0]
    if top:
        bars = charts.share_bars([f"{short_name(data.langs[j].name, 24)} {tags[j]}" for j in top],
                                 [f"{data.langs[j].name} ({tags[j]})" for j in top], [float(share[j]) for j in top],
                                 [f"{tags[j]}.html" for j in top], f"{row.model}, {x.tag}: relatives its set reaches")
        reached = int((share > 0).sum())
        reach_summary = (f"{data.set_size[i]} neurons; {reached} other languages share at least one, "
                         f"the {len(top)} closest are drawn (click one for its page).")
    else:
        bars, reach_summary = "", f"Its set ({data.set_size[i]} neurons) is shared with no other language's."
    notice = data.notices.get(x.tag)
    meta = (f'<a href="../index.html">{escape(row.model)}</a> · {escape(x.script_name)} script ({x.script})'
            + (f" · family: {escape(x.family)} (ISO 639-3 macrolanguage)" if x.family else "")
            + ("" if x.tokens is None else f" · {x.tokens:,} tokens counted"))
    main = template("lang.html").substitute(
        name=escape(x.name), tag=x.tag, meta=meta,
        notice=f'<p class="notice">{escape(notice)}</p>' if notice else "", grid=grid,
        unavailable=_unavailable(data), sim_label=escape(sim_label), reach_summary=escape(reach_summary), bars=bars,
        code=_code(data, i, atlas_arg))
    crumbs = [("neuron atlas", "../../../index.html"), (row.model, "../index.html"), (x.name, None)]
    return page(f"{x.name} ({x.tag}) in {row.model} · neuron atlas", main, "../../../", crumbs, atlas, version)


def _code(data: ModelData, i: int, atlas_arg: str) -> str:
    """The language page's copy-paste code blocks (``snippets``), each with its copy button."""
    out = []
    for k, (title, code) in enumerate(snippets(data, i, atlas_arg)):
        ident = f"code-{k}"
        out.append(f'<h3>{escape(title)}</h3><div class="codeblock"><button type="button" data-copy="{ident}">copy</button>'
                   f'<pre id="{ident}"><code>{escape(code)}</code></pre></div>')
    return "\n".join(out)


def snippets(data: ModelData, i: int, atlas_arg: str) -> list[tuple[str, str]]:
    """Copy-paste snippets (title, Python code) for the language's mask, steering and fine-tuning, matching README's
    API; ``tests/test_readme.py`` runs them."""
    row, tag, tags = data.row, data.tags[i], data.tags
    source = next((t for t in ("eng_Latn", "fra_Latn", "spa_Latn") if t in tags and t != tag),
                  next(t for t in tags if t != tag) if len(tags) > 1 else tag)
    load = row.model if row.hf_repo.startswith("pypi:") else row.hf_repo
    open_line = f"atlas = na.open({atlas_arg})"
    size = f", size={SIM_SIZE}" if any(v.size for v in data.variants) else ""
    steer_size = ", size='0.5%'" if size else ""  # the size that steered best in studies/FINDINGS.md
    middle = row.n_layers // 2
    residual = ("" if data.diffmean is None else  # the atlas holds residual means: a DiffMean vector is a query
                f"\n# no change of language? some models (smollm2-135m) steer with a residual vector instead:\n"
                f"# na.interventions.steer_residual(model, atlas.steering_vector({row.model!r}, {tag!r}, layer={middle}), "
                f"layer={middle}, strength=2)")
    return [
        ("Its neurons and a mask (no torch needed)",
         (f"import neuron_atlas as na\n\n{open_line}\n"
         f"s = atlas.neurons({row.model!r}, lang={tag!r}{size})   # or the default: lang={tag!r}\n"
         f"s.by_layer()                       # neurons per layer\n"
         f"mask = na.masks.neuron_mask(s)     # boolean [{row.n_layers}, {row.ffn_width}] and per-layer indices\n"
         f"mask.save({(tag + '.safetensors')!r})")),
        ("Steering generation towards it (the [torch] extra)",
         (f"import neuron_atlas as na\nfrom neuron_atlas.modeling.load import load_model\n\n{open_line}\n"
         f"loaded = load_model({load!r}); model, tok = loaded.model, loaded.tokenizer\n"
         f"both = atlas.neurons({row.model!r}, lang=[{source!r}, {tag!r}]{steer_size})\n"
         f"text = na.corpus.text({tag!r})   # its UDHR text: the target neurons' mean activations come from it\n"
         f"prompt = tok('Hello, my name is', return_tensors='pt')\n"
         f"with na.interventions.steer(model, both, to={tag!r}, source={source!r}, text=text, tokenizer=tok):\n"
         f"    out = model.generate(**prompt, max_new_tokens=30, repetition_penalty=1.3)  # greedy steered text loops without it\n"
         f"print(tok.decode(out[0, prompt['input_ids'].shape[1]:], skip_special_tokens=True))"
         + residual)),
        ("Fine-tuning only its neurons (the [torch] extra)",
         (f"import neuron_atlas as na\nfrom neuron_atlas.modeling.load import load_model\n\n{open_line}\n"
         f"loaded = load_model({load!r}); model, tok = loaded.model, loaded.tokenizer\n"
         f"s = atlas.neurons({row.model!r}, lang={tag!r}{size})\n"
         f"sub = na.finetune.subnetwork(model, s)   # trainable deltas |S|×hidden per projection, nothing else\n"
         f"# ... train sub.model with transformers.Trainer or a plain loop ...\n"
         f"sub.save({(tag + '-delta.safetensors')!r}); merged = sub.merge_and_unload()")),
    ]


# -- shared pieces ---------------------------------------------------------------------------------------------
def _sim_label(data: ModelData) -> str:
    return "LAPE top 1 %" if data.sim_variant == "lape-top1" else f"size={SIM_SIZE}"


def _unavailable(data: ModelData) -> str:
    if not data.unavailable:
        return ""
    items = "".join(f"<li><b>{escape(m)}</b>: {escape(why)}</li>" for m, why in data.unavailable.items())
    return f'<div class="notice">Methods this atlas cannot answer for {escape(data.row.model)}:<ul>{items}</ul></div>'


def _model_meta(row: ModelRow, langs: list[Language]) -> str:
    return escape(f"{row.n_layers} layers × {row.ffn_width:,} FFN neurons ({row.architecture}, {row.activation}) · "
                  f"{len(langs)} languages · corpus {row.corpus} {row.corpus_version} · tokens per language "
                  f"{token_summary(langs)} · {row.hf_repo}")


def short_name(name: str, n: int) -> str:
    """A language name for chart labels: without ISO's '(individual language)', cut to ``n`` characters."""
    name = name.replace(" (individual language)", "").replace(" (macrolanguage)", "")
    return name if len(name) <= n else name[:n - 1] + "…"


def _short(revision: str) -> str:
    return revision if len(revision) <= 24 else revision[:23] + "…"


def atlas_argument(root: str, embedded: bool) -> str:
    """How the snippets open the atlas: na.open() for the embedded one, else its path or hf:// address."""
    return "" if embedded else json.dumps(root)
