"""Calibration + Wanda pruning with hooks (one pass, per-feature sums only) vs with every linear input stored,
and (``--evaluate``) translation-calibrated vs monolingual Wanda vs magnitude pruning of gemma-3-270m.

Each variant runs in its own child process on the same calibration set; peak memory is the largest RSS above the
RSS right after loading the model (sampled every 5 ms), so the two figures are comparable. Both variants must
produce the same masks. Uses gemma-3-270m when its dequantised cache exists, else a tiny random Llama (and says so).

    python benchmarks/prune.py --samples 8
    python benchmarks/prune.py --evaluate --samples 16 --sparsity 0.5

The evaluation holds out UDHR articles 19-30 (sections 20+) from calibration: per-language perplexity on them, and a
zero-shot likelihood task on them: given the first half of a paragraph (in tokens), pick its true second half among
four (the others are second halves of other held-out paragraphs of the same language) by mean token log-probability.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Largest RSS seen by a 5 ms sampling thread while the block runs, minus the RSS when it started."""

    def __enter__(self):
        self.base = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        self.extra = self.peak - self.base


def load(samples: int, max_length: int):
    import torch

    from neuron_atlas.modeling.load import cache_root
    from neuron_atlas.prune.calibration import translation_set

    torch.manual_seed(0)
    if (cache_root() / "models" / "gemma-3-270m" / "neuron_atlas_source.json").is_file():
        from neuron_atlas.modeling.load import load_packaged

        lm = load_packaged("gemma-3-270m")
        model, tok, name = lm.model, lm.tokenizer, "gemma-3-270m"
    else:
        import transformers

        from neuron_atlas.prune.calibration import CalibrationSet

        cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                                       num_attention_heads=4, num_key_value_heads=4)
        model, name = transformers.LlamaForCausalLM(cfg).eval(), "tiny random Llama (gemma-3-270m cache missing)"
        seqs = torch.randint(3, 512, (samples, max_length)).tolist()
        return model, CalibrationSet(seqs, 0, "random"), name
    return model, translation_set(tok, "udhr", ["sw-en"], nsamples=samples, max_length=max_length), name


def stored_norms(model, calib, batch_size: int):
    """The naive way: keep every linear input (non-padding rows), then reduce."""
    import torch

    from neuron_atlas.prune.stats import InputNorms, prunable_linears, run_batches

    modules = prunable_linears(model)
    stored: dict[str, list] = {name: [] for name in modules}
    current = {}

    def hook_for(name):
        def hook(_m, args):
            x = args[0]
            stored[name].append(x.reshape(-1, x.shape[-1])[current["mask"].reshape(-1)].clone())
        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in modules.items()]
    run_batches(model, calib, batch_size, lambda mask: current.__setitem__("mask", mask), "stored activations")
    for h in handles:
        h.remove()
    sumsq = {}
    for name in modules:
        x = torch.cat(stored.pop(name))
        sumsq[name] = x.double().square().sum(0)
        del x
    return InputNorms(sumsq, calib.tokens)


def run_variant(variant: str, samples: int, max_length: int, batch_size: int, queue) -> None:
    import torch

    from neuron_atlas.prune.stats import input_norms
    from neuron_atlas.prune.wanda import wanda_masks

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, calib, name = load(samples, max_length)
    with torch.no_grad():  # page in every weight (safetensors are memory-mapped) so RSS growth is the method's own
        sum(float(p.sum()) for p in model.parameters())
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        norms = (input_norms if variant == "hooks" else stored_norms)(model, calib, batch_size=batch_size)
        t1 = time.perf_counter()
        masks = wanda_masks(model, norms, sparsity=0.5)
        masks.apply(model)
        t2 = time.perf_counter()
    digest = hashlib.sha256(b"".join(masks.masks[k].numpy().tobytes() for k in sorted(masks.masks))).hexdigest()
    queue.put({"variant": variant, "model": name, "samples": len(calib), "tokens": calib.tokens,
               "calib_s": t1 - t0, "prune_s": t2 - t1, "peak_mb": mem.extra, "digest": digest[:12]})


LANGS = ["sw", "hi", "fr", "zh", "en"]
HELD_OUT_FROM = 20  # UDHR sections 0..19 (title, preamble, articles 1-18) calibrate; the rest evaluate


def continuation_items(tok, sections: list[str], n_items: int, seed: int) -> list[tuple[list[int], list[list[int]], int]]:
    """(prefix ids, four candidate continuations, index of the true one) from held-out paragraphs."""
    import random

    paras = [p for s in sections for p in s.split("\n")]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in paras]
    ids = [x for x in ids if len(x) >= 12][:n_items]
    halves = [(x[: len(x) // 2], x[len(x) // 2:][:32]) for x in ids]
    rng, items = random.Random(seed), []
    for i, (prefix, cont) in enumerate(halves):
        others = rng.sample([h[1] for j, h in enumerate(halves) if j != i], 3)
        answer = rng.randrange(4)
        items.append(([tok.bos_token_id] + prefix, others[:answer] + [cont] + others[answer:], answer))
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
    from neuron_atlas.evaluate import perplexity
    from neuron_atlas.langs import canonical
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
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--evaluate", action="store_true", help="compare pruning methods on gemma-3-270m instead")
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--items", type=int, default=12, help="continuation items per language")
    args = parser.parse_args()
    if args.evaluate:
        evaluate(args.samples, args.sparsity, args.items, args.batch_size)
        return
    ctx = mp.get_context("spawn")
    results = []
    for variant in ("hooks", "stored"):
        queue = ctx.Queue()
        proc = ctx.Process(target=run_variant, args=(variant, args.samples, args.max_length, args.batch_size, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
    hooks, stored = results
    print(f"model: {hooks['model']}; {hooks['samples']} translation prompts (sw-en, UDHR), {hooks['tokens']} tokens; "
          f"masks identical: {hooks['digest'] == stored['digest']}")
    print("| variant | calibration s | pruning s | peak extra memory MiB |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['variant']} | {r['calib_s']:.1f} | {r['prune_s']:.1f} | {r['peak_mb']:.0f} |")
    print(f"| stored / hooks | {stored['calib_s'] / hooks['calib_s']:.2f}x | {stored['prune_s'] / hooks['prune_s']:.2f}x "
          f"| {stored['peak_mb'] / max(hooks['peak_mb'], 1):.1f}x |")


if __name__ == "__main__":
    main()
