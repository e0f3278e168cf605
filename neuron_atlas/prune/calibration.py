"""Calibration samples for pruning: few-shot translation prompts built from parallel text, and monolingual text.

Follows Kim et al. (2024), ``src/data/load_data.py`` of hwichan0720/pruning_for_multilinguality: a sample is
``shots`` pairs ``"{Src}: {source sentence}{sep}{Tgt}: {target sentence}{sep}"`` joined, where the authors use the
tokenizer's EOS token as ``sep`` (the default here; ``sep="\\n"`` gives the newline variant); a monolingual sample
is ``shots`` lines ``"{Lang}: {sentence}{sep}"``. Samples are truncated to ``max_length`` tokens. The authors read
100 samples from FLORES dev (997 sentences); UDHR has fewer paragraphs per language, so pairs are drawn from a seeded
permutation that is reshuffled whenever it runs out (a pair repeats only across samples, never within one).
"""
from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InvalidParameterError
from ..languages.tags import parse, parse_code, parse_pair

EOS = "eos"  # ``sep`` value meaning "the tokenizer's EOS token", the authors' choice


def prompt_name(tag: str) -> str:
    """The English name written in prompts ('Swahili', not 'Swahili (individual language)')."""
    return parse(tag).name.split(" (")[0]


@dataclass
class CalibrationSet:
    """Tokenized calibration samples; ``batches`` pads them with attention masks (padding is never counted)."""

    sequences: list[list[int]]
    pad_id: int
    kind: str  # "translation", "monolingual" or a caller's label
    texts: list[str] = field(default_factory=list)
    padding_side: str = "right"

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def tokens(self) -> int:
        """Real (non-padding) tokens over all samples."""
        return sum(len(s) for s in self.sequences)

    def batches(self, batch_size: int = 4) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(input_ids [B, T], attention_mask [B, T]) padded to the longest sample of each batch."""
        if batch_size < 1:
            raise InvalidParameterError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self.sequences), batch_size):
            chunk = self.sequences[start:start + batch_size]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                cols = slice(0, len(seq)) if self.padding_side == "right" else slice(width - len(seq), width)
                ids[row, cols] = torch.tensor(seq, dtype=torch.long)
                mask[row, cols] = 1
            yield ids, mask


def _groups(n_items: int, shots: int, count: int, rng: random.Random) -> Iterator[list[int]]:
    """``count`` groups of ``shots`` distinct indices drawn from seeded permutations of range(n_items), reshuffled
    when one runs out (an index repeats only across groups, never within one)."""
    order: list[int] = []
    for _ in range(count):
        group: list[int] = []
        while len(group) < shots:
            if not order:
                order = list(range(n_items))
                rng.shuffle(order)
                order = [i for i in order if i in group] + [i for i in order if i not in group]  # pop() takes the end
            group.append(order.pop())
        yield group


def _separator(sep: str, tokenizer: Any | None) -> str:
    if sep != EOS:
        return sep
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise InvalidParameterError("sep='eos' needs a tokenizer with an eos_token; pass sep='\\n' instead")
    return eos


def translation_prompts(src_texts: Sequence[str], tgt_texts: Sequence[str], src: str, tgt: str, *,
                        nsamples: int = 100, shots: int = 4, sep: str = "\n", seed: int = 0) -> list[str]:
    """``nsamples`` few-shot translation prompts of ``shots`` aligned (source, target) pairs each."""
    if len(src_texts) != len(tgt_texts):
        raise InvalidParameterError(
            f"parallel texts must align one to one: {len(src_texts)} {src} vs {len(tgt_texts)} {tgt} segments"
        )
    if len(src_texts) < shots:
        raise InvalidParameterError(f"{shots} shots need at least {shots} parallel segments, got {len(src_texts)}")
    src_name, tgt_name = prompt_name(src), prompt_name(tgt)
    rng = random.Random(seed)
    return ["".join(f"{src_name}: {src_texts[i]}{sep}{tgt_name}: {tgt_texts[i]}{sep}" for i in group)
            for group in _groups(len(src_texts), shots, nsamples, rng)]


def monolingual_prompts(texts: Sequence[str], lang: str, *, nsamples: int = 100, shots: int = 4,
                        sep: str = "\n", seed: int = 0) -> list[str]:
    """``nsamples`` samples of ``shots`` lines ``"{Lang}: {sentence}"`` (the authors' monolingual calibration)."""
    if len(texts) < shots:
        raise InvalidParameterError(f"{shots} shots need at least {shots} segments of {lang}, got {len(texts)}")
    name = prompt_name(lang)
    return ["".join(f"{name}: {texts[i]}{sep}" for i in group)
            for group in _groups(len(texts), shots, nsamples, random.Random(seed))]


def tokenize(tokenizer: Any, prompts: Sequence[str], *, max_length: int = 512, kind: str = "translation") -> CalibrationSet:
    """Tokenize prompts (with the tokenizer's special tokens), truncated to ``max_length`` tokens each."""
    enc = tokenizer(list(prompts), truncation=True, max_length=max_length)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    return CalibrationSet([list(ids) for ids in enc["input_ids"]], int(pad_id), kind, list(prompts),
                          getattr(tokenizer, "padding_side", "right") or "right")


HEADING_CHARS = 25  # aligned paragraphs both shorter than this are headings ("Article 2" / "Kifungu cha 2.")


def parallel_texts(corpus: Any, src: str, tgt: str) -> tuple[list[str], list[str]]:
    """Aligned segments of two languages from ``corpus`` (a name for ``open_corpus``, an object with ``.texts(lang)``,
    or a mapping lang -> list of segments).

    Sections (UDHR: title, preamble, articles) align one to one, so both languages must have the same number. Within
    a section, paragraph i translates paragraph i when both have the same paragraph count; otherwise the whole
    section is one pair. Pairs of headings (both sides shorter than HEADING_CHARS characters) are dropped.
    """
    a, b = _texts(corpus, src), _texts(corpus, tgt)
    if len(a) != len(b):
        raise InvalidParameterError(
            f"{src} has {len(a)} sections and {tgt} has {len(b)}; alignment needs equal counts. "
            "Pass an aligned mapping {lang: [segments]} as corpus, or choose another pair."
        )
    pairs: list[tuple[str, str]] = []
    for x, y in zip(a, b):
        px, py = x.split("\n"), y.split("\n")
        pairs += zip(px, py) if len(px) == len(py) else [(" ".join(px), " ".join(py))]
    pairs = [(x.strip(), y.strip()) for x, y in pairs if max(len(x.strip()), len(y.strip())) >= HEADING_CHARS]
    return [x for x, _ in pairs], [y for _, y in pairs]


def open_source(corpus: Any) -> Any:
    """A corpus name ('udhr', a path, 'hf:...') opened once with ``open_corpus``; objects and mappings pass through."""
    if isinstance(corpus, str):
        from ..corpus import open_corpus

        return open_corpus(corpus)
    return corpus


def _texts(corpus: Any, lang: str) -> list[str]:
    corpus = open_source(corpus)
    if isinstance(corpus, Mapping):
        for key in (lang, parse(lang).tag, parse_code(lang).tag):  # a mapping keyed swa_Latn still answers sw
            if key in corpus:
                return [t.strip() for t in corpus[key] if t.strip()]
        raise InvalidParameterError(f"no text for {lang!r} in the calibration mapping; it has {sorted(corpus)}")
    return [t.strip() for t in corpus.texts(lang) if t.strip()]


def translation_set(tokenizer: Any, corpus: Any, pairs: Sequence[str | Sequence[str]], *, nsamples: int = 100,
                    shots: int = 4, max_length: int = 512, sep: str = EOS, seed: int = 0) -> CalibrationSet:
    """Translation-prompt calibration set over ``pairs`` (e.g. [("sw", "en")]); ``nsamples`` in total, split evenly."""
    corpus, prompts = open_source(corpus), []
    for k, (src, tgt) in enumerate(parse_pair(p) for p in pairs):
        a, b = parallel_texts(corpus, src, tgt)
        share = nsamples // len(pairs) + (k < nsamples % len(pairs))
        prompts += translation_prompts(a, b, src, tgt, nsamples=share, shots=shots,
                                       sep=_separator(sep, tokenizer), seed=seed + k)
    return tokenize(tokenizer, prompts, max_length=max_length, kind="translation")


def monolingual_set(tokenizer: Any, corpus: Any, langs: Sequence[str], *, nsamples: int = 100, shots: int = 4,
                    max_length: int = 512, sep: str = EOS, seed: int = 0) -> CalibrationSet:
    """Monolingual calibration set (plain Wanda's data, in ``langs``); ``nsamples`` in total, split evenly."""
    corpus, prompts = open_source(corpus), []
    for k, lang in enumerate(langs):
        share = nsamples // len(langs) + (k < nsamples % len(langs))
        segments = [p.strip() for section in _texts(corpus, lang) for p in section.split("\n")]
        prompts += monolingual_prompts([p for p in segments if len(p) >= HEADING_CHARS], lang, nsamples=share, shots=shots,
                                       sep=_separator(sep, tokenizer), seed=seed + k)
    return tokenize(tokenizer, prompts, max_length=max_length, kind="monolingual")
