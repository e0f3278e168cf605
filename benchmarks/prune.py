"""Calibration + Wanda pruning with hooks (one pass, per-feature sums only) vs with every linear input stored.

Each variant runs in its own child process on the same calibration set; peak memory is the largest RSS above the
RSS right after loading the model (sampled every 5 ms), so the two figures are comparable. Both variants must
produce the same masks. Uses gemma-3-270m when its dequantised cache exists, else a tiny random Llama (and says so).

    python benchmarks/prune.py --samples 8

The quality of the pruned models (translation-calibrated vs monolingual Wanda vs magnitude) is studies/study_prune.py.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
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
