"""Translation-calibrated vs monolingual Wanda vs magnitude pruning of gemma-3-270m: quality on held-out text.

    python studies/study_prune.py --samples 16 --sparsity 0.5 --items 8

The evaluation holds out UDHR articles 19-30 (sections 20+) from calibration: per-language perplexity on them, and a
zero-shot likelihood task on them: given the first half of a paragraph (in tokens), pick its true second half among
four (the others are second halves of other held-out paragraphs of the same language) by mean token log-probability.
Findings: studies/FINDINGS.md. (Moved from benchmarks/prune.py, which keeps the speed and memory half.)
"""
from __future__ import annotations

import argparse
import time


LANGS = ["sw", "hi", "fr", "zh", "en"]
HELD_OUT_FROM = 20  # UDHR sections 0..19 (title, preamble, articles 1-18) calibrate; the rest evaluate


def continuation_items(tok, sections: list[str], n_items: int, seed: int) -> list[tuple[list[int], list[list[int]], int]]:
    """(prefix ids, four candidate continuations, index of the true one) from held-out paragraphs."""
    import random

    from neuron_atlas.modeling.tokens import bos_id

    head = [] if bos_id(tok) is None else [bos_id(tok)]  # as the builder and evaluate cut windows
    paras = [p for s in sections for p in s.split("\n")]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in paras]
    ids = [x for x in ids if len(x) >= 12][:n_items]
    halves = [(x[: len(x) // 2], x[len(x) // 2:][:32]) for x in ids]
    rng, items = random.Random(seed), []
    for i, (prefix, cont) in enumerate(halves):
        others = rng.sample([h[1] for j, h in enumerate(halves) if j != i], 3)
        answer = rng.randrange(4)
        items.append((head + prefix, others[:answer] + [cont] + others[answer:], answer))
    return items


def continuation_accuracy(model, items, batch_size: int = 8) -> float:
    """Share of items whose true continuation has the highest mean token log-probability (LM head on it only)."""
    import torch

    seqs = [(prefix, cand) for prefix, cands, _ in items for cand in cands]
    scores = []
    with torch.inference_mode():
        for start in range(0, len(seqs), batch_size):
            batch = seqs[start:start + batch_size]
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, (p, c) in enumerate(batch):
                ids[r, :len(p) + len(c)] = torch.tensor(p + c)
                mask[r, :len(p) + len(c)] = 1
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for r, (p, c) in enumerate(batch):
                logits = model.lm_head(hidden[r, len(p) - 1:len(p) + len(c) - 1]).float()
                scores.append(torch.log_softmax(logits, -1).gather(1, torch.tensor(c)[:, None]).mean().item())
    per_item = [scores[4 * k:4 * k + 4] for k in range(len(items))]
    return sum(max(range(4), key=s.__getitem__) == ans for s, (_, _, ans) in zip(per_item, items)) / len(items)


def evaluate(samples: int, sparsity: float, n_items: int, batch_size: int) -> None:
    import torch

    from neuron_atlas.corpus import open_corpus
    from neuron_atlas.interventions.evaluate import perplexity
    from neuron_atlas.languages.tags import canonical
    from neuron_atlas.modeling.load import load_packaged
    from neuron_atlas.prune.calibration import monolingual_set, translation_set
    from neuron_atlas.prune.stats import input_norms, prunable_linears
    from neuron_atlas.prune.wanda import magnitude_masks, wanda_masks

    lm = load_packaged("gemma-3-270m")
    model, tok = lm.model, lm.tokenizer
    udhr = open_corpus("udhr")
    sections = {lang: list(udhr.texts(lang)) for lang in LANGS}
    calib_corpus = {canonical(lang): s[:HELD_OUT_FROM] for lang, s in sections.items()}
    held = {lang: s[HELD_OUT_FROM:] for lang, s in sections.items()}
    sources = [lang for lang in LANGS if lang != "en"]
    t0 = time.perf_counter()
    tc = input_norms(model, translation_set(tok, calib_corpus, [f"{x}-en" for x in sources], nsamples=samples),
                     batch_size=batch_size)
    mono = input_norms(model, monolingual_set(tok, calib_corpus, sources, nsamples=samples), batch_size=batch_size)
    print(f"calibration: {tc.tokens} translation + {mono.tokens} monolingual tokens, {time.perf_counter() - t0:.0f} s")
    methods = {
        "dense": None,
        "translation-calibrated Wanda": wanda_masks(model, tc, sparsity=sparsity),
        "monolingual Wanda": wanda_masks(model, mono, sparsity=sparsity),
        "magnitude": magnitude_masks(model, sparsity=sparsity),
    }
    items = {lang: continuation_items(tok, held[lang], n_items, seed=0) for lang in LANGS}
    original = {n: m.weight.detach().clone() for n, m in prunable_linears(model).items()}
    rows = []
    for method, masks in methods.items():
        with torch.no_grad():
            for n, m in prunable_linears(model).items():
                m.weight.copy_(original[n])
        if masks is not None:
            masks.apply(model)
        ppl = {lang: perplexity(model, "\n".join(held[lang]), tok, seq_len=256, batch_size=batch_size)
               for lang in LANGS}
        acc = {lang: continuation_accuracy(model, items[lang]) for lang in LANGS}
        rows.append((method, ppl, acc))
        print(method, {k: round(v, 1) for k, v in ppl.items()}, acc, flush=True)
    head = " | ".join(f"ppl {lang}" for lang in LANGS) + " | " + " | ".join(f"acc {lang}" for lang in LANGS)
    print(f"\nsparsity {sparsity}, {samples} calibration samples per method, "
          f"{len(items['sw'])} continuation items per language (chance 0.25)")
    print(f"| method | {head} |")
    print("|---|" + "---:|" * (2 * len(LANGS)))
    for method, ppl, acc in rows:
        print(f"| {method} | " + " | ".join(f"{ppl[lang]:.1f}" for lang in LANGS) + " | "
              + " | ".join(f"{acc[lang]:.2f}" for lang in LANGS) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8, help="calibration samples per method")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--items", type=int, default=12, help="continuation items per language")
    args = parser.parse_args()
    evaluate(args.samples, args.sparsity, args.items, args.batch_size)


if __name__ == "__main__":
    main()
