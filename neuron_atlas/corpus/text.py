"""A language's text in one call, for examples and evaluations: the running text a corpus holds (by default UDHR,
the text the embedded atlas was built from), and the held-out token windows after what an atlas counted, cut as the
builder and the studies cut them (BOS first where the tokenizer adds one)."""
from __future__ import annotations

from typing import Any

from ..errors import InvalidParameterError
from .registry import open_corpus


def text(lang: str, corpus: str = "udhr") -> str:
    """The whole text of ``lang`` in ``corpus``, one paragraph per line.

    Args:
        lang: the language, spelled any way the atlas takes (``"tl"``, ``"tgl_Latn"``, ``"Tagalog"``).
        corpus: a corpus spec as ``neuron-atlas build --corpus`` takes it (default ``"udhr"``: pinned, cached).

    Returns:
        str: the paragraphs joined by newlines.

    Raises:
        UnknownLanguageError: the corpus has no such language (the closest are named).
        CorpusError: the corpus cannot be opened or read.
    """
    return "\n".join(open_corpus(corpus).texts(lang))


def held_out(lang: str, tokenizer: Any, *, skip: int, seq_len: int = 128, n_windows: int | None = None,
             corpus: str = "udhr") -> list[list[int]]:
    """Token windows of ``lang``'s text that an atlas did not count: the text tokenized as the builder tokenizes it,
    the first ``skip`` tokens dropped, the rest cut into full windows of ``seq_len`` tokens.

    Args:
        lang: the language, spelled any way the atlas takes.
        tokenizer: the model's Hugging Face tokenizer.
        skip: tokens to leave out first: the atlas' ``tokens_per_language`` for the model
            (``atlas.model("gemma-3-270m").tokens_per_language``), so the windows are text the atlas never saw.
        seq_len: tokens per window, BOS included where the tokenizer adds one (default 128).
        n_windows: at most this many windows (default None: all there are).
        corpus: the corpus spec (default ``"udhr"``).

    Returns:
        list[list[int]]: the windows' token ids; empty when the text has no ``seq_len`` tokens left after ``skip``.

    Raises:
        InvalidParameterError: ``skip`` is not a whole number >= 0.
        AtlasError: ``seq_len`` leaves no room for text after BOS.
        UnknownLanguageError: the corpus has no such language.
    """
    from ..modeling.tokens import bos_id, sequences, token_ids

    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise InvalidParameterError(f"skip must be a whole number of tokens >= 0, got {skip!r}")
    ids = token_ids(tokenizer, open_corpus(corpus).texts(lang))[skip:]
    windows = [w for w in sequences(ids, seq_len, bos_id(tokenizer)) if len(w) == seq_len]
    return windows if n_windows is None else windows[:n_windows]
