"""Per-language perplexity on held-out text, and Tang et al.'s deactivation matrix with its heatmap.

Text is cut into windows of ``seq_len`` tokens as the builder cuts them (BOS first when the model expects one) and
perplexity is exp of the mean next-token negative log-likelihood over every predicted token. The
deactivation matrix switches off language A's neurons and measures the perplexity of every language B.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from ..modeling.tokens import bos_id, sequences
from ..errors import InvalidParameterError, UnknownLanguageError
from .hooks import deactivate
from ..masks import FFNShape, NeuronMask, neuron_masks
from ..modeling.ffn import find_ffns
from .._utils.files import write_output
from .._utils.progress import bar
from ..modeling.threads import COMPUTE, torch_threads

Text = str | Sequence[int] | np.ndarray | torch.Tensor


def token_windows(data: Text, tokenizer: Any = None, seq_len: int = 256, max_tokens: int | None = None) -> list[list[int]]:
    """Token windows of at most ``seq_len`` over the first ``max_tokens`` text tokens (all if None), cut as the
    builder cuts them: BOS + ``seq_len``-1 text tokens when the tokenizer starts its encodings with BOS (Gemma),
    ``seq_len`` text tokens when it does not (SmolLM2, GPT-2) or when token ids are given."""
    if seq_len < 2:
        raise InvalidParameterError(f"seq_len must be at least 2 tokens, got {seq_len}")
    if isinstance(data, str):
        if tokenizer is None:
            raise InvalidParameterError("text given without a tokenizer; pass tokenizer= or token ids")
        ids = tokenizer(data, add_special_tokens=False)["input_ids"]
        bos = bos_id(tokenizer)
    else:
        ids = [int(t) for t in (data.tolist() if hasattr(data, "tolist") else data)]
        bos = None
    ids = ids[:max_tokens] if max_tokens is not None else ids
    return [w for w in sequences(ids, seq_len, bos) if len(w) >= 2]


@torch.no_grad()
def nll(model: nn.Module, windows: Sequence[Sequence[int]], batch_size: int = 2,
        on_batch: Callable[[int], None] | None = None) -> tuple[float, int]:
    """Sum of next-token negative log-likelihoods (nats) over ``windows`` and the number of predicted tokens;
    ``on_batch(tokens)`` after each batch (progress)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size]
        length = max(len(w) for w in batch)
        ids = torch.zeros(len(batch), length, dtype=torch.long)
        attn = torch.zeros(len(batch), length, dtype=torch.long)
        for row, w in enumerate(batch):
            ids[row, :len(w)] = torch.tensor(w)
            attn[row, :len(w)] = 1
        ids, attn = ids.to(device), attn.to(device)
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        target = ids[:, 1:].masked_fill(attn[:, 1:] == 0, -100)
        total += F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="sum").item()
        count += int(attn[:, 1:].sum())
        if on_batch is not None:
            on_batch(int(attn[:, 1:].sum()))
    return total, count


def _predicted(windows: Sequence[Sequence[int]]) -> int:
    """Tokens ``nll`` predicts over ``windows`` (the unit of the evaluation bars)."""
    return sum(len(w) - 1 for w in windows)


def perplexity(model: nn.Module, data: Text, tokenizer: Any = None, *, seq_len: int = 256, batch_size: int = 2,
               max_tokens: int | None = None, progress: bool = True, threads: int | None = COMPUTE.threads) -> float:
    """Perplexity of ``model`` on ``data`` (text with a tokenizer, or token ids), its first ``max_tokens`` tokens;
    ``threads`` as in ``perplexities``."""
    return perplexities(model, {"text": data}, tokenizer, seq_len=seq_len, batch_size=batch_size,
                        max_tokens=max_tokens, progress=progress, threads=threads)["text"]


def perplexities(model: nn.Module, texts: Mapping[str, Text], tokenizer: Any = None, *, seq_len: int = 256,
                 batch_size: int = 2, max_tokens: int | None = None, progress: bool = True,
                 threads: int | None = COMPUTE.threads) -> dict[str, float]:
    """Perplexity per language of ``texts`` ({lang: held-out text or ids}), with a bar over all their tokens.

    ``threads``: torch's CPU threads for the forward passes (default: the policy of ``modeling.threads``:
    ``$NEURON_ATLAS_THREADS``, else the idle cores); torch's own setting is restored after."""
    windows = {lang: token_windows(t, tokenizer, seq_len, max_tokens) for lang, t in texts.items()}
    empty = [lang for lang, w in windows.items() if not w]
    if empty:
        raise InvalidParameterError("no tokens to evaluate: the text is empty" + (f" ({', '.join(empty)})" if len(windows) > 1 else ""))
    out = {}
    with torch_threads(threads), bar("perplexity", sum(map(_predicted, windows.values())), "tok", enabled=progress) as b:
        for lang, w in windows.items():
            b.describe(f"perplexity {lang}")
            total, count = nll(model, w, batch_size, b.advance)
            out[lang] = math.exp(total / count)
            b.log(f"perplexity {lang}")
    return out


@dataclass
class DeactivationMatrix:
    """Perplexity of each evaluated language B with each language A's neurons switched off (Tang et al. 2024)."""

    deactivated: list[str]  # rows, A
    evaluated: list[str]  # columns, B
    base: np.ndarray  # [B] perplexity with nothing switched off
    ppl: np.ndarray  # [A, B]
    sizes: np.ndarray  # [A] neurons switched off
    threads: int | None = None  # torch's CPU threads the perplexities were computed with

    @property
    def delta(self) -> np.ndarray:
        """Perplexity change ppl(B | A off) - ppl(B), the quantity Tang et al. plot."""
        return self.ppl - self.base[None, :]

    @property
    def relative(self) -> np.ndarray:
        """Relative change ppl(B | A off) / ppl(B) - 1: comparable across languages of different base perplexity."""
        return self.ppl / self.base[None, :] - 1

    def diagonal_dominant(self, by: Literal["row", "column"] = "row") -> list[str]:
        """Languages whose diagonal cell is the largest relative increase of its row (switching A off hurts A
        more than any other language) or of its column (B is hurt most by switching off B's own neurons)."""
        rel = self.relative
        out = []
        for a, lang in enumerate(self.deactivated):
            if lang in self.evaluated:
                b = self.evaluated.index(lang)
                line = rel[a] if by == "row" else rel[:, b]
                if rel[a, b] > 0 and rel[a, b] >= line.max():
                    out.append(lang)
        return out

    def to_arrow(self) -> pa.Table:
        """Long table: deactivated, evaluated, n_neurons, base_ppl, ppl, delta, relative."""
        a, b = np.meshgrid(np.arange(len(self.deactivated)), np.arange(len(self.evaluated)), indexing="ij")
        return pa.table({
            "deactivated": pa.array(np.array(self.deactivated, dtype=object)[a.ravel()], pa.string()),
            "evaluated": pa.array(np.array(self.evaluated, dtype=object)[b.ravel()], pa.string()),
            "n_neurons": self.sizes[a.ravel()].astype(np.int64),
            "base_ppl": self.base[b.ravel()], "ppl": self.ppl.ravel(),
            "delta": self.delta.ravel(), "relative": self.relative.ravel(),
        })

    def to_markdown(self) -> str:
        """The relative change in % as a markdown table (rows: deactivated, columns: evaluated)."""
        head = "| off \\ eval | " + " | ".join(self.evaluated) + " |"
        rule = "|---" * (len(self.evaluated) + 1) + "|"
        rows = [f"| {a} ({n}) | " + " | ".join(f"{100 * v:+.1f}%" for v in row) + " |"
                for a, n, row in zip(self.deactivated, self.sizes, self.relative)]
        base = "| base ppl | " + " | ".join(f"{v:.2f}" for v in self.base) + " |"
        return "\n".join([head, rule, base, *rows])

    def heatmap(self, path: str | Path, title: str = "Perplexity change when a language's neurons are off") -> Path:
        """Write a PNG heatmap (rows: deactivated A, columns: evaluated B), coloured by log2(ppl / base) so that
        one exploding cell does not wash out the rest, annotated with the change in %."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rel = 100 * self.relative
        colour = np.log2(self.ppl / self.base[None, :])
        size = max(4.0, 0.55 * max(len(self.evaluated), len(self.deactivated)) + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size))
        vmax = max(float(np.abs(colour).max()), 1e-9)
        image = ax.imshow(colour, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(self.evaluated)), self.evaluated, rotation=60, ha="right")
        ax.set_yticks(range(len(self.deactivated)), self.deactivated)
        ax.set_xlabel("evaluated language B")
        ax.set_ylabel("neurons switched off: language A")
        ax.set_title(title, fontsize=9, wrap=True)
        if rel.size <= 400:
            for (i, j), v in np.ndenumerate(rel):
                ax.text(j, i, f"{v:+.0f}%", ha="center", va="center", fontsize=7)
        fig.colorbar(image, ax=ax, label="log2(perplexity / base perplexity)")
        fig.tight_layout()
        path = Path(path)
        write_output(path, lambda f: fig.savefig(f, format="png", dpi=120))
        plt.close(fig)
        return path


def _by_tag(items: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``items`` keyed by canonical tag (``tl`` and ``Tagalog`` are ``tgl_Latn``); a key that is no language tag
    stays as written. Two keys of one language are an error naming both."""
    from ..languages.tags import canonical

    out: dict[str, Any] = {}
    written: dict[str, str] = {}
    for key, value in items.items():
        try:
            tag = canonical(key)
        except UnknownLanguageError:
            tag = key
        if tag in out:
            raise InvalidParameterError(f"{what} name one language twice: {written[tag]!r} and {key!r} are both "
                                        f"{tag}; keep one of them")
        out[tag], written[tag] = value, key
    return out


def deactivation_matrix(model: nn.Module, neurons: Any, texts: Mapping[str, Text], tokenizer: Any = None, *,
                        value: float = 0.0, seq_len: int = 256, batch_size: int = 2,
                        max_tokens: int | None = None, progress: bool = True,
                        threads: int | None = COMPUTE.threads) -> DeactivationMatrix:
    """Switch off each language's neurons in turn and measure perplexity on every text (Tang et al.'s experiment).

    ``neurons``: ``{lang: NeuronMask}`` or any multi-language source ``neuron_masks`` reads (a NeuronSet).
    Both axes are labelled by canonical tag however ``neurons`` and ``texts`` spell a language (``tl`` and
    ``tgl_Latn`` are one label, ``tgl_Latn``), so a language's diagonal cell is found; a key that is no language tag
    is kept as written. ``threads``: torch's CPU threads for the forward passes, as in ``perplexities`` (recorded in
    the result's ``threads``).
    """
    if isinstance(neurons, Mapping) and all(isinstance(m, NeuronMask) for m in neurons.values()):
        masks = dict(neurons)
    else:
        masks = neuron_masks(neurons, shape=[FFNShape.of(f) for f in find_ffns(model)])
    masks, texts = _by_tag(masks, "neurons"), _by_tag(texts, "texts")  # one spelling on both axes: 'tl' is tgl_Latn
    windows = {lang: token_windows(t, tokenizer, seq_len, max_tokens) for lang, t in texts.items()}
    evaluated, deactivated = list(windows), list(masks)
    ppl = np.empty((len(deactivated), len(evaluated)))
    per_run = sum(map(_predicted, windows.values()))
    runs = 1 + sum(1 for lang in deactivated if len(masks[lang]))  # an empty set reuses the base row: no work
    with torch_threads(threads) as n, bar("deactivation matrix", per_run * runs, "tok", enabled=progress) as b:

        def run_all(label: str) -> np.ndarray:
            row = []
            for lang in evaluated:
                b.describe(f"{label}: perplexity {lang}")
                total, count = nll(model, windows[lang], batch_size, b.advance)
                row.append(math.exp(total / count))
            b.log(label)
            return np.array(row)

        base = run_all("base model")
        for a, lang in enumerate(deactivated):
            if not len(masks[lang]):
                ppl[a] = base
                continue
            with deactivate(model, masks[lang], value):
                ppl[a] = run_all(f"{lang} off")
    sizes = np.array([len(masks[lang]) for lang in deactivated], dtype=np.int64)
    return DeactivationMatrix(deactivated, evaluated, base, ppl, sizes, threads=n)
