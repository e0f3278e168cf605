"""``neuron-atlas build``: count causal LMs' language-specific neurons over a corpus into an atlas folder, in one
process or on a Ray cluster (``--ray``).

torch is imported only when the command runs.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from ._common import err


def build_command(
    model: Annotated[list[str], typer.Option("--model", "-m", help="packaged slug (gemma-3-270m, smollm2-135m), Hugging Face id, local folder or .gguf file; repeat for several models")],
    out: Annotated[str, typer.Option("--out", "-o", help="atlas folder to create or extend, or a Hub dataset repo hf://datasets/org/name")],
    corpus: Annotated[str, typer.Option("--corpus", help="udhr, a local file/folder of per-language text, or hf:<dataset id>")] = "udhr",
    langs: Annotated[str, typer.Option("--lang", "--langs", "-l", help="'all' or comma-separated tags: tl,id,sw (any spelling)")] = "all",
    gguf_file: Annotated[Optional[str], typer.Option("--gguf-file", help="GGUF file inside --model's folder or repo")] = None,
    slug: Annotated[Optional[str], typer.Option("--slug", help="model name in the atlas; default from --model")] = None,
    tokens_per_language: Annotated[int, typer.Option("--tokens-per-language", help="token budget per language (0: all text)")] = 2048,
    seq_len: Annotated[int, typer.Option("--seq-len", help="tokens per sequence, BOS included")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", help="sequences per forward (0: fit the free GPU memory); halved on out-of-memory")] = 8,
    dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16")] = "float32",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps, or auto (spread a large model over all GPUs)")] = "cpu",
    ray: Annotated[Optional[str], typer.Option("--ray", help="count on a Ray cluster: 'auto' (this machine's, else a new local one) or its address")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="with --ray: model replicas (default: one per GPU, else per CPU)")] = None,
    gpus_per_worker: Annotated[int, typer.Option("--gpus-per-worker", help="with --ray: GPUs per replica (>1: device_map over them)")] = 1,
    min_tokens: Annotated[Optional[int], typer.Option("--min-tokens", help="skip languages with fewer tokens (default: half the budget)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail instead of skipping languages with too little text")] = False,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads torch computes with (default: the cores no other process is busy on; 1 thread per Ray worker)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars (transformers' and Hub downloads' included) and no progress lines: warnings, errors and the summary only")] = False,
) -> None:
    """Build or extend an atlas: record which FFN neurons fire on each language, then derive the LAPE tables.

    Shards already in --out are kept, so an interrupted build resumes and --lang added later extends the atlas.
    With --ray the shards of every --model are spread over a pool of Ray workers (pip install 'neuron-atlas\\[ray]').
    """
    from ..builder.run import build_models
    from ..errors import InvalidParameterError
    from ..progress import set_quiet

    set_quiet(quiet)
    if slug is not None and len(model) > 1:
        raise InvalidParameterError("--slug names one model; drop it to name each of several --model by its id")
    reports = build_models(  # its errors reach main(), which prints them and picks the exit code
        model, corpus, langs, out=out, slugs=[slug] * len(model), gguf_file=gguf_file,
        tokens_per_language=tokens_per_language, seq_len=seq_len, batch_size=batch_size, dtype=dtype,
        device=device, min_tokens=min_tokens, strict=strict, ray=ray, workers=workers,
        gpus_per_worker=gpus_per_worker, threads=threads, progress=not quiet, console=err,
    )
    for report in reports:
        tokens = sum(report.built.values())
        err.print(
            f"{report.model}: counted {len(report.built)} languages ({tokens:,} tokens, {report.tokens_per_second:,.0f} "
            f"tok/s per replica, {report.seconds:,.0f} s), kept {len(report.existing)} already built, skipped "
            f"{len(report.skipped)}; atlas: {report.out}",
            highlight=False,
        )
