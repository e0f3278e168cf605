"""``neuron-atlas build``: count a causal LM's language-specific neurons over a corpus into an atlas folder.

torch is imported only when the command runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import err


def build_command(
    model: Annotated[str, typer.Option("--model", "-m", help="packaged slug (gemma-3-270m, smollm2-135m), Hugging Face id, local folder or .gguf file")],
    out: Annotated[Path, typer.Option("--out", "-o", help="atlas folder to create or extend")],
    corpus: Annotated[str, typer.Option("--corpus", help="udhr, a local file/folder of per-language text, or hf:<dataset id>")] = "udhr",
    langs: Annotated[str, typer.Option("--langs", help="'all' or comma-separated tags: tl,id,sw (any spelling)")] = "all",
    gguf_file: Annotated[Optional[str], typer.Option("--gguf-file", help="GGUF file inside --model's folder or repo")] = None,
    slug: Annotated[Optional[str], typer.Option("--slug", help="model name in the atlas; default from --model")] = None,
    tokens_per_language: Annotated[int, typer.Option("--tokens-per-language", help="token budget per language (0: all text)")] = 2048,
    seq_len: Annotated[int, typer.Option("--seq-len", help="tokens per sequence, BOS included")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size", help="sequences per forward; halved on out-of-memory")] = 8,
    dtype: Annotated[str, typer.Option("--dtype", help="float32, bfloat16 or float16")] = "float32",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:1, mps")] = "cpu",
    min_tokens: Annotated[Optional[int], typer.Option("--min-tokens", help="skip languages with fewer tokens (default: half the budget)")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail instead of skipping languages with too little text")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Build or extend an atlas: record which FFN neurons fire on each language, then derive the LAPE tables.

    Shards already in --out are kept, so an interrupted build resumes and --langs added later extend the atlas.
    """
    from ..errors import AtlasError
    from ..builder.run import build

    try:
        report = build(
            model, corpus, langs, out=out, slug=slug, gguf_file=gguf_file, tokens_per_language=tokens_per_language,
            seq_len=seq_len, batch_size=batch_size, dtype=dtype, device=device, min_tokens=min_tokens, strict=strict,
            progress=not quiet, console=err,
        )
    except AtlasError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    tokens = sum(report.built.values())
    err.print(
        f"{report.model}: counted {len(report.built)} languages ({tokens:,} tokens, {report.tokens_per_second:,.0f} tok/s, "
        f"{report.seconds:,.0f} s), kept {len(report.existing)} already built, skipped {len(report.skipped)}; atlas: {report.out}",
        highlight=False,
    )
