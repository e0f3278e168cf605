"""The build's settings, each default and help text written once; ``build_models`` and ``neuron-atlas build`` read
them from here (torch-free, so the CLI can import it at start-up)."""
from __future__ import annotations

from dataclasses import dataclass

from .._utils.settings import help_of, setting
from ..modeling.threads import COMPUTE, ComputeConfig


@dataclass(frozen=True)
class BuildConfig:
    """How ``build_models`` counts: corpus and languages, token budget, batching, precision, placement, Ray."""

    corpus: str = setting("udhr", "udhr, a local file/folder of per-language text, or hf:<dataset id>")
    langs: str = setting("all", "'all' or comma-separated tags: tl,id,sw (any spelling)")
    gguf_file: str | None = setting(None, "GGUF file inside --model's folder or repo")
    tokens_per_language: int = setting(2048, "token budget per language (0: all text)")
    seq_len: int = setting(512, "tokens per sequence, BOS included")
    batch_size: int = setting(8, "sequences per forward (0: fit the free GPU memory); halved on out-of-memory")
    dtype: str = setting("float32", "float32, bfloat16 or float16")
    device: str = setting("cpu", "cpu, cuda, cuda:1, mps, or auto (spread a large model over all GPUs)")
    min_tokens: int | None = setting(None, "skip languages with fewer tokens (default: half the budget)")
    strict: bool = setting(False, "fail instead of skipping languages with too little text")
    ray: str | None = setting(None, "count on a Ray cluster: 'auto' (this machine's, else a new local one) or its address")
    workers: int | None = setting(None, "with --ray: model replicas (default: one per GPU, else per CPU)")
    gpus_per_worker: int = setting(1, "with --ray: GPUs per replica (>1: device_map over them)")
    threads: int | None = setting(COMPUTE.threads, help_of(ComputeConfig, "threads") + "; 1 thread per Ray worker")


BUILD = BuildConfig()  # the defaults
