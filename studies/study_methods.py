"""Which selection method for switching a language off: deactivation specificity of every registered method.

For each target language, the set of each method at the same size (``size="0.5%"``: ``lape``, ``ovr``,
``mean_diff``, ``t``) is switched off (``na.interventions.deactivate``) and the mean next-token NLL change
(nats/token) is measured on 2 held-out UDHR windows of 128 tokens (text after the atlas's budget) of the target, its
close relatives and unrelated probes in five scripts. Controls: for every method, random sets with that method's
own per-layer counts (``NeuronMask.random_like(per_layer=True)``), 3 seeds. ``mean_diff`` and ``t`` need an atlas of
format v2 (``--atlas``, e.g. the float64 rebuild of the embedded models: ``scripts/embedded_atlas/build_default_atlas.py``).

    python studies/study_methods.py run --atlas FULL [--models gemma-3-270m]   # appends to out/study/methods.jsonl
    python studies/study_methods.py report
"""
from __future__ import annotations

import argparse
import sys
from functools import partial

import numpy as np

from study_common import METHODS, MODELS, OUT, SEEDS, TARGETS, deactivations, records

PATH = OUT / "methods.jsonl"
SIZE = "0.5%"
SEQ, WINDOWS = 128, 2


def conditions(atlas, slug: str, tag: str, seeds: list[int] = SEEDS) -> dict:
    """{condition: mask} of one target: each method's set and its random controls."""
    from neuron_atlas.masks import neuron_mask

    out = {}
    for method in METHODS:
        s = atlas.neurons(slug, lang=tag, size=SIZE, method=method)
        mask = neuron_mask(s) if len(s) else None
        out[method] = mask
        for seed in seeds:
            out[f"random-{method}-{seed}"] = mask.random_like(per_layer=True, seed=seed) if mask is not None else None
    return out


def run(slug: str, atlas_path: str, targets: list[str], seeds: list[int]) -> None:
    import neuron_atlas as na

    deactivations(PATH, slug, na.open(atlas_path), partial(conditions, seeds=seeds), targets, "methods", SEQ, WINDOWS)


def _summary(rs: list[dict]) -> tuple[float, float, float, float, int]:
    """(target, relatives, unrelated, specificity = target − unrelated, targets hurt most) over records."""
    rs = [r for r in rs if r["delta"]]
    t = [r["delta"][r["target"]] for r in rs]
    rel = [np.mean([r["delta"][x] for x in r["relatives"]]) for r in rs if r["relatives"]]
    unr = [np.mean([r["delta"][x] for x in r["unrelated"]]) for r in rs]
    hits = sum(all(r["delta"][r["target"]] > v for k, v in r["delta"].items() if k != r["target"]) for r in rs)
    return (float(np.mean(t)), float(np.mean(rel)) if rel else float("nan"), float(np.mean(unr)),
            float(np.mean(np.array(t) - np.array(unr))), hits)


def _script(tag: str) -> str:
    return tag.rsplit("_", 1)[1]


def report() -> str:
    recs = records(PATH)
    lines = []
    for slug in MODELS:
        rs = [r for r in recs if r["model"] == slug]
        complete = {t for t in {r["target"] for r in rs}  # targets with every method measured (a run may be cut)
                    if {r["set"] for r in rs if r["target"] == t} >= set(METHODS)}
        rs = [r for r in rs if r["target"] in complete]
        if not rs:
            continue
        targets = sorted(complete)
        listed = "" if len(targets) == len(TARGETS) else f" ({', '.join(targets)})"
        lines += [f"\n**{slug}**: {len(targets)} targets{listed}; switching off each method's `size=\"{SIZE}\"` set; mean ΔNLL "
                  "(nats/token) on the target, its relatives and the unrelated probes; specificity = target − "
                  "unrelated; random: the same per-layer counts as the method's set, mean over its seeds (3)", "",
                  "| set | n | target | relatives | unrelated | specificity | target hurt most |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for method in METHODS:
            for name, label in ((method, f"`{method}`"), (f"random-{method}", f"random, {method}'s profile")):
                group = [r for r in rs if r["set"] == name or (name.startswith("random") and r["set"].startswith(name + "-"))]
                if not group:
                    continue
                t, rel, unr, spec, hits = _summary(group)
                per = len(group) / len({r["target"] for r in group})  # seeds per target (1 for a method's own set)
                label += f" ({len({r['target'] for r in group})} targets)" if name.startswith("random") else ""
                lines.append(f"| {label} | {np.mean([r['n'] for r in group]):.0f} | {t:+.3f} | {rel:+.3f} | {unr:+.3f} | "
                             f"{spec:+.3f} | {hits / per:.0f}/{len(group) / per:.0f} |")
        lines += ["", "Across scripts (non-Latin targets): mean ΔNLL on the target vs on the unrelated probes written in "
                  "another non-Latin script:", "", "| set | target | other non-Latin probes | Latin probes |",
                  "|---|---:|---:|---:|"]
        for method in METHODS:
            group = [r for r in rs if r["set"] == method and r["delta"] and not r["target"].endswith("_Latn")]
            if not group:
                continue
            other = [np.mean([r["delta"][x] for x in r["unrelated"] if not x.endswith("_Latn")
                              and _script(x) != _script(r["target"])] or [np.nan]) for r in group]
            latin = [np.mean([r["delta"][x] for x in r["unrelated"] if x.endswith("_Latn")] or [np.nan]) for r in group]
            lines.append(f"| `{method}` | {np.mean([r['delta'][r['target']] for r in group]):+.3f} | "
                         f"{np.nanmean(other):+.3f} | {np.nanmean(latin):+.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["run", "report"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--atlas", help="a format-v2 atlas of the models (mean_diff and t need its moments)")
    parser.add_argument("--targets", nargs="+", default=TARGETS, help="a subset of the targets (to split a run over "
                        "processes; each appends to the same file)")
    parser.add_argument("--seeds", nargs="*", type=int, default=SEEDS, help="random-control seeds (none: the methods' "
                        "sets only)")
    args = parser.parse_args()
    if args.what == "report":
        print(report())
        return
    if not args.atlas:
        sys.exit("give --atlas: a format-v2 atlas of the embedded models")
    for slug in args.models:
        run(slug, args.atlas, args.targets, args.seeds)


if __name__ == "__main__":
    main()
