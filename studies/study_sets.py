"""Neuron-set study, part 1: how specific and how stable each kind of neuron set is, on both embedded models.

Deactivation specificity: for each target language, its neurons are switched off (``na.interventions.deactivate``)
and the mean next-token NLL change (nats/token) is measured on 2 held-out UDHR windows of 128 tokens (text after the
atlas's budget) of the target, its close relatives and unrelated probe languages. Sets: LAPE default (top 1% over
all languages), LAPE ``size="0.5%"``, LAPE over the ``relatives-24`` panel (``among=``), one-vs-rest ``size="0.5%"``,
and a random set with the same per-layer counts as the size set.
Split-half stability: fired counts recorded on each half of the atlas's own tokens for the 24 languages of the
``relatives-24`` panel; per method, the Jaccard index between the two halves' sets of each language.

    python studies/study_sets.py run [--models gemma-3-270m smollm2-135m]   # appends to out/study/sets.jsonl
    python studies/study_sets.py report                                      # markdown tables
    python studies/study_sets.py sizes                                       # set sizes over all languages
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from study_common import MODELS, OUT, TARGETS, append, deactivations, done, load, records, udhr_ids

PATH = OUT / "sets.jsonl"
SIZE = "0.5%"
PANEL = "relatives-24"
SEQ, WINDOWS = 128, 2


def neuron_sets(atlas, slug: str, tag: str) -> dict:
    """The conditions' masks for one target (None for an empty set)."""
    from neuron_atlas.masks import neuron_mask

    def mask(**kw):
        s = atlas.neurons(slug, lang=tag, **kw)
        return neuron_mask(s) if len(s) else None

    sets = {"lape-1%": mask(), f"lape-size-{SIZE}": mask(size=SIZE), f"panel-{PANEL}": mask(among=PANEL),
            f"ovr-size-{SIZE}": mask(size=SIZE, method="ovr")}
    sized = sets[f"lape-size-{SIZE}"]
    sets["random-size"] = sized.random_like(per_layer=True, seed=0) if sized is not None else None
    return sets


def deactivation(slug: str) -> None:
    import neuron_atlas as na

    deactivations(PATH, slug, na.open(), neuron_sets, TARGETS, "deact", SEQ, WINDOWS)


def split_half(slug: str) -> None:
    from neuron_atlas.builder.record import Recorder, count_tokens
    from neuron_atlas.modeling.tokens import bos_id, pad_id
    from neuron_atlas.stats.lape import LapeParams, activation_probs, lape, language_sets, sized_sets
    from neuron_atlas.methods.ovr import ovr_scores, ovr_sets
    from neuron_atlas.stats.lape import parse_size
    from neuron_atlas.languages.panels import panel
    import neuron_atlas as na
    from neuron_atlas.languages.tags import resolve

    key = f"split|{slug}"
    if key in done(PATH):
        return
    model, tok, row = load(slug)
    available = na.open().langs_of(slug)
    tags = [resolve(c, available) for c in panel(PANEL)]
    recorder = Recorder(model)
    halves = [np.zeros((len(tags), row.n_layers * row.ffn_width), np.int64) for _ in range(2)]
    tokens = np.zeros((2, len(tags)), np.int64)
    for k, tag in enumerate(tags):
        ids = udhr_ids(tok, tag)[:row.tokens_per_language]
        for h, part in enumerate((ids[:len(ids) // 2], ids[len(ids) // 2:])):
            counts = count_tokens(recorder, part, seq_len=row.seq_len, batch_size=4, bos=bos_id(tok), pad=pad_id(tok))
            halves[h][k], tokens[h, k] = counts.fired.reshape(-1), counts.tokens
        print(f"split {slug} {tag}: {tokens[0, k]} + {tokens[1, k]} tokens", flush=True)
    size = parse_size(SIZE, row.n_layers * row.ffn_width)
    rows = list(range(len(tags)))

    def sets(fired, tok_counts):
        p = activation_probs(fired, tok_counts)
        return {"lape-1%": language_sets(fired, tok_counts, LapeParams()),
                f"lape-size-{SIZE}": sized_sets(p, lape(fired, tok_counts), rows, size)[0],
                f"ovr-size-{SIZE}": ovr_sets(ovr_scores(p, rows), size)[0]}

    a, b = sets(halves[0], tokens[0]), sets(halves[1], tokens[1])
    out = {}
    for method in a:
        jac = []
        for x, y in zip(a[method], b[method]):
            union = len(set(x) | set(y))
            jac.append(len(set(x) & set(y)) / union if union else math.nan)
        out[method] = {"jaccard": dict(zip(tags, jac)), "sizes": [int(len(x)) for x in a[method]]}
    append(PATH, {"key": key, "part": "split", "model": slug, "langs": tags, "methods": out,
                  "tokens_half": tokens.tolist()})
    print(key, {m: np.nanmean(list(v["jaccard"].values())) for m, v in out.items()}, flush=True)


def sizes() -> str:
    """Atlas-only: how big each kind of set is over all of a model's languages, and how many languages it reaches."""
    import neuron_atlas as na

    atlas = na.open()
    lines = ["| model | set | empty | < 10 neurons | median size | short of the asked size | median languages "
             "above the bar per neuron |", "|---|---|---|---|---|---|---|"]
    for slug in MODELS:
        for name, kw in [("lape-1%", {}), (f"lape-size-{SIZE}", {"size": SIZE}),
                         (f"ovr-size-{SIZE}", {"size": SIZE, "method": "ovr"})]:
            s = atlas.neurons(slug, **kw)
            n = np.array(list(s.sizes().values()))
            short = sum(1 for lang, text in s.notices.items() if "fewer than size" in text)
            lines.append(f"| {slug} | {name} | {int((n == 0).sum())}/{n.size} | {int((n < 10).sum())} | "
                         f"{int(np.median(n))} | {short if 'size' in kw else '·'} | "
                         f"{np.median(s.table.column('n_langs').to_numpy()):.0f} |")
    return "\n".join(lines)


def report() -> str:
    recs = records(PATH)
    lines = []
    for slug in MODELS:
        deact = [r for r in recs if r["part"] == "deactivation" and r["model"] == slug]
        if deact:
            names = list(dict.fromkeys(r["set"] for r in deact))
            lines += [f"\n**{slug}** — deactivation, ΔNLL nats/token: target / mean relatives / mean unrelated "
                      "(max unrelated), set size", "", "| target | " + " | ".join(names) + " |",
                      "|---" * (len(names) + 1) + "|"]
            for tag in dict.fromkeys(r["target"] for r in deact):
                cells = []
                for name in names:
                    r = next((r for r in deact if r["target"] == tag and r["set"] == name), None)
                    cells.append("—" if r is None else _cell(r))
                lines.append(f"| {tag} | " + " | ".join(cells) + " |")
            lines += ["", "Summary over targets (mean ΔNLL; 'target hurt most': more than every relative and unrelated "
                      "language; 'family above unrelated': the target and each relative hurt more than every unrelated "
                      "language):", "", "| set | mean n | target | relatives | unrelated | worst unrelated | "
                      "target hurt most | family above unrelated |", "|---|---|---|---|---|---|---|---|"]
            for name in names:
                rs = [r for r in deact if r["set"] == name]
                t = [r["delta"].get(r["target"], 0.0) for r in rs]
                rel = [np.mean([r["delta"][x] for x in r["relatives"]]) for r in rs if r["delta"] and r["relatives"]]
                unr = [np.mean([r["delta"][x] for x in r["unrelated"]]) for r in rs if r["delta"]]
                worst = max((max(r["delta"][x] for x in r["unrelated"]) for r in rs if r["delta"]), default=0.0)
                hits = sum(1 for r in rs if r["delta"] and all(r["delta"][r["target"]] > v for k, v in r["delta"].items()
                                                               if k != r["target"]))
                family = sum(1 for r in rs if r["delta"] and min(r["delta"][x] for x in [r["target"], *r["relatives"]])
                             > max(r["delta"][x] for x in r["unrelated"]))
                lines.append(f"| {name} | {np.mean([r['n'] for r in rs]):.0f} | {np.mean(t):+.3f} | "
                             f"{np.mean(rel) if rel else float('nan'):+.3f} | {np.mean(unr) if unr else 0:+.3f} | "
                             f"{worst:+.3f} | {hits}/{len(rs)} | {family}/{len(rs)} |")
        if deact:
            lines += ["", "By the target's script (mean ΔNLL target / mean unrelated, and their ratio):", "",
                      "| set | Latin-script targets | other scripts |", "|---|---|---|"]
            for name in names:
                cells = []
                for latin in (True, False):
                    rs = [r for r in deact if r["set"] == name and r["delta"] and r["target"].endswith("_Latn") == latin]
                    t = np.mean([r["delta"][r["target"]] for r in rs]) if rs else float("nan")
                    u = np.mean([np.mean([r["delta"][x] for x in r["unrelated"]]) for r in rs]) if rs else float("nan")
                    ratio = f"{t / u:.1f}×" if u > 0 else "·"
                    cells.append(f"{t:+.2f} / {u:+.2f} ({ratio}), {len(rs)} targets" if rs else "—")
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        split = next((r for r in recs if r["part"] == "split" and r["model"] == slug), None)
        if split:
            lines += ["", f"**{slug}** — split-half stability over the {len(split['langs'])} languages of {PANEL} "
                      "(Jaccard of the two halves' sets; mean over languages with a non-empty set in either half)", "",
                      "| method | mean Jaccard | languages with a set | median set size |", "|---|---|---|---|"]
            for method, v in split["methods"].items():
                jac = [x for x in v["jaccard"].values() if x == x]
                lines.append(f"| {method} | {np.mean(jac) if jac else float('nan'):.2f} | {len(jac)}/{len(split['langs'])} | "
                             f"{int(np.median(v['sizes']))} |")
    return "\n".join(lines)


def _cell(r: dict) -> str:
    if not r["delta"]:
        return "n=0"
    d = r["delta"]
    rel = np.mean([d[x] for x in r["relatives"]]) if r["relatives"] else float("nan")
    unr = [d[x] for x in r["unrelated"]]
    rel_text = f"{rel:+.2f}" if rel == rel else "·"
    return f"{d[r['target']]:+.2f} / {rel_text} / {np.mean(unr):+.2f} ({max(unr):+.2f}), n={r['n']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "report", "sizes"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--parts", nargs="+", default=["deactivation", "split"])
    args = parser.parse_args()
    if args.what in ("report", "sizes"):
        print(report() if args.what == "report" else sizes())
        return
    for part, slug in [("deactivation", m) for m in args.models] + [("split", m) for m in reversed(args.models)]:
        if part in args.parts:
            {"split": split_half, "deactivation": deactivation}[part](slug)
    print(report(), file=sys.stderr)


if __name__ == "__main__":
    main()
