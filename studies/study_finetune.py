"""Neuron-set study, part 2: fine-tuning a language's budgeted subnetwork vs a random one of the same size vs LoRA vs
the whole FFNs, on low-resource languages of smollm2-135m.

Per language, its UDHR tokens split in order: the last 256 tokens (4 windows of 64) held out, the rest to train on;
each method trains ``--steps`` AdamW steps of ``--batch`` random windows of ``--train-seq`` tokens from the training
part (the same windows for every method of a seed). Reported: held-out perplexity of the target before/after, and the change in
held-out perplexity of a relative and of unrelated languages (their last 256 tokens). Subnetwork = the language's
LAPE ``size="0.5%"`` neurons (gate/up/down rows and columns); random = the same per-layer counts at random;
LoRA r=8 on gate/up/down (alpha 16); ffn_only = every FFN weight.

    python studies/study_finetune.py run      # appends to out/study/finetune.jsonl (resumable)
    python studies/study_finetune.py run --reverse   # a second process beside it: the seeds from the last
    python studies/study_finetune.py probe    # seconds per step of each method
    python studies/study_finetune.py report
"""
from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np

from study_common import OUT, append, done, load, records, udhr_ids

PATH = OUT / "finetune.jsonl"
MODEL = "smollm2-135m"
LANGS = {"tgl_Latn": "ceb_Latn", "zul_Latn": "xho_Latn", "swh_Latn": None, "npi_Deva": "hin_Deva"}  # target: relative
OTHERS = ["eng_Latn", "fra_Latn", "rus_Cyrl"]
METHODS = {"subnetwork": 1e-3, "random": 1e-3, "lora8": 1e-3, "ffn_only": 3e-5,  # learning rates
           "subnetwork-ovr": 1e-3, "subnetwork-mean_diff": 1e-3, "subnetwork-t": 1e-3}
# The selection method behind each subnetwork (the set of size 0.5 %); mean_diff and t need an atlas with act(gate)
# moments (--atlas). "random" takes LAPE's per-layer counts.
SELECTION = {"subnetwork": "lape", "subnetwork-ovr": "ovr", "subnetwork-mean_diff": "mean_diff", "subnetwork-t": "t"}
SEQ, HELD = 64, 256


def split(tok, tag: str) -> tuple[list[int], list[list[int]]]:
    ids = udhr_ids(tok, tag)
    train, test = ids[:-HELD], ids[-HELD:]
    return train, [test[i:i + SEQ] for i in range(0, HELD, SEQ)]


def tuned_model(method: str, base, neurons, seed: int):
    from neuron_atlas.finetune import ffn_only, lora, random_subnetwork, subnetwork

    model = copy.deepcopy(base)
    if method in SELECTION:
        return subnetwork(model, neurons)
    return {"random": lambda: random_subnetwork(model, neurons, seed=seed),
            "lora8": lambda: lora(model, r=8), "ffn_only": lambda: ffn_only(model)}[method]()


def train(tuned, train_ids: list[int], steps: int, batch: int, lr: float, seed: int, seq: int = SEQ) -> float:
    """AdamW steps on random windows; returns seconds per step."""
    import torch

    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(tuned.trainable_parameters(), lr=lr, weight_decay=0.0)
    tuned.model.train()
    start = time.time()
    for _ in range(steps):
        starts = rng.integers(0, len(train_ids) - seq, size=batch)
        x = torch.tensor([train_ids[s:s + seq] for s in starts])
        tuned.model(input_ids=x, labels=x).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.time() - start) / max(steps, 1)


def ppl(model, windows) -> float:
    from neuron_atlas.interventions.evaluate import nll

    model.eval()
    total, count = nll(model, windows, batch_size=4)
    return math.exp(total / count)


def run(args) -> None:
    import neuron_atlas as na

    base, tok, _ = load(MODEL)
    atlas = na.open(args.atlas) if args.atlas else na.open()
    chosen = {t: LANGS[t] for t in (args.langs or LANGS)}
    evals = {tag: split(tok, tag)[1] for tag in {*chosen, *[r for r in chosen.values() if r], *OTHERS}}
    before = {tag: ppl(base, w) for tag, w in evals.items()}
    seeds = range(args.seeds)[::-1] if args.reverse else range(args.seeds)
    for seed in seeds:
        for tag, relative in chosen.items():
            train_ids = split(tok, tag)[0]
            for method, lr in METHODS.items():
                if args.methods and method not in args.methods:
                    continue
                key = f"ft|{MODEL}|{tag}|{method}|{seed}|{args.steps}x{args.batch}x{args.train_seq}"
                if key in done(PATH):  # read again each time: a --reverse run beside this one may have written it
                    continue
                neurons = atlas.neurons(MODEL, lang=tag, size="0.5%", method=SELECTION.get(method, "lape"))
                tuned = tuned_model(method, base, neurons, seed)
                n = tuned.num_trainable_parameters()
                step_s = train(tuned, train_ids, args.steps, args.batch, lr, seed, args.train_seq)
                merged = tuned.merge_and_unload()
                langs = [tag, *([relative] if relative else []), *OTHERS]
                after = {t: ppl(merged, evals[t]) for t in langs}
                append(PATH, {"key": key, "model": MODEL, "target": tag, "relative": relative, "method": method,
                              "seed": seed, "steps": args.steps, "batch": args.batch, "train_seq": args.train_seq,
                              "lr": lr, "trainable": n,
                              "step_seconds": step_s, "before": {t: before[t] for t in langs}, "after": after})
                print(key, n, f"{step_s:.2f}s/step", {t: round(after[t], 2) for t in langs}, flush=True)
                del tuned, merged


def probe(args) -> None:
    import neuron_atlas as na

    base, tok, _ = load(MODEL)
    neurons = na.open().neurons(MODEL, lang="tgl_Latn", size="0.5%")
    train_ids = split(tok, "tgl_Latn")[0]
    for method, lr in METHODS.items():
        tuned = tuned_model(method, base, neurons, 0)
        train(tuned, train_ids, 1, args.batch, lr, 0)
        print(method, tuned.num_trainable_parameters(), f"{train(tuned, train_ids, 3, args.batch, lr, 0):.2f} s/step",
              flush=True)


def report() -> str:
    recs = list({r["key"]: r for r in records(PATH)}.values())  # two processes may both have written a record
    if not recs:
        return ""
    setting = max({(r["steps"], r["batch"], r["train_seq"]) for r in recs})  # the longest training recorded
    recs = [r for r in recs if (r["steps"], r["batch"], r["train_seq"]) == setting]
    steps = setting[0]
    r0 = recs[0]
    lines = [f"\n**{MODEL}**, {steps} AdamW steps of {r0['batch']}×{r0.get('train_seq', SEQ)} tokens, seeds: "
             f"{len({r['seed'] for r in recs})}; held-out perplexity of the target (before → after, mean ± sd over "
             "seeds) and mean relative change of the relative's and the unrelated languages' perplexity", "",
             "| target | method | trainable | lr | target ppl | relative Δppl | unrelated Δppl (eng/fra/rus) | s/step |",
             "|---|---|---|---|---|---|---|---|"]
    for tag in LANGS:
        for method in METHODS:
            rs = [r for r in recs if r["target"] == tag and r["method"] == method]
            if not rs:
                continue
            after = [r["after"][tag] for r in rs]
            rel = [r["after"][r["relative"]] / r["before"][r["relative"]] - 1 for r in rs if r["relative"]]
            unr = [np.mean([r["after"][t] / r["before"][t] - 1 for t in OTHERS]) for r in rs]
            lines.append(f"| {tag} | {method} | {rs[0]['trainable']:,} | {rs[0]['lr']:g} | {rs[0]['before'][tag]:.1f} → "
                         f"{np.mean(after):.1f} ± {np.std(after):.1f} | "
                         f"{f'{np.mean(rel):+.1%}' if rel else '·'} | {np.mean(unr):+.1%} | "
                         f"{np.mean([r['step_seconds'] for r in rs]):.2f} |")
    lines += ["", "Mean over targets:", "", "| method | target ppl ratio after/before | relative Δppl | unrelated Δppl |",
              "|---|---|---|---|"]
    for method in METHODS:
        rs = [r for r in recs if r["method"] == method]
        if rs:
            ratio = np.mean([r["after"][r["target"]] / r["before"][r["target"]] for r in rs])
            rel = [r["after"][r["relative"]] / r["before"][r["relative"]] - 1 for r in rs if r["relative"]]
            unr = np.mean([np.mean([r["after"][t] / r["before"][t] - 1 for t in OTHERS]) for r in rs])
            lines.append(f"| {method} | {ratio:.3f} | {np.mean(rel):+.1%} | {unr:+.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["run", "probe", "report"])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--train-seq", type=int, default=SEQ, help="tokens per training window (held-out windows: 64)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--langs", nargs="+", choices=list(LANGS))
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), help="only these methods")
    parser.add_argument("--atlas", help="the atlas to select from (default: the embedded one; the subnetwork-mean_diff "
                        "and subnetwork-t sets need one with act(gate) moments)")
    parser.add_argument("--reverse", action="store_true", help="seeds from the last: a second process beside a run")
    args = parser.parse_args()
    if args.what == "report":
        print(report())
    else:
        {"run": run, "probe": probe}[args.what](args)


if __name__ == "__main__":
    main()
