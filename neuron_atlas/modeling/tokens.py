"""Text to model input, the same way everywhere (the builder, evaluation, steering calibration, the studies):
tokens of running text without special tokens, sequences of at most ``seq_len`` with BOS first when the model's
tokenizer adds one, and the ids of BOS and padding."""
from __future__ import annotations

from collections.abc import Iterable

from ..errors import AtlasError


def token_ids(tokenizer, texts: Iterable[str], budget: int = 0, group: int = 64) -> list[int]:
    """The texts' tokens (no special tokens), one newline-terminated text after another, cut at ``budget`` (0: all)."""
    ids: list[int] = []
    chunk: list[str] = []

    def flush() -> bool:
        for row in tokenizer([t + "\n" for t in chunk], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
        chunk.clear()
        return bool(budget) and len(ids) >= budget

    for text in texts:
        if text.strip():
            chunk.append(text)
        if len(chunk) == group and flush():
            break
    else:
        if chunk:
            flush()
    return ids[:budget] if budget else ids


def sequences(ids: list[int], seq_len: int, bos_id: int | None) -> list[list[int]]:
    """Split a token stream into sequences of at most ``seq_len`` tokens, each starting with BOS if the model has one."""
    step = seq_len - (bos_id is not None)
    if step < 1:
        raise AtlasError(f"seq_len={seq_len} leaves no room for text after the BOS token")
    head = [bos_id] if bos_id is not None else []
    return [head + ids[i:i + step] for i in range(0, len(ids), step)]


def pad_id(tokenizer) -> int:
    """The tokenizer's padding id (else EOS, else 0); padded positions are masked, so any id works."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return value
    return 0


def bos_id(tokenizer) -> int | None:
    """The BOS token id if the tokenizer starts its encodings with it (Gemma, Llama 3), else None (GPT-2, SmolLM2)."""
    bos = tokenizer.bos_token_id
    return bos if bos is not None and tokenizer("a")["input_ids"][:1] == [bos] else None
