"""Build (or extend) an atlas: count causal LMs' FFN neuron firings per language of a corpus, one shard each,
with the v2 statistics (act(gate) moments, residual means) of the same forward pass.

The driver here plans the (model, language) shards, has them counted (in this process, or by Ray workers:
``distributed.py``) and writes every shard atomically as soon as it arrives, so an interrupted build resumes
where it stopped; shards already in the atlas are skipped, never counted twice. The LAPE tables are derived
once at the end.
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from .._utils import arguments
from ..corpus import Corpus, open_corpus
from ..errors import AtlasError, AtlasNotFoundError, InvalidParameterError
from ..modeling.load import PACKAGES, LoadedModel, check_device, load_model, parse_dtype
from ..modeling.threads import slow_half_precision
from .._utils.progress import Bar, new_progress, quiet
from ..format.reader import read_derived, read_model
from ..format.schema import SLUG_PATTERN, ModelRow
from ..format.layout import Layout
from ..format.writer import AtlasWriter, check_target
from .config import BUILD
from .shard import ShardCounter, ShardResult, ShardSettings

# Settings that must match between the shards of one model: counts built otherwise are not comparable.
_SETTINGS = ("hf_repo", "revision", "corpus", "corpus_version", "tokens_per_language", "seq_len", "dtype")


@dataclass
class BuildReport:
    """What one build did for one model: languages counted (tag -> tokens), skipped (tag -> reason), already
    present, notes."""

    model: str
    out: Path
    built: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    existing: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0  # whole build: loading, tokenizing, counting, deriving
    counting_seconds: float = 0.0  # forward passes only, summed over workers
    threads: int | None = None  # torch's CPU threads this process counted with (None: counted on Ray workers)

    @property
    def tokens_per_second(self) -> float:
        """Counted tokens per second of counting of one model replica (BOS and padding not included)."""
        return sum(self.built.values()) / self.counting_seconds if self.counting_seconds else 0.0


@dataclass
class ModelJob:
    """One model of a build: how to load it (``source``: name or LoadedModel), its slug and its pending languages."""

    source: str | LoadedModel
    gguf_file: str | None
    report: BuildReport
    pending: list[str]
    checked: bool = False  # the model row's settings have been checked against the atlas and written

    @property
    def slug(self) -> str:
        return self.report.model


def build(model: str | LoadedModel, corpus: str | Corpus, langs: str | Sequence[str] = BUILD.langs, *, out: str | Path,
          slug: str | None = None, gguf_file: str | None = BUILD.gguf_file, **kw) -> BuildReport:
    """Count ``model``'s neurons on ``langs`` of ``corpus`` into the atlas at ``out`` and derive its LAPE tables.

    ``model`` is a packaged slug ('gemma-3-270m', 'smollm2-135m'), a Hub id, a local folder or .gguf file, or a
    LoadedModel. Other keyword arguments are those of ``build_models``.

    Args:
        model: the model to count: a packaged slug, a Hub id, a local folder or .gguf file, or a LoadedModel.
        corpus: a corpus spec ('udhr', a local file or folder of per-language text, 'hf:<dataset id>') or a
            Corpus.
        langs: 'all' (default: every language of the corpus), comma-separated tags or a list, any spelling.
        out: the atlas folder (created if missing), or a Hub dataset ``hf://datasets/org/name[@branch]``.
        slug: the model's name in the atlas (default None: the packaged slug, else the lowercased folder, file or
            repo name).
        gguf_file: a .gguf file inside ``model``'s folder or repo (default None: not a GGUF model).
        **kw: the other keywords of ``build_models`` (``tokens_per_language``, ``seq_len``, ``batch_size``,
            ``dtype``, ``device``, ``min_tokens``, ``strict``, ``ray``, ...).

    Returns:
        BuildReport: what was done for the model: languages counted (tag -> tokens), skipped (tag -> reason),
        already present, notes and timings.

    Raises:
        AtlasError: what ``build_models`` raises for its one model (its Raises: names each subclass and case).
    """
    return build_models([model], corpus, langs, out=out, slugs=[slug], gguf_file=gguf_file, **kw)[0]


def build_models(
    models: Sequence[str | LoadedModel],
    corpus: str | Corpus,
    langs: str | Sequence[str] = BUILD.langs,
    *,
    out: str | Path,
    slugs: Sequence[str | None] | None = None,
    gguf_file: str | None = BUILD.gguf_file,
    tokens_per_language: int = BUILD.tokens_per_language,
    seq_len: int = BUILD.seq_len,
    batch_size: int = BUILD.batch_size,
    dtype: str = BUILD.dtype,
    device: str = BUILD.device,
    min_tokens: int | None = BUILD.min_tokens,
    strict: bool = BUILD.strict,
    ray: str | None = BUILD.ray,
    workers: int | None = BUILD.workers,
    gpus_per_worker: int = BUILD.gpus_per_worker,
    threads: int | None = BUILD.threads,
    progress: bool = True,
    console: Console | None = None,
) -> list[BuildReport]:
    """Count each of ``models`` on ``langs`` of ``corpus`` into the atlas at ``out``; one report per model.

    Every setting's default and meaning is in ``builder.config.BuildConfig`` (the CLI's options read the same).

    Languages with fewer than ``min_tokens`` tokens (default: half the budget) are skipped, or stop the build
    when ``strict``. Shards already in the atlas are kept and not recounted. ``out`` may be a Hub dataset repo
    (``hf://datasets/org/name[@branch]``): shards are pushed in batched commits; a rerun resumes from the repo.
    ``ray`` ('auto' or a cluster address) counts the shards of all models on a pool of Ray workers (``workers``:
    how many; default one per GPU, else one per CPU), each holding one model replica on ``gpus_per_worker`` GPUs.
    ``device='auto'`` spreads a model too large for one GPU over all visible GPUs (device_map); ``batch_size=0``
    fits the free GPU memory. ``threads``: torch's CPU threads in this process (default: ``$NEURON_ATLAS_THREADS``,
    else the cores no other process is busy on, see ``modeling.threads``; Ray workers use one each).

    Args:
        models: the models to count, each a packaged slug, a Hub id, a local folder or .gguf file, or a
            LoadedModel.
        corpus: a corpus spec ('udhr', a local file or folder of per-language text, 'hf:<dataset id>') or a
            Corpus.
        langs: 'all' (default: every language of the corpus), comma-separated tags or a list, any spelling.
        out: the atlas folder (created if missing), or a Hub dataset ``hf://datasets/org/name[@branch]``.
        slugs: one name per model in the atlas, None entries derived from the model (default None: all derived).
        gguf_file: a .gguf file inside the one model's folder or repo (default None: not a GGUF model).
        tokens_per_language: token budget per language (default 2048; 0: all text).
        seq_len: tokens per sequence, BOS included (default 512).
        batch_size: sequences per forward pass (default 8; 0: fit the free GPU memory); halved on out-of-memory.
        dtype: 'float32' (default), 'bfloat16' or 'float16'.
        device: 'cpu' (default), 'cuda', 'cuda:1', 'mps', or 'auto' (spread a large model over all GPUs).
        min_tokens: languages with fewer tokens are skipped (default None: half the budget, 1 for all text).
        strict: fail instead of skipping languages with too little text (default False).
        ray: count on a Ray cluster: 'auto' or its address (default None: in this process).
        workers: with ``ray``, the model replicas (default None: one per GPU, else one per CPU).
        gpus_per_worker: with ``ray``, GPUs per replica (default 1; more: device_map over them).
        threads: torch's CPU threads in this process (default None: ``$NEURON_ATLAS_THREADS``, else the cores no
            other process is busy on).
        progress: show progress bars and notes on stderr (default True).
        console: the rich Console to print on (default None: a new one on stderr, quiet unless ``progress``).

    Returns:
        list[BuildReport]: one per model, in the order of ``models``: languages counted (tag -> tokens), skipped
        (tag -> reason), already present, notes and timings.

    Raises:
        InvalidParameterError: a setting is out of range or malformed (counts, ``device``, ``dtype``, ``ray``),
            the device is absent, no language is given, ``gguf_file`` is given for several models, a slug is not a
            plain name or two models share one, or ``out`` is a file.
        UnknownLanguageError: a language of ``langs`` is not in the corpus.
        CorpusError: the corpus cannot be opened or read (``CorpusSpecError``: no such corpus).
        AtlasNotFoundError: a model path does not exist.
        AtlasFormatError: ``out`` is a non-empty folder without ``atlas.json``, or a file of it is corrupt.
        AtlasError: the atlas holds the model counted with other settings, a language has too little text under
            ``strict``, a model cannot be loaded or named, the Ray cluster or the Hub cannot be reached, or
            another writer holds the atlas' lock.
    """
    from ..modeling.threads import torch_threads

    console = console or Console(stderr=True, quiet=not progress)
    with torch_threads(threads) as n:
        return _build_models(models, corpus, langs, out=out, slugs=slugs, gguf_file=gguf_file,
                             tokens_per_language=tokens_per_language, seq_len=seq_len, batch_size=batch_size,
                             dtype=dtype, device=device, min_tokens=min_tokens, strict=strict, ray=ray,
                             workers=workers, gpus_per_worker=gpus_per_worker, progress=progress, console=console,
                             threads=n)


def _build_models(models, corpus, langs, *, out, slugs, gguf_file, tokens_per_language, seq_len, batch_size, dtype,
                  device, min_tokens, strict, ray, workers, gpus_per_worker, progress, console,
                  threads) -> list[BuildReport]:
    """``build_models`` with torch's ``threads`` set."""
    started = time.perf_counter()
    _check_counts(tokens_per_language, seq_len, batch_size, min_tokens, workers, gpus_per_worker)
    if ray is None:
        check_device(device)
    else:  # the model runs on the cluster's workers, whose devices the driver cannot see
        arguments.name(device, "device", "'cpu', 'cuda' or 'auto'")
        from .ray_address import parse

        parse(arguments.name(ray, "ray", "'auto' or a cluster address like '10.0.0.5:6379'"))
    corpus = open_corpus(corpus) if isinstance(corpus, (str, Path)) else corpus
    tags = _languages(corpus, langs)
    if gguf_file is not None and len(models) != 1:
        raise InvalidParameterError("gguf_file names a file of one model; build GGUF models one at a time")
    if slugs is not None and len(slugs) != len(models):
        raise InvalidParameterError(f"slugs names {len(slugs)} model(s) for {len(models)} models; give one slug (or "
                                    "None) per model")
    parse_dtype(dtype)  # a bad dtype fails before anything is loaded or written
    if str(device).startswith("cpu") and slow_half_precision(dtype):
        console.print(f"warning: this CPU has no {dtype} matrix instructions, so {dtype} runs emulated, several times "
                      "slower than float32; pass --dtype float32 for a CPU build", style="yellow", markup=False,
                      highlight=False)
    min_tokens = (tokens_per_language // 2 if tokens_per_language else 1) if min_tokens is None else min_tokens
    settings = ShardSettings(tokens_per_language, seq_len, batch_size, min_tokens)
    hub = None
    if str(out).startswith("hf://"):
        from .hub_output import HubOutput

        hub = HubOutput(str(out))
        out = hub.root
    check_target(out)  # before loading anything: nothing is written for a build that cannot run
    layout = Layout(str(out))
    jobs = []
    for model, slug in zip(models, slugs or [None] * len(models), strict=True):
        slug = _slug(model, gguf_file) if slug is None else _checked_slug(slug)
        _check_source(model, gguf_file)
        report = BuildReport(slug, Path(out), existing=[t for t in tags if layout.exists(layout.file("counts", model=slug, lang=t))],
                             threads=threads if ray is None else None)
        job = ModelJob(model, gguf_file, report, [t for t in tags if t not in report.existing])
        if report.existing and not quiet():
            console.print(f"{slug}: {len(report.existing)} of {len(tags)} languages already in {out}; "
                          f"counting the other {len(job.pending)}")
        _check_settings(layout, slug, _requested(model, corpus, settings, dtype), nothing=not job.pending,
                        existing=len(report.existing))  # before loading anything
        if not job.pending:
            _note(report, console, f"nothing to count: all {len(report.existing)} languages of {slug} are already "
                                   f"in {layout.root}")
        jobs.append(job)
    if len({j.slug for j in jobs}) != len(jobs):
        raise InvalidParameterError(f"two models of one build have the same slug ({[j.slug for j in jobs]}); pass distinct slugs")
    if progress and not quiet() and ray is None:  # the arguments are sound: say how this process will count
        console.print(f"computing with {threads} CPU thread{'s' * (threads > 1)}", style="dim", highlight=False)

    pending = [j for j in jobs if j.pending]
    writer = AtlasWriter(out) if layout.exists(layout.manifest) else None  # created once there is work to write
    with new_progress(console, progress) as bars:
        shards = Bar(bars, "shards", sum(len(j.pending) for j in pending), "shard")
        tokens = Bar(bars, "tokens", sum(len(j.pending) for j in pending) * tokens_per_language or None, "tok")
        by_slug = {j.slug: j for j in jobs}

        def accept(result: ShardResult, *, advance_tokens: bool) -> None:
            _accept(writer, by_slug[result.model], result, strict=strict, console=console)
            if hub is not None:
                hub.sync()
            shards.advance()
            shards.describe(f"{result.model} {result.lang}")
            if advance_tokens:
                tokens.advance(result.tokens)
            own = f"{result.tokens / result.seconds:,.0f} tok/s" if result.seconds else "skipped"
            tokens.log(f"{result.model} {result.lang}: {result.tokens} tokens at {own}; "  # logs: a line per shard
                       f"{bars.tasks[shards.task].completed:.0f}/{bars.tasks[shards.task].total:.0f} shards")

        if ray is None:
            for job in pending:
                loaded = job.source if isinstance(job.source, LoadedModel) else load_model(
                    job.source, job.gguf_file, dtype, device)
                counter = ShardCounter(job.slug, loaded, corpus, settings)
                try:
                    if strict:  # every language long enough, before anything is counted
                        short = [t for t in job.pending if len(counter._tokens(t)[0]) < min_tokens]
                        if short:
                            raise AtlasError(
                                f"{len(short)} languages have fewer than {min_tokens} tokens of text: "
                                f"{', '.join(short)}; drop --strict to skip them, or lower --min-tokens")
                    writer = writer or AtlasWriter(out)
                    _check_model(writer, job, counter.row)  # before counting anything
                    tokens.mark()  # loading the model was not counting
                    for tag, after in zip(job.pending, [*job.pending[1:], None]):
                        result = counter.count(tag, on_batch=tokens.advance, next_tag=after)
                        accept(result, advance_tokens=False)
                finally:
                    counter.close()
        elif pending:
            from .distributed import count_on_ray

            writer = writer or AtlasWriter(out)
            count_on_ray([(j.slug, t) for j in pending for t in j.pending],
                         {j.slug: (j.source, j.gguf_file) for j in pending}, corpus, settings, dtype=dtype,
                         device=device, address=ray, workers=workers, gpus_per_worker=gpus_per_worker,
                         accept=lambda r: accept(r, advance_tokens=True),
                         note=lambda slug, m: _note(by_slug[slug].report, console, m))
    for job in jobs if writer is not None else []:
        _finish(writer, job, min_tokens, console, started)
    if hub is not None:
        hub.sync(final=True)
    return [j.report for j in jobs]


def _check_counts(tokens_per_language: int, seq_len: int, batch_size: int, min_tokens: int | None,
                  workers: int | None, gpus_per_worker: int) -> None:
    """Whole numbers in range (an int64 overflow or a negative count fails here, before anything is loaded)."""
    limit = f"at most {arguments.MAX_COUNT:,}"
    arguments.integer(tokens_per_language, "tokens_per_language", 0,
                      expected=f"a token budget per language, tokens_per_language >= 0 (0: all text), {limit}")
    arguments.integer(seq_len, "seq_len", 2, expected=f"a number of tokens per sequence, seq_len >= 2, {limit}")
    arguments.integer(batch_size, "batch_size", 0,
                      expected=f"a number of sequences, batch_size >= 0 (0: fit the free GPU memory), {limit}")
    if min_tokens is not None:
        arguments.integer(min_tokens, "min_tokens", 0, expected=f"a number of tokens >= 0, {limit}")
    if workers is not None:
        arguments.integer(workers, "workers", 1, expected="a number of Ray workers >= 1 (default: one per GPU, else per CPU)")
    arguments.integer(gpus_per_worker, "gpus_per_worker", 1, 1024, expected="a number of GPUs per worker from 1 to 1024")


def _accept(writer: AtlasWriter, job: ModelJob, result: ShardResult, *, strict: bool, console: Console) -> None:
    """Take one shard from a counter: write it (once, atomically) or record why its language was skipped."""
    report = job.report
    for message in result.messages:
        _note(report, console, message)
    if result.skipped:
        if strict:
            raise AtlasError(f"{result.lang} has {result.skipped}; drop --strict to skip such languages, or lower "
                             "--min-tokens (shards already counted are kept)")
        report.skipped[result.lang] = result.skipped
        return
    if result.lang in report.built:
        return  # a shard is written once, even if a retried worker delivered it twice
    _check_model(writer, job, result.row)
    moments = (result.mean, result.var) if result.mean is not None else None
    writer.add_counts(job.slug, result.lang, result.fired, result.tokens, moments=moments, residual=result.residual)
    report.built[result.lang] = result.tokens
    report.counting_seconds += result.seconds


def _check_model(writer: AtlasWriter, job: ModelJob, row: ModelRow) -> None:
    """Before the model's first shard: refuse other settings than the atlas', then record the model row."""
    if not job.checked:
        _check_settings(writer.layout, job.slug, {k: getattr(row, k) for k in _SETTINGS})
        writer.add_model(row)
        job.checked = True


def _finish(writer: AtlasWriter, job: ModelJob, min_tokens: int, console: Console, started: float) -> None:
    """Summarise the skipped languages and derive the model's LAPE tables from all its shards."""
    report = job.report
    if report.skipped:
        listing = ", ".join(f"{t} ({r.split(' ', 1)[0]})" for t, r in report.skipped.items())
        _note(report, console, f"skipped {len(report.skipped)} languages with fewer than {min_tokens} tokens: {listing}")
    tags = writer.layout.count_langs(job.slug)
    derived = read_derived(writer.layout, job.slug) if tags else None
    if tags and (derived is None or derived.languages != tags):  # new shards, or derivation interrupted
        writer.finalize(job.slug)
    report.seconds = time.perf_counter() - started


def _note(report: BuildReport, console: Console, message: str) -> None:
    report.messages.append(message)
    console.print(message, style="yellow", markup=False, highlight=False)


def _languages(corpus: Corpus, langs: str | Sequence[str]) -> list[str]:
    available = corpus.languages()
    if isinstance(langs, str):
        if langs.strip().lower() == "all":
            return list(available)
        langs = [s for s in langs.split(",")]
    tags = [corpus.resolve(s.strip()) for s in langs if s.strip()]
    if not tags:
        raise InvalidParameterError(f"no languages given; use 'all' or a comma-separated list of tags from the corpus "
                                    f"'{corpus.name}'")
    return list(dict.fromkeys(tags))


def _slug(model: str | LoadedModel, gguf_file: str | None) -> str:
    name = model.source if isinstance(model, LoadedModel) else model
    if name in PACKAGES:
        return name
    base = Path(gguf_file).stem if gguf_file else Path(str(name).rstrip("/")).name
    if base.endswith(".gguf"):
        base = base[:-5]
    slug = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")
    if not slug:
        raise AtlasError(f"cannot derive a model slug from {name!r}; pass --slug")
    return slug


def _requested(model: str | LoadedModel, corpus: Corpus, settings: ShardSettings, dtype: str) -> dict:
    """The settings of a build known before loading its model (all of ``_SETTINGS`` but the weights' provenance)."""
    torch_dtype = next(model.model.parameters()).dtype if isinstance(model, LoadedModel) else parse_dtype(dtype)
    return {"corpus": corpus.name, "corpus_version": getattr(corpus, "version", ""),
            "tokens_per_language": settings.tokens_per_language, "seq_len": settings.seq_len,
            "dtype": str(torch_dtype).removeprefix("torch.")}


def _check_settings(layout: Layout, slug: str, settings: dict, *, nothing: bool = False, existing: int = 0) -> None:
    """Refuse to add shards counted with other ``settings`` than the model's existing ones (or, with ``nothing``
    left to count, say that this build asked for other settings than the atlas holds)."""
    if not layout.exists(layout.file("models", model=slug)) or not layout.count_langs(slug):
        return
    old = read_model(layout, slug)
    listing = "; ".join(f"{k}: atlas has {getattr(old, k)!r}, this build {v!r}" for k, v in settings.items()
                        if getattr(old, k) != v)
    if listing and nothing:
        raise AtlasError(f"nothing to do: all {existing} languages of {slug!r} are already in {layout.root}, counted "
                         f"with other settings ({listing}); to count with these settings, pass another --slug or --out")
    if listing:
        raise AtlasError(f"model {slug!r} in {layout.root} was counted with other settings ({listing}); "
                         "rerun with the atlas' settings to extend it, or pass another --slug")


def _checked_slug(slug: str) -> str:
    """A --slug names folders inside --out, so it must be a plain name (never '../x')."""
    if not re.match(SLUG_PATTERN, slug):
        raise InvalidParameterError(f"slug {slug!r} is not a model name: use lowercase letters, digits, '.', '_' and "
                                    "'-', starting with a letter or digit (e.g. my-model-1b); it names folders inside "
                                    "--out")
    return slug


def _check_source(model: str | LoadedModel, gguf_file: str | None) -> None:
    """A model that is neither packaged, nor an existing path, nor shaped like a Hub id ('org/name') is a missing path."""
    if isinstance(model, LoadedModel) or model in PACKAGES or Path(model).exists():
        return
    if model.endswith(".gguf") or model.startswith((".", "/", "~")) or not re.match(r"^[\w.-]+(/[\w.-]+)?$", model):
        raise AtlasNotFoundError(f"model path {model} does not exist (give a packaged slug {sorted(PACKAGES)}, a Hugging "
                                 "Face id like org/name, or an existing folder or .gguf file)")
