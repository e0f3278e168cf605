"""Build (or extend) an atlas: count a causal LM's FFN neuron firings per language of a corpus, one shard each.

Every (model, language) shard is written atomically as soon as it is counted, so an interrupted build
resumes where it stopped; shards already in the atlas are skipped, never counted twice.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

import neuron_atlas

from ..corpus import Corpus, open_corpus
from ..corpus.script import script_mismatch
from ..errors import AtlasError
from ..modeling.ffn import find_ffns
from ..modeling.load import PACKAGES, LoadedModel, load_causal_lm, load_packaged
from ..schema import ModelRow
from ..writer import AtlasWriter
from .record import Recorder, bos_id, count_tokens, pad_id, token_ids

# Settings that must match between the shards of one model: counts built otherwise are not comparable.
_SETTINGS = ("hf_repo", "revision", "corpus", "corpus_version", "tokens_per_language", "seq_len", "dtype")
# Share of a language's letters outside its tag's script above which the text is reported as wrong-script.
WRONG_SCRIPT = 0.5


@dataclass
class BuildReport:
    """What one build did: languages counted (tag -> tokens), skipped (tag -> reason), already present, notes."""

    model: str
    out: Path
    built: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    existing: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0  # whole build: loading, tokenizing, counting, deriving
    counting_seconds: float = 0.0  # forward passes only

    @property
    def tokens_per_second(self) -> float:
        """Counted tokens per second of counting (BOS and padding not included)."""
        return sum(self.built.values()) / self.counting_seconds if self.counting_seconds else 0.0


class _TokensPerSecond(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:,.0f} tok/s" if task.speed else "? tok/s", style="progress.data.speed")


def build(
    model: str | LoadedModel,
    corpus: str | Corpus,
    langs: str | Sequence[str] = "all",
    *,
    out: str | Path,
    slug: str | None = None,
    gguf_file: str | None = None,
    tokens_per_language: int = 2048,
    seq_len: int = 512,
    batch_size: int = 8,
    dtype: str = "float32",
    device: str = "cpu",
    min_tokens: int | None = None,
    strict: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> BuildReport:
    """Count ``model``'s neurons on ``langs`` of ``corpus`` into the atlas at ``out`` and derive its LAPE tables.

    ``model`` is a packaged slug ('gemma-3-270m', 'smollm2-135m'), a Hub id, a local folder or .gguf file, or a
    LoadedModel. Languages with fewer than ``min_tokens`` tokens (default: half the budget) are skipped, or
    fail the build when ``strict``. Shards already in the atlas are kept and not recounted.
    """
    console = console or Console(stderr=True, quiet=not progress)
    started = time.perf_counter()
    corpus = open_corpus(corpus) if isinstance(corpus, (str, Path)) else corpus
    tags = _languages(corpus, langs)
    if tokens_per_language < 0 or seq_len < 2 or batch_size < 1:
        raise AtlasError(f"need tokens_per_language >= 0 (0: all text), seq_len >= 2, batch_size >= 1; got "
                         f"{tokens_per_language}, {seq_len}, {batch_size}")
    min_tokens = (tokens_per_language // 2 if tokens_per_language else 1) if min_tokens is None else min_tokens
    slug = slug or _slug(model, gguf_file)
    writer = AtlasWriter(out)
    report = BuildReport(slug, Path(out))
    report.existing = [t for t in tags if writer.has_counts(slug, t)]
    pending = [t for t in tags if t not in report.existing]
    if report.existing:
        console.print(f"{slug}: {len(report.existing)} of {len(tags)} languages already in {out}; counting the other {len(pending)}")
    if not pending:
        _finalize(writer, slug, report, started)
        return report

    loaded = model if isinstance(model, LoadedModel) else _load(model, gguf_file, dtype, device)
    ffns = find_ffns(loaded.model)
    row = _model_row(slug, loaded, ffns, corpus, tokens_per_language, seq_len)
    _check_settings(writer, row)
    tokenizer = loaded.tokenizer

    texts = {}  # tag -> token ids, tokenized up front so short languages are known before any counting
    for tag in pending:
        sample: list[str] = []
        ids = token_ids(tokenizer, _sampled(corpus.texts(tag), sample), tokens_per_language)
        mismatch = script_mismatch("".join(sample)[:20_000], tag.split("_")[1])
        if mismatch > WRONG_SCRIPT:
            _note(report, console, f"warning: {tag}: {mismatch:.0%} of the letters are not in the {tag.split('_')[1]} script")
        if len(ids) < min_tokens:
            report.skipped[tag] = f"{len(ids)} tokens of text, fewer than min_tokens={min_tokens}"
        else:
            texts[tag] = ids
    if report.skipped:
        listing = ", ".join(f"{t} ({r.split(' ', 1)[0]})" for t, r in report.skipped.items())
        if strict:
            raise AtlasError(f"{len(report.skipped)} languages have fewer than {min_tokens} tokens of text: {listing}; "
                             "drop --strict to skip them, or lower --min-tokens")
        _note(report, console, f"skipping {len(report.skipped)} languages with fewer than {min_tokens} tokens: {listing}")

    writer.add_model(row)
    recorder = Recorder(loaded.model, ffns)
    bos, pad = bos_id(tokenizer), pad_id(tokenizer)
    with _progress(console, progress) as bars:
        lang_bar = bars.add_task(f"{slug} languages", total=len(texts))
        token_bar = bars.add_task("tokens", total=sum(len(ids) for ids in texts.values()))
        for tag, ids in texts.items():
            bars.update(lang_bar, description=f"{slug} {tag}")
            counting = time.perf_counter()
            counts = count_tokens(
                recorder, ids, seq_len=seq_len, batch_size=batch_size, bos=bos, pad=pad,
                on_batch=lambda n: bars.advance(token_bar, n), on_message=lambda m: _note(report, console, f"{tag}: {m}"),
            )
            report.counting_seconds += time.perf_counter() - counting
            batch_size = counts.batch_size  # keep the size that fitted
            writer.add_counts(slug, tag, counts.fired, counts.tokens)
            report.built[tag] = counts.tokens
            bars.advance(lang_bar)
            if not console.is_terminal:  # logs get a line per language instead of live bars
                console.print(f"{slug} {tag}: {counts.tokens} tokens, {len(report.built)}/{len(texts)} languages, "
                              f"{report.tokens_per_second:,.0f} tok/s", highlight=False)
    _finalize(writer, slug, report, started)
    return report


def _finalize(writer: AtlasWriter, slug: str, report: BuildReport, started: float) -> None:
    if writer.layout.count_langs(slug):
        writer.finalize(slug)
    report.seconds = time.perf_counter() - started


def _note(report: BuildReport, console: Console, message: str) -> None:
    report.messages.append(message)
    console.print(message, style="yellow", markup=False, highlight=False)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        _TokensPerSecond(), TimeRemainingColumn(), console=console, disable=not enabled,
    )


def _sampled(texts: Iterator[str], sample: list[str], chars: int = 20_000) -> Iterator[str]:
    """Pass ``texts`` through, keeping the first ``chars`` characters in ``sample`` for the script check."""
    seen = 0
    for text in texts:
        if seen < chars:
            sample.append(text)
            seen += len(text)
        yield text


def _languages(corpus: Corpus, langs: str | Sequence[str]) -> list[str]:
    available = corpus.languages()
    if isinstance(langs, str):
        if langs.strip().lower() == "all":
            return list(available)
        langs = [s for s in langs.split(",")]
    tags = [corpus.resolve(s.strip()) for s in langs if s.strip()]
    if not tags:
        raise AtlasError(f"no languages given; use 'all' or a comma-separated list of tags from the corpus '{corpus.name}'")
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


def _load(model: str, gguf_file: str | None, dtype: str, device: str) -> LoadedModel:
    if model in PACKAGES and not Path(model).exists() and gguf_file is None:
        return load_packaged(model, dtype=dtype, device=device)
    return load_causal_lm(model, gguf_file=gguf_file, dtype=dtype, device=device)


def _model_row(slug: str, loaded: LoadedModel, ffns, corpus: Corpus, tokens: int, seq_len: int) -> ModelRow:
    config = loaded.model.config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    act = next((getattr(config, a) for a in ("hidden_activation", "hidden_act", "activation_function")
                if isinstance(getattr(config, a, None), str)), type(ffns[0].act).__name__)
    return ModelRow(
        model=slug, hf_repo=loaded.source, revision=loaded.revision, architecture=type(loaded.model).__name__,
        n_layers=len(ffns), ffn_width=ffns[0].width, hidden_size=ffns[0].hidden, activation=act,
        gated=ffns[0].kind != "plain", corpus=corpus.name, corpus_version=getattr(corpus, "version", ""),
        tokens_per_language=tokens, seq_len=seq_len, dtype=str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
        builder_version=neuron_atlas.__version__, created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    )


def _check_settings(writer: AtlasWriter, row: ModelRow) -> None:
    """Refuse to add shards counted with other settings than the model's existing ones."""
    if not writer.layout.exists(writer.layout.model(row.model)) or not writer.layout.count_langs(row.model):
        return
    old = writer.model(row.model)
    diff = {k: (getattr(old, k), getattr(row, k)) for k in _SETTINGS if getattr(old, k) != getattr(row, k)}
    if diff:
        listing = "; ".join(f"{k}: atlas has {a!r}, this build {b!r}" for k, (a, b) in diff.items())
        raise AtlasError(f"model {row.model!r} in {writer.layout.root} was counted with other settings ({listing}); "
                         "rerun with the atlas' settings to extend it, or pass another --slug")
