"""Count one (model, language) shard: read the language's text up to the token budget and count firings on it.

The single-process build and every Ray worker run this same code on their model replica; only the driver
writes shards (``run.py``), so a worker that dies loses nothing written and a shard is written once.
"""
from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

import neuron_atlas

from ..corpus.base import Corpus
from ..corpus.script import script_mismatch
from ..modeling.ffn import find_ffns
from ..modeling.load import LoadedModel
from ..format.schema import ModelRow
from .record import Recorder, count_tokens
from ..modeling.tokens import bos_id, pad_id, token_ids

# Share of a language's letters outside its tag's script above which the text is reported as wrong-script.
WRONG_SCRIPT = 0.5


@dataclass(frozen=True)
class ShardSettings:
    """What every shard of one model is counted with (the first three are recorded in the model row)."""

    tokens_per_language: int
    seq_len: int
    batch_size: int  # 0: found from free GPU memory
    min_tokens: int


@dataclass
class ShardResult:
    """One counted shard (``fired`` set, with the v2 statistics ``mean``/``var`` of act(gate) and the ``residual``
    means) or a skipped language (``skipped`` says why), as the driver receives it."""

    model: str
    lang: str
    tokens: int
    fired: np.ndarray | None = None
    mean: np.ndarray | None = None
    var: np.ndarray | None = None
    residual: np.ndarray | None = None
    skipped: str = ""
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0  # forward passes only
    row: ModelRow | None = None  # the counting model's row: the driver checks it before writing the first shard


class ShardCounter:
    """A model replica that counts shards of ``corpus``; the batch size that fitted carries over between shards."""

    def __init__(self, slug: str, loaded: LoadedModel, corpus: Corpus, settings: ShardSettings) -> None:
        self.slug, self.loaded, self.corpus, self.settings = slug, loaded, corpus, settings
        self.ffns = find_ffns(loaded.model)
        self.recorder = Recorder(loaded.model, self.ffns)
        self.bos, self.pad = bos_id(loaded.tokenizer), pad_id(loaded.tokenizer)
        # 0: the batch that fits the free GPU memory (8 off CUDA)
        self.batch_size = settings.batch_size or self.recorder.fitting_batch_size(settings.seq_len, 8)
        self.row = model_row(slug, loaded, self.ffns, corpus, settings)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tokenize-ahead")
        self._ahead: tuple[str, Future] | None = None  # (tag, its tokens being read)

    def close(self) -> None:
        """Stop reading ahead (the reader thread ends once a read in progress is done)."""
        self._ahead = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _tokens(self, tag: str) -> tuple[list[int], str]:
        """``tag``'s token ids up to the budget, and the start of its text for the script check."""
        sample: list[str] = []
        texts = _sampled(self.corpus.texts(tag), sample)
        ids = token_ids(self.loaded.tokenizer, texts, self.settings.tokens_per_language)
        return ids, "".join(sample)[:20_000]

    def count(self, tag: str, on_batch: Callable[[int], None] | None = None,
              next_tag: str | None = None) -> ShardResult:
        """Tokenize ``tag``'s text up to the budget and count it; languages with too little text come back skipped.

        ``next_tag`` (the shard likely counted next) is read and tokenized in a thread meanwhile, so the device
        does not wait for the tokenizer between shards.
        """
        settings = self.settings
        result = ShardResult(self.slug, tag, 0, row=self.row)
        ahead, self._ahead = self._ahead, None
        ids, sample = ahead[1].result() if ahead is not None and ahead[0] == tag else self._tokens(tag)
        if next_tag is not None:
            self._ahead = (next_tag, self._pool.submit(self._tokens, next_tag))
        script = tag.split("_")[1]
        mismatch = script_mismatch(sample, script)
        if mismatch > WRONG_SCRIPT:
            result.messages.append(f"warning: {tag}: {mismatch:.0%} of the letters are not in the {script} script")
        if len(ids) < settings.min_tokens:
            result.tokens = len(ids)
            result.skipped = f"{len(ids)} tokens of text, fewer than min_tokens={settings.min_tokens}"
            return result
        started = time.perf_counter()
        counts = count_tokens(self.recorder, ids, seq_len=settings.seq_len, batch_size=self.batch_size, bos=self.bos,
                              pad=self.pad, on_batch=on_batch,
                              on_message=lambda m: result.messages.append(f"{tag}: {m}"))
        result.seconds = time.perf_counter() - started
        self.batch_size = counts.batch_size  # keep the size that fitted
        result.fired, result.tokens = counts.fired, counts.tokens
        result.mean, result.var, result.residual = counts.mean, counts.var, counts.residual
        return result


def model_row(slug: str, loaded: LoadedModel, ffns, corpus: Corpus, settings: ShardSettings) -> ModelRow:
    """The ``models`` row of ``loaded`` counted on ``corpus`` with ``settings``."""
    config = loaded.model.config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    act = next((getattr(config, a) for a in ("hidden_activation", "hidden_act", "activation_function")
                if isinstance(getattr(config, a, None), str)), type(ffns[0].act).__name__)
    return ModelRow(
        model=slug, hf_repo=loaded.source, revision=loaded.revision, architecture=type(loaded.model).__name__,
        n_layers=len(ffns), ffn_width=ffns[0].width, hidden_size=ffns[0].hidden, activation=act,
        gated=ffns[0].kind != "plain", corpus=corpus.name, corpus_version=getattr(corpus, "version", ""),
        tokens_per_language=settings.tokens_per_language, seq_len=settings.seq_len,
        dtype=str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
        builder_version=neuron_atlas.__version__, created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
    )


def _sampled(texts: Iterator[str], sample: list[str], chars: int = 20_000) -> Iterator[str]:
    """Pass ``texts`` through, keeping the first ``chars`` characters in ``sample`` for the script check."""
    seen = 0
    for text in texts:
        if seen < chars:
            sample.append(text)
            seen += len(text)
        yield text
