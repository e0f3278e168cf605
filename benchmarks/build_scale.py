"""``build.py --part ray`` and ``--part cost``: the Ray build against one process, and the measured inputs of the
cost on paper of a Llama-3.1-8B × 200 languages × 10M tokens atlas (see build.py's docstring)."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from rich.console import Console
from rich.table import Table

import neuron_atlas.builder.run as run_mod
from neuron_atlas.builder.run import build
from neuron_atlas.corpus.udhr import UDHR

LANGS = ["en", "fr", "de", "es", "ru", "tl", "id", "sw", "pt", "it", "nl", "pl", "tr", "vi", "hi", "ar"]


def _timed_build(stamps: list[float], *args, **kw) -> float:
    """Wall seconds of one build; ``stamps`` gets the time each shard reached the driver."""
    accept = run_mod._accept

    def stamped(*a, **k):
        stamps.append(time.perf_counter())
        return accept(*a, **k)

    run_mod._accept = stamped
    try:
        started = time.perf_counter()
        build(*args, **kw)
        return time.perf_counter() - started
    finally:
        run_mod._accept = accept


def _same_counts(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.glob("counts/*/*/counts.parquet"))
    return bool(files) and all(pq.read_table(a / f).equals(pq.read_table(b / f)) for f in files)


def ray_rows(args) -> None:
    import ray
    import torch

    corpus = UDHR()
    langs = LANGS[:args.langs]
    kw = dict(tokens_per_language=args.tokens, seq_len=args.seq_len, batch_size=args.batch_size, dtype=args.dtype,
              progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="na-bench-ray-"))
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - started
    rows = []
    try:
        threads = torch.get_num_threads()
        single = _timed_build([], args.model, corpus, langs, out=tmp / "single", **kw)
        torch.set_num_threads(1)  # as in each Ray CPU actor
        single1 = _timed_build([], args.model, corpus, langs, out=tmp / "single1", **kw)
        spread = _timed_build([], args.model, corpus, langs, out=tmp / "ray", ray="auto", workers=2, **kw)
        same = _same_counts(tmp / "single", tmp / "ray") and _same_counts(tmp / "single1", tmp / "ray")
        tokens = args.tokens * len(langs)
        rows += [(f"single process ({threads} torch threads), whole build", f"{tokens / single:,.0f} tok/s", f"{single:.1f} s"),
                 ("single process (1 torch thread), whole build", f"{tokens / single1:,.0f} tok/s", f"{single1:.1f} s"),
                 ("Ray, 2 CPU actors (1 thread each), whole build", f"{tokens / spread:,.0f} tok/s", f"{spread:.1f} s"),
                 (f"throughput Ray ÷ single process ({threads} threads)", f"{single / spread:.2f}", f"counts identical: {same}"),
                 ("throughput Ray ÷ single process (1 thread)", f"{single1 / spread:.2f}", "")]
        # per-shard overhead: many near-empty shards, intervals between shards reaching the driver (1 thread both)
        tiny = dict(kw, tokens_per_language=4, min_tokens=1, seq_len=8, batch_size=1)
        local_stamps, ray_stamps = [], []
        _timed_build(local_stamps, args.model, corpus, LANGS, out=tmp / "o-single", **tiny)
        _timed_build(ray_stamps, args.model, corpus, LANGS, out=tmp / "o-ray", ray="auto", workers=1, **tiny)
        torch.set_num_threads(threads)
        local = statistics.median(np.diff(local_stamps[1:]))
        remote = statistics.median(np.diff(ray_stamps[1:]))
        rows += [("shard interval, one process (median)", f"{local * 1e3:.1f} ms", f"{len(LANGS)} shards of 4 tokens"),
                 ("shard interval, Ray 1 actor (median)", f"{remote * 1e3:.1f} ms", ""),
                 ("per-shard scheduling overhead of Ray", f"{(remote - local) * 1e3:.1f} ms", "difference of the two"),
                 ("ray.init of the local cluster (not in the rows above)", f"{init_s:.1f} s", "")]
    finally:
        ray.shutdown()
    table = Table(title=f"{args.model} {args.dtype}, {len(langs)} UDHR languages × {args.tokens} tokens, seq_len "
                        f"{args.seq_len}, batch {args.batch_size}")
    for col in ("measure", "value", "note"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


class CountingFS(LocalFileSystem):
    """The local disk, counting the bytes read through it (stands in for the Hub's file system in a lazy open)."""

    read_bytes = 0
    opened: list[str] = []

    def _open(self, path, mode="rb", **kw):
        f = super()._open(path, mode, **kw)
        CountingFS.opened.append(path)
        read = f.read

        def counted(*a):
            data = read(*a)
            CountingFS.read_bytes += len(data)
            return data

        f.read = counted
        return f


def llama_flops_per_token(seq_len: int, shape: str = "llama-3.1-8b") -> tuple[float, float]:
    """(decoder, LM head) FLOPs per token of a Llama shape at ``seq_len``, from torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM

    from random_models import llama_config

    config = llama_config(shape)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    ids = torch.zeros(1, seq_len, dtype=torch.long, device="meta")
    mask = torch.zeros(1, 1, seq_len, seq_len, dtype=torch.bfloat16, device="meta")  # 4D: no data-dependent checks
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.model(input_ids=ids, attention_mask=mask, use_cache=False)
    decoder = counter.get_total_flops() / seq_len
    return decoder, 2 * config.hidden_size * config.vocab_size


def tokenizer_rate() -> float:
    """Tokens per CPU-second of the builder's tokenization (``token_ids``) on UDHR text."""
    from neuron_atlas.modeling.tokens import token_ids
    from neuron_atlas.modeling.load import load_packaged_tokenizer

    tokenizer, corpus = load_packaged_tokenizer("smollm2-135m"), UDHR()
    texts = [t for tag in corpus.languages()[:60] for t in corpus.texts(tag)] * 3
    started = time.process_time()
    return len(token_ids(tokenizer, texts)) / (time.process_time() - started)


def cost(args) -> None:
    from neuron_atlas.atlas import Atlas
    from neuron_atlas.testing import make_atlas

    console = Console(width=140)
    table = Table(title="measured inputs of the cost on paper (Llama-3.1-8B: 32 × 14336 neurons)")
    for col in ("measure", "value"):
        table.add_column(col)
    for seq_len in (512, 2048):
        decoder, head = llama_flops_per_token(seq_len)
        table.add_row(f"decoder forward FLOPs/token, seq_len {seq_len}", f"{decoder / 1e9:.2f} GFLOP")
    table.add_row("LM head FLOPs/token (the builder skips it)", f"{head / 1e9:.2f} GFLOP")
    table.add_row("firing count FLOPs/token (one GEMV per layer)", f"{2 * 32 * 14336 / 1e9:.4f} GFLOP")
    table.add_row("tokenizing: tokens per CPU-second (smollm2's fast tokenizer, 60 UDHR languages × 3)",
                  f"{tokenizer_rate() / 1e6:.2f} M")

    root = Path(tempfile.mkdtemp(prefix="na-bench-cost-"))
    langs = UDHR().languages()[:args.langs]
    started = time.perf_counter()
    make_atlas(root, model="llama-3.1-8b", n_layers=32, ffn_width=14336, langs=langs, tokens=10_000_000, seed=0)
    size = {name: sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file())
            for name in ("counts", "lape", "models")}
    stats = len(langs) * 32 * 14336
    table.add_row(f"synthetic atlas, {len(langs)} languages × 10M tokens, written in", f"{time.perf_counter() - started:.0f} s")
    table.add_row("counts bytes per (neuron, language) statistic", f"{size['counts'] / stats:.2f} B")
    table.add_row("counts bytes per language shard", f"{size['counts'] / len(langs) / 2**20:.2f} MiB")
    table.add_row("derived tables (ranking + lape)", f"{size['lape'] / 2**20:.2f} MiB")
    table.add_row("whole atlas", f"{sum(size.values()) / 2**20:.1f} MiB")
    atlas = Atlas(str(root), fs=CountingFS())
    rows = atlas.neurons("llama-3.1-8b", lang=langs[5], top="1%").to_arrow().num_rows
    table.add_row(f"lazy neurons(lang={langs[5]}, top='1%'): bytes read ({rows} neurons)",
                  f"{CountingFS.read_bytes / 2**20:.2f} MiB in {len(CountingFS.opened)} files")
    console.print(table)
