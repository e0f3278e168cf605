"""Steering the output language: language neurons (CLaS-Bench's neuron method) from each method vs residual DiffMean.

English prompts; English's neurons switched off and the target's set to their mean activation on the target's
UDHR text (first 512 tokens; ``na.interventions.steer``), or the target's DiffMean vector added to the residual
stream (``atlas.steering_vector`` + ``interventions.steer_residual``) at ``--diffmean-layers`` × ``--strengths``;
24 new tokens, greedy and (``--sampled``) sampled. Each continuation gets:
- its language by ``langid``; *success* = the target's language **and** not a loop (distinct-2 ≥ 0.5: at least half
  of its token bigrams differ), so repeating one word in the target language does not count;
- *fluency* = its mean NLL (nats/token) under the unsteered model **after a target-language prefix** (a held-out
  UDHR sentence of the target), so writing the target language is not penalised, reported over the non-loop
  outputs only, so a loop (which any model predicts well) is not rewarded; and distinct-2 itself.
Sets: LAPE default (1%), and at ``size="0.5%"`` every registered method (``lape``, ``ovr``, ``mean_diff``, ``t``;
the last two need an atlas with act(gate) moments, ``--atlas``), each with random controls of its own per-layer
counts (``random-<method>-<seed>``, 3 seeds).

    python studies/study_steer.py run --atlas FULL [--models smollm2-135m] [--sampled]   # appends to out/study/steer.jsonl
    python studies/study_steer.py judge --models smollm2-135m --judge gemma-3-270m --sets diffmean-L15-x2
    python studies/study_steer.py report

``judge`` scores one model's recorded outputs under another, more multilingual model after the same kind of
target-language prefix, beside that judge's NLL of real held-out target text (the next 24 tokens after the prefix):
letters of the right script that form no words get ``langid``'s label and a fair NLL under the small model that
wrote them, but not under a model that knows the language.
"""
from __future__ import annotations

import argparse
import re
import sys
import time

import numpy as np

from study_common import METHODS, MODELS, OUT, SEEDS, append, done, held_out, load, records

PATH = OUT / "steer.jsonl"
JUDGED = OUT / "steer_judged.jsonl"
# Targets (UDHR tag: langid code): 24 languages langid knows, 16 families, 9 scripts; languages with many relatives in
# the atlas (Malayic, Nguni, Romance, Slavic, Indic) and languages alone in their script (Thai, Korean, Amharic,
# Georgian, Japanese). The first six were the earlier run's.
TARGETS = {"tgl_Latn": "tl", "ind_Latn": "id", "hin_Deva": "hi", "swh_Latn": "sw", "fra_Latn": "fr", "rus_Cyrl": "ru",
           "jav_Latn": "jv", "zlm_Latn": "ms", "zul_Latn": "zu", "xho_Latn": "xh", "spa_Latn": "es", "deu_Latn": "de",
           "tur_Latn": "tr", "vie_Latn": "vi", "ukr_Cyrl": "uk", "mar_Deva": "mr", "npi_Deva": "ne", "arb_Arab": "ar",
           "pes_Arab": "fa", "tha_Thai": "th", "kor_Kore": "ko", "amh_Ethi": "am", "kat_Geor": "ka", "jpn_Jpan": "ja"}
PROMPTS = [
    "The weather today is", "My favourite food is", "In the morning I usually", "The best way to learn is",
    "Yesterday my friend told me that", "The children went to the market and", "Our village has a small",
    "When the rain stopped, we", "My grandmother always says that", "The most important thing in life is",
    "Last summer we travelled to", "The teacher asked the students to", "Every evening my family",
    "The road to the city is", "I would like to tell you about", "After the harvest, the farmers",
    "The new hospital in our town", "When I was a child, I", "The river near my house", "Good friends are people who",
    "The government announced that", "On Sundays we usually", "The old man sat down and", "Music makes me feel",
    "The best food in my country is", "Tomorrow I am going to", "The market opens early because", "My brother works as",
    "In the library you can find", "The festival begins when", "Water is important because", "The story begins in a",
]
# Languages outside the study, to re-check its conclusions on (run after the 24 were measured and reported).
UNSTUDIED = {"ita_Latn": "it", "por_Latn": "pt", "pol_Latn": "pl", "nld_Latn": "nl", "ell_Grek": "el",
             "heb_Hebr": "he", "ben_Beng": "bn", "tam_Taml": "ta"}
NEW_TOKENS = 24
LOOP = 0.5  # distinct-2 below this is a loop


def sets_for(atlas, slug: str, target: str, layers: list[int], strengths: list[float]) -> dict:
    """{condition: neuron source holding eng_Latn and the target, or ("residual", layer, strength) for DiffMean}."""
    from neuron_atlas.errors import MissingStatisticsError
    from neuron_atlas.masks import neuron_masks

    out = {"lape-1%": atlas.neurons(slug, ["eng_Latn", target])}
    for method in METHODS:
        try:  # mean_diff and t need format v2's act(gate) moments
            out[f"{method}-size-0.5%"] = atlas.neurons(slug, ["eng_Latn", target], size="0.5%", method=method)
        except MissingStatisticsError:
            continue
        masks = neuron_masks(out[f"{method}-size-0.5%"])  # random controls: the method's per-layer counts per language
        out |= {f"random-{method}-{seed}": {lang: dict(enumerate(m.random_like(per_layer=True, seed=seed).indices))
                                            for lang, m in masks.items()} for seed in SEEDS}
    try:  # format v2: residual means (the embedded atlas has them)
        atlas.steering_vector(slug, target, layer=layers[0])
        out |= {f"diffmean-L{layer}-x{strength:g}": ("residual", layer, strength)
                for layer in layers for strength in strengths}
    except MissingStatisticsError:
        pass
    return out


def generate(model, tok, prompts: list[str], new_tokens: int, sampled: bool, seed: int = 0) -> list[list[int]]:
    """The new tokens after each prompt (one left-padded batch, cut after the first end of sequence): greedy, or
    sampled (temperature 0.7, top-p 0.9) from ``seed``, the same seed for every condition."""
    import torch

    if tok.pad_token is None:  # left-pad with the end-of-sequence token, as transformers' generation examples do
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    extra = {"do_sample": True, "temperature": 0.7, "top_p": 0.9} if sampled else {"do_sample": False}
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=new_tokens, pad_token_id=tok.pad_token_id, **extra)
    new = out[:, batch["input_ids"].shape[1]:].tolist()
    return [seq[:seq.index(tok.eos_token_id) + 1] if tok.eos_token_id in seq else seq for seq in new]


def distinct(tokens: list[int], n: int = 2) -> float:
    """Distinct n-grams over all n-grams of ``tokens`` (1.0 for text too short to repeat)."""
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


def fluency(model, prefixes: list[list[int]], news: list[list[int]]) -> list[float]:
    """Mean NLL of each continuation under the unsteered model after its prefix (target-language text), one batch."""
    import torch
    import torch.nn.functional as F

    rows = [p + n for p, n in zip(prefixes, news)]
    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    out = []
    for k, (p, n) in enumerate(zip(prefixes, news)):
        if not n:
            out.append(float("nan"))
            continue
        step = logits[k, len(p) - 1:len(p) + len(n) - 1]
        out.append(float(F.cross_entropy(step, torch.tensor(n), reduction="mean")))
    return out


def run(slug: str, args) -> None:
    import langid

    import neuron_atlas as na
    from neuron_atlas.corpus.udhr import UDHR
    from neuron_atlas.interventions.hooks import steer, steer_residual

    model, tok, row = load(slug)
    atlas = na.open(args.atlas) if args.atlas else na.open()
    decoding = "sampled" if args.sampled else "greedy"
    targets = {t: (TARGETS | UNSTUDIED)[t] for t in (args.targets or TARGETS)}
    n_layers = atlas.model(slug).n_layers
    layers = args.diffmean_layers or [n_layers // 3, n_layers // 2, 2 * n_layers // 3]
    for target, code in [("none", None), *targets.items()]:
        conditions = {"unsteered": None} if target == "none" else sets_for(atlas, slug, target, layers, args.strengths)
        conditions = {k: v for k, v in conditions.items() if not args.sets or k in args.sets or k == "unsteered"}
        # fluency is judged after held-out text of the target (the prompt itself for the unsteered baseline)
        prefix = None if target == "none" else held_out(tok, target, row.tokens_per_language, 1, 32)[0]
        for name, neurons in conditions.items():
            key = f"steer|{slug}|{target}|{name}|{decoding}"
            if key in done(PATH):  # read again: a second process may run the targets from the other end
                continue
            t = time.time()
            steering = None
            if isinstance(neurons, tuple):  # ("residual", layer, strength): DiffMean against all other languages
                _, layer, strength = neurons
                steering = steer_residual(model, atlas.steering_vector(slug, target, layer=layer), layer,
                                          strength).enable()
            elif neurons is not None:
                calibration = "\n".join(UDHR().texts(target))
                try:
                    steering = steer(model, neurons, to=target, source="eng_Latn", text=calibration, tokenizer=tok,
                                     max_tokens=512).enable()
                except na.masks.MaskError as exc:  # an empty target set
                    append(PATH, {"key": key, "model": slug, "target": target, "set": name, "decoding": decoding,
                                  "error": str(exc)})
                    continue
            prompts = PROMPTS[:args.prompts]
            try:
                news = generate(model, tok, prompts, args.new_tokens, args.sampled)
            finally:
                if steering is not None:
                    steering.remove()
            befores = [prefix if prefix is not None else tok(p)["input_ids"] for p in prompts]
            nlls = fluency(model, befores, news)
            rows = []
            for new, nll_ in zip(news, nlls):
                text = tok.decode(new, skip_special_tokens=True)
                rows.append({"text": text, "lang": langid.classify(text)[0] if text.strip() else "",
                             "distinct2": distinct(new), "nll": nll_})
            fluent = [r for r in rows if r["distinct2"] >= LOOP]
            n = len(steering.mask) if hasattr(steering, "mask") else 0  # residual steering moves no neuron
            success = None if code is None else sum(r["lang"] == code for r in fluent) / len(rows)
            append(PATH, {"key": key, "model": slug, "target": target, "set": name, "decoding": decoding, "n": n,
                          "success": success, "loops": 1 - len(fluent) / len(rows),
                          "nll": float(np.nanmean([r["nll"] for r in fluent])) if fluent else float("nan"),
                          "outputs": rows, "seconds": time.time() - t})
            print(key, n, success, rows[0]["text"][:60].replace("\n", " "), flush=True)


def judge(slug: str, judge_slug: str, sets: list[str] | None) -> None:
    """Score ``slug``'s recorded successes (conditions ``sets``, default all) under ``judge_slug`` after 32 held-out
    tokens of the target, and the judge's NLL of the 24 real tokens that follow them; appends to JUDGED."""
    model, tok, row = load(judge_slug)
    codes = TARGETS | UNSTUDIED
    recs = {r["key"]: r for r in records(PATH) if r.get("model") == slug and "outputs" in r and r["target"] in codes
            and (not sets or r["set"] in sets)}
    finished, texts = done(JUDGED), {}
    for key, r in recs.items():
        jkey = f"{key}|{judge_slug}"
        if jkey in finished:
            continue
        if r["target"] not in texts:  # (prefix, its real continuation, real text from elsewhere: not the prefix's)
            window = held_out(tok, r["target"], row.tokens_per_language, 1, 57)[0]
            elsewhere = held_out(tok, r["target"], row.tokens_per_language, 1, 25, offset=4)[0][1:]
            texts[r["target"]] = window[:33], window[33:], elsewhere
        prefix, real, elsewhere = texts[r["target"]]
        wins = [o for o in r["outputs"] if o["lang"] == codes[r["target"]] and o["distinct2"] >= LOOP]
        news = [tok(o["text"], add_special_tokens=False)["input_ids"] for o in wins]  # only successes are judged
        nlls = fluency(model, [prefix] * (len(news) + 2), [*news, real, elsewhere])
        append(JUDGED, {"key": jkey, "model": slug, "judge": judge_slug, "target": r["target"], "set": r["set"],
                        "decoding": r["decoding"], "outputs": len(r["outputs"]), "real_nll": nlls[-2],
                        "elsewhere_nll": nlls[-1], "nll": nlls[:-2]})
        print(jkey, len(wins), f"real {nlls[-2]:.2f}, elsewhere {nlls[-1]:.2f}", flush=True)


def judged_report() -> list[str]:
    """Per model, judge and condition: the recorded success rate, the judge's NLL of the successes, of the real target
    text after the same prefix and of real text from elsewhere in the document (no continuation), and the share of
    successes the judge scores within 1 nat/token of that text from elsewhere."""
    recs = list({r["key"]: r for r in records(JUDGED)}.values())
    lines = []
    for slug, judge_slug, decoding in sorted({(r["model"], r["judge"], r["decoding"]) for r in recs}):
        rs = [r for r in recs if (r["model"], r["judge"], r["decoding"]) == (slug, judge_slug, decoding)]
        lines += ["", f"**{slug}**'s {decoding} outputs judged by {judge_slug} (NLL nats/token after 32 tokens of the "
                  "target's held-out text)", "", "| condition | targets | success | judge NLL of successes (median) | "
                  "of the real continuation | of real text from elsewhere | successes within 1 nat of that |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for group, targets in (("", TARGETS), (" (outside the study)", UNSTUDIED)):
            for name in dict.fromkeys(r["set"] for r in rs):
                got = [r for r in rs if r["set"] == name and r["target"] in targets]
                if not got:
                    continue
                wins = [(n, r["elsewhere_nll"]) for r in got for n in r["nll"]]
                share = np.mean([n <= real + 1 for n, real in wins]) if wins else float("nan")
                lines.append(f"| {name}{group} | {len(got)} | {np.mean([len(r['nll']) / r['outputs'] for r in got]):.1%} | "
                             f"{np.median([n for n, _ in wins]) if wins else float('nan'):.2f} | "
                             f"{np.mean([r['real_nll'] for r in got]):.2f} | "
                             f"{np.mean([r['elsewhere_nll'] for r in got]):.2f} | {share:.0%} |")
    return lines


def _column(name: str) -> str:
    """The report column of a condition: a random control's seeds share one (``random-lape-1`` -> ``random-lape``)."""
    return re.sub(r"-\d+$", "", name) if name.startswith("random-") else name


def report() -> str:
    # records of the earlier measure (no decoding) are left out; a key two processes both wrote counts once
    recs = list({r["key"]: r for r in records(PATH) if "decoding" in r}.values())
    lines = []
    for slug in MODELS:
        for decoding in ("greedy", "sampled"):
            for group, targets in (("the study's targets", TARGETS), ("languages outside the study", UNSTUDIED)):
                rs = [r | {"set": _column(r["set"])} for r in recs if r["model"] == slug and r["decoding"] == decoding
                      and (r["target"] in targets or r["set"] == "unsteered")]
                if not any(r["target"] in targets for r in rs):
                    continue
                lines += _table(slug, decoding, group, targets, rs)
    return "\n".join(lines + judged_report())


def _table(slug: str, decoding: str, group: str, targets: dict, rs: list[dict]) -> list[str]:
    """Per target and condition (random controls: mean over their seeds): success / fluency / loops."""
    base = next((r for r in rs if r["set"] == "unsteered"), None)
    names = list(dict.fromkeys(r["set"] for r in rs if r["set"] != "unsteered"))
    head = (f"**{slug}**, {decoding}, {group}: success (langid = target and distinct-2 ≥ {LOOP}) / fluency (NLL under "
            "the unsteered model after target-language text, non-loop outputs, nats/token) / share of loops")
    if base:
        head += (f"; unsteered: {', '.join(sorted(set(o['lang'] for o in base['outputs'])))}, NLL "
                 f"{base['nll']:.2f}, loops {base['loops']:.0%}")
    lines = ["", head, "", "| target | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for target in [t for t in targets if any(r["target"] == t for r in rs)]:
        cells = []
        for name in names:
            got = [r for r in rs if r["target"] == target and r["set"] == name]
            cells.append("—" if not got else "empty set" if any("error" in r for r in got) else _cell(got))
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    lines.append("| mean | " + " | ".join(
        _cell([r for r in rs if r["set"] == name and "error" not in r]) for name in names) + " |")
    return lines + _by_script(rs, names)


def _by_script(rs: list[dict], names: list[str]) -> list[str]:
    """Per condition, over the targets that have it (random controls: all their seeds): success on Latin-script and
    other-script targets, the number of targets steered at all, fluency and loops."""
    lines = ["", "| condition | targets | success | Latin script | other scripts | targets with any success | "
             "fluency | loops |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        got = [r for r in rs if r["set"] == name and "error" not in r]
        latin = [r["success"] for r in got if r["target"].endswith("_Latn")]
        other = [r["success"] for r in got if not r["target"].endswith("_Latn")]
        lines.append(f"| {name} | {len({r['target'] for r in got})} | {np.mean([r['success'] for r in got]):.1%} | "
                     f"{np.mean(latin) if latin else float('nan'):.1%} | {np.mean(other) if other else float('nan'):.1%} | "
                     f"{len({r['target'] for r in got if r['success'] > 0})} | {np.nanmean([r['nll'] for r in got]):.2f} | "
                     f"{np.mean([r['loops'] for r in got]):.0%} |")
    return lines


def _cell(rs: list[dict]) -> str:
    if not rs:
        return "—"
    return (f"{np.mean([r['success'] for r in rs]):.0%} / {np.nanmean([r['nll'] for r in rs]):.2f} / "
            f"{np.mean([r['loops'] for r in rs]):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "judge", "report"])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--targets", nargs="+", choices=[*TARGETS, *UNSTUDIED],
                        help="default: the study's 24; UNSTUDIED's languages to re-check its conclusions")
    parser.add_argument("--atlas", help="the atlas to take sets and vectors from (default: the embedded one; mean_diff "
                        "and t need one with act(gate) moments)")
    parser.add_argument("--sampled", action="store_true", help="sample (temperature 0.7, top-p 0.9, one seed for all) "
                        "instead of greedy decoding")
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--diffmean-layers", nargs="+", type=int, help="output_hidden_states indices (default: L/3, L/2, 2L/3)")
    parser.add_argument("--strengths", nargs="+", type=float, default=[1.0, 2.0, 4.0], help="DiffMean multipliers")
    parser.add_argument("--sets", nargs="+", help="only these conditions (e.g. mean_diff-size-0.5%% diffmean-L15-x2)")
    parser.add_argument("--judge", default="gemma-3-270m", help="the model that judges recorded outputs (judge)")
    args = parser.parse_args()
    if args.what in ("run", "judge"):
        for slug in args.models:
            run(slug, args) if args.what == "run" else judge(slug, args.judge, args.sets)
    print(report(), file=sys.stderr if args.what == "run" else sys.stdout)


if __name__ == "__main__":
    main()
