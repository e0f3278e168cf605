"""``neuron-atlas build``: count causal LMs' language-specific neurons over a corpus into an atlas folder, in one
process or on a Ray cluster (``--ray``).

torch is imported only when the command runs.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from .._utils.settings import help_of
from ..builder.config import BUILD, BuildConfig
from ._common import err


def build_command(
    model: Annotated[list[str], typer.Option("--model", "-m", help="packaged slug (gemma-3-270m, smollm2-135m), Hugging Face id, local folder or .gguf file; repeat for several models")],
    out: Annotated[str, typer.Option("--out", "-o", help="atlas folder to create or extend, or a Hub dataset repo hf://datasets/org/name")],
    corpus: Annotated[str, typer.Option("--corpus", help=help_of(BuildConfig, "corpus"))] = BUILD.corpus,
    langs: Annotated[str, typer.Option("--lang", "--langs", "-l", help=help_of(BuildConfig, "langs"))] = BUILD.langs,
    gguf_file: Annotated[Optional[str], typer.Option("--gguf-file", help=help_of(BuildConfig, "gguf_file"))] = BUILD.gguf_file,
    slug: Annotated[Optional[str], typer.Option("--slug", help="model name in the atlas; default from --model")] = None,
    tokens_per_language: Annotated[int, typer.Option("--tokens-per-language", help=help_of(BuildConfig, "tokens_per_language"))] = BUILD.tokens_per_language,
    seq_len: Annotated[int, typer.Option("--seq-len", help=help_of(BuildConfig, "seq_len"))] = BUILD.seq_len,
    batch_size: Annotated[int, typer.Option("--batch-size", help=help_of(BuildConfig, "batch_size"))] = BUILD.batch_size,
    dtype: Annotated[str, typer.Option("--dtype", help=help_of(BuildConfig, "dtype"))] = BUILD.dtype,
    device: Annotated[str, typer.Option("--device", help=help_of(BuildConfig, "device"))] = BUILD.device,
    ray: Annotated[Optional[str], typer.Option("--ray", help=help_of(BuildConfig, "ray"))] = BUILD.ray,
    workers: Annotated[Optional[int], typer.Option("--workers", help=help_of(BuildConfig, "workers"))] = BUILD.workers,
    gpus_per_worker: Annotated[int, typer.Option("--gpus-per-worker", help=help_of(BuildConfig, "gpus_per_worker"))] = BUILD.gpus_per_worker,
    min_tokens: Annotated[Optional[int], typer.Option("--min-tokens", help=help_of(BuildConfig, "min_tokens"))] = BUILD.min_tokens,
    strict: Annotated[bool, typer.Option("--strict", help=help_of(BuildConfig, "strict"))] = BUILD.strict,
    threads: Annotated[Optional[int], typer.Option("--threads", help=help_of(BuildConfig, "threads"))] = BUILD.threads,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars (transformers' and Hub downloads' included) and no progress lines: warnings, errors and the summary only")] = False,
) -> None:
    """Build or extend an atlas: record which FFN neurons fire on each language, then derive the LAPE tables.

    Shards already in --out are kept, so an interrupted build resumes and --lang added later extends the atlas.
    With --ray the shards of every --model are spread over a pool of Ray workers (pip install 'neuron-atlas\\[ray]').
    """
    from ..builder.run import build_models
    from ..errors import InvalidParameterError
    from .._utils.progress import quieted

    if slug is not None and len(model) > 1:
        raise InvalidParameterError("--slug names one model; drop it to name each of several --model by its id")
    with quieted(quiet):
        reports = build_models(  # its errors reach main(), which prints them and picks the exit code
            model, corpus, langs, out=out, slugs=[slug] * len(model), gguf_file=gguf_file,
            tokens_per_language=tokens_per_language, seq_len=seq_len, batch_size=batch_size, dtype=dtype,
            device=device, min_tokens=min_tokens, strict=strict, ray=ray, workers=workers,
            gpus_per_worker=gpus_per_worker, threads=threads, progress=not quiet, console=err.console,
        )
    for report in reports:
        tokens = sum(report.built.values())
        err.print(
            f"{report.model}: counted {len(report.built)} languages ({tokens:,} tokens, {report.tokens_per_second:,.0f} "
            f"tok/s per replica, {report.seconds:,.0f} s), kept {len(report.existing)} already built, skipped "
            f"{len(report.skipped)}; atlas: {report.out}",
            highlight=False,
        )
