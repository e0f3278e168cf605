"""Issue-12 study, part 3: steering the output language with language neurons (CLaS-Bench's neuron method).

English prompts; English's neurons switched off and the target's set to their mean activation on the target's
UDHR text (first 512 tokens; ``na.interventions.steer``); greedy generation of 24 tokens; the continuation's
language identified offline with ``langid`` (success = the target), fluency = its mean NLL (nats/token) under the
unsteered model given the prompt. Sets: LAPE default (1%), LAPE ``size="0.5%"``, one-vs-rest ``size="0.5%"``, and a
random set of the same per-layer sizes as the LAPE size sets (its target neurons set to their own means). On an
atlas of format v2 also ``mean_diff`` and ``t`` ``size="0.5%"`` sets, and residual DiffMean steering
(``atlas.steering_vector`` added by ``interventions.steer_residual``) at ``--diffmean-layers`` × ``--strengths``.

    python studies/study_steer.py run [--models smollm2-135m gemma-3-270m]   # appends to out/study/steer.jsonl
    python studies/study_steer.py report
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from study_common import MODELS, OUT, append, done, load, records

PATH = OUT / "steer.jsonl"
TARGETS = {"tgl_Latn": "tl", "ind_Latn": "id", "hin_Deva": "hi", "swh_Latn": "sw", "fra_Latn": "fr", "rus_Cyrl": "ru"}
PROMPTS = [
    "The weather today is", "My favourite food is", "In the morning I usually", "The best way to learn is",
    "Yesterday my friend told me that", "The children went to the market and", "Our village has a small",
    "When the rain stopped, we",
]
NEW_TOKENS = 24


def sets_for(atlas, slug: str, target: str, layers: list[int], strengths: list[float]) -> dict:
    """{condition: neuron source holding eng_Latn and the target, or ("residual", layer, strength) for DiffMean}."""
    from neuron_atlas.errors import MissingStatisticsError
    from neuron_atlas.masks import neuron_masks

    out = {"lape-1%": atlas.neurons(slug, ["eng_Latn", target]),
           "lape-size-0.5%": atlas.neurons(slug, ["eng_Latn", target], size="0.5%"),
           "ovr-size-0.5%": atlas.neurons(slug, ["eng_Latn", target], size="0.5%", method="ovr")}
    masks = neuron_masks(out["lape-size-0.5%"])
    out["random-size"] = {lang: dict(enumerate(m.random_like(seed=1).indices)) for lang, m in masks.items()}
    try:  # format-v2 statistics: the moment methods and residual DiffMean
        for method in ("mean_diff", "t"):
            out[f"{method}-size-0.5%"] = atlas.neurons(slug, ["eng_Latn", target], size="0.5%", method=method)
        out |= {f"diffmean-L{layer}-x{strength:g}": ("residual", layer, strength)
                for layer in layers for strength in strengths}
    except MissingStatisticsError:
        pass
    return out


def generate(model, tok, prompt: str, new_tokens: int) -> tuple[list[int], list[int]]:
    import torch

    ids = tok(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.eos_token_id)
    return ids[0].tolist(), out[0, ids.shape[1]:].tolist()


def fluency(model, prompt_ids: list[int], new: list[int]) -> float:
    """Mean NLL of the continuation under the (unsteered) model, given the prompt."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor([prompt_ids + new])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float()
    return float(F.cross_entropy(logits, torch.tensor(new), reduction="mean"))


def run(slug: str, args) -> None:
    import langid

    import neuron_atlas as na
    from neuron_atlas.corpus.udhr import UDHR
    from neuron_atlas.interventions import steer, steer_residual

    model, tok, row = load(slug)
    atlas, finished = na.open(), done(PATH)
    targets = {t: TARGETS[t] for t in (args.targets or TARGETS)}
    n_layers = atlas.model(slug).n_layers
    layers = args.diffmean_layers or [n_layers // 3, n_layers // 2, 2 * n_layers // 3]
    for target, code in [("none", None), *targets.items()]:
        conditions = {"unsteered": None} if target == "none" else sets_for(atlas, slug, target, layers, args.strengths)
        for name, neurons in conditions.items():
            key = f"steer|{slug}|{target}|{name}"
            if key in finished:
                continue
            t = time.time()
            steering = None
            if isinstance(neurons, tuple):  # ("residual", layer, strength): DiffMean against all other languages
                _, layer, strength = neurons
                steering = steer_residual(model, atlas.steering_vector(slug, target, layer=layer), layer, strength)
            elif neurons is not None:
                calibration = "\n".join(UDHR().texts(target))
                try:
                    steering = steer(model, neurons, to=target, source="eng_Latn", text=calibration, tokenizer=tok,
                                     max_tokens=512)
                except na.masks.MaskError as exc:  # an empty target set
                    append(PATH, {"key": key, "model": slug, "target": target, "set": name, "error": str(exc)})
                    continue
            outputs = []
            try:
                for prompt in PROMPTS[:args.prompts]:
                    prompt_ids, new = generate(model, tok, prompt, args.new_tokens)
                    outputs.append((prompt_ids, new))
            finally:
                if steering is not None:
                    steering.remove()
            rows = []
            for prompt_ids, new in outputs:
                text = tok.decode(new, skip_special_tokens=True)
                rows.append({"text": text, "lang": langid.classify(text)[0] if text.strip() else "",
                             "nll": fluency(model, prompt_ids, new) if new else float("nan")})
            n = len(steering.mask) if hasattr(steering, "mask") else 0  # residual steering moves no neuron
            success = None if code is None else sum(r["lang"] == code for r in rows) / len(rows)
            append(PATH, {"key": key, "model": slug, "target": target, "set": name, "n": n, "success": success,
                          "nll": float(np.nanmean([r["nll"] for r in rows])), "outputs": rows,
                          "seconds": time.time() - t})
            print(key, n, success, rows[0]["text"][:60].replace("\n", " "), flush=True)


def report() -> str:
    recs = records(PATH)
    lines = []
    for slug in MODELS:
        rs = [r for r in recs if r["model"] == slug]
        if not rs:
            continue
        base = next((r for r in rs if r["set"] == "unsteered"), None)
        names = list(dict.fromkeys(r["set"] for r in rs if r["set"] != "unsteered"))
        head = f"**{slug}** — steering from English: success (langid = target) / fluency (NLL under " \
               "the unsteered model, nats/token) / neurons (source ∪ target)"
        if base:
            head += f"; unsteered output: {', '.join(sorted(set(o['lang'] for o in base['outputs'])))}, NLL {base['nll']:.2f}"
        lines += ["", head, "", "| target | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for target in [t for t in TARGETS if any(r["target"] == t for r in rs)]:
            cells = []
            for name in names:
                r = next((r for r in rs if r["target"] == target and r["set"] == name), None)
                cells.append("—" if r is None else ("empty set" if "error" in r else
                             f"{r['success']:.0%} / {r['nll']:.2f} / {r['n']}"))
            lines.append(f"| {target} | " + " | ".join(cells) + " |")
        lines.append("| mean | " + " | ".join(
            _mean([r for r in rs if r["set"] == name and "error" not in r]) for name in names) + " |")
    return "\n".join(lines)


def _mean(rs: list[dict]) -> str:
    if not rs:
        return "—"
    return f"{np.mean([r['success'] for r in rs]):.0%} / {np.mean([r['nll'] for r in rs]):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "report"])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma-3-270m"])
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS))
    parser.add_argument("--prompts", type=int, default=len(PROMPTS))
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--diffmean-layers", nargs="+", type=int, help="output_hidden_states indices (default: L/3, L/2, 2L/3)")
    parser.add_argument("--strengths", nargs="+", type=float, default=[1.0, 2.0, 4.0], help="DiffMean multipliers")
    args = parser.parse_args()
    if args.what == "run":
        for slug in args.models:
            run(slug, args)
    print(report(), file=sys.stderr if args.what == "run" else sys.stdout)


if __name__ == "__main__":
    main()
