"""Count, per layer and FFN neuron, the tokens on which the neuron fires (act(gate) > 0), on the device.

Forward hooks on each layer's gate (or fc_in) projection reduce the batch into an int64 ``[layers, width]``
accumulator with one reduction per layer (a GEMV of the 0/1 firing matrix with the token weights: 1 counted,
0 for BOS and padding) and no host synchronisation. Only the decoder stack runs
(never the LM head); the last layer's hook stops the forward once it has counted. Padding and the
BOS token are never counted.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import AtlasError
from ..modeling.ffn import FFN, find_ffns
from ..modeling.forward import StopForward, base_model


@dataclass
class Counts:
    """Neuron firing counts of one language: ``fired[layer, neuron]`` out of ``tokens`` counted tokens."""

    fired: np.ndarray
    tokens: int
    batch_size: int = 0  # the batch size that fitted (smaller than asked after out-of-memory)
    messages: list[str] = field(default_factory=list)  # e.g. batch halved after out-of-memory


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


def sign_preserving(act: Callable, dtype: torch.dtype, device: torch.device | str) -> bool:
    """Whether act(x) > 0 exactly when x > 0 on a dense grid of normal floats (ReLU, GELU, SiLU: yes)."""
    grid = torch.linspace(-40, 40, 160_001, dtype=torch.float64)
    tiny = torch.finfo(dtype).tiny * 4
    powers = torch.tensor([tiny, 1e-30, 1e-20, 1e-12, 1e-6, 1e-3, 1e3, 1e4], dtype=torch.float64)
    x = torch.cat([grid, powers, -powers, torch.zeros(1, dtype=torch.float64)]).to(device, dtype)
    with torch.inference_mode():
        return torch.equal((act(x) > 0).cpu(), (x > 0).cpu())


class Recorder:
    """Counts FFN neuron firings of ``model`` over token sequences; use ``count`` (hooks live only during it)."""

    def __init__(self, model: nn.Module, ffns: list[FFN] | None = None) -> None:
        self.model = model
        self.ffns = ffns if ffns is not None else find_ffns(model)
        widths = {f.width for f in self.ffns}
        if len(widths) != 1:
            raise AtlasError(f"FFN widths differ between layers ({sorted(widths)}); the atlas needs one width per model")
        self.width = widths.pop()
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        # Only the decoder stack: base_model is the transformer without its LM head.
        self.decoder = base_model(model)
        self._by_sign = [sign_preserving(f.act, self.dtype, self.device) for f in self.ffns]
        self._acc: torch.Tensor | None = None
        # float32 [B*T] per device holding layers: 1 on counted positions, 0 on BOS and padding
        self._weights: dict[torch.device, torch.Tensor] = {}

    def _hook(self, i: int, ffn: FFN) -> Callable:
        last = i == len(self.ffns) - 1
        width = self.width

        def hook(module, args, out):
            if ffn.kind == "fused_gated":
                out = out[..., :width]  # rows [gate; up]: the gate half
            fired = out.gt(0) if self._by_sign[i] else ffn.act(out).gt(0)
            # one GEMV per layer: the weights are 1 on counted tokens, 0 on BOS and padding; float32 sums of
            # 0/1 are exact below 2**24 tokens per batch
            weights = self._weights.get(out.device)
            if weights is None:  # a layer on another GPU (device_map): the weights follow it once per batch
                weights = self._weights[out.device] = self._weights[self.device].to(out.device)
            counts = weights @ fired.view(-1, width).to(torch.float32)
            self._acc[i] += counts.to(self._acc.device, torch.int64)
            if last:
                raise StopForward

        return hook

    def fitting_batch_size(self, seq_len: int, asked: int, share: float = 0.85) -> int:
        """On CUDA, the batch of ``seq_len`` sequences that fills ``share`` of the free memory, from the peak memory
        of a one-sequence forward (the Recorder still halves it on out-of-memory); elsewhere ``asked``."""
        if self.device.type != "cuda":
            return asked
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        self.count([[0] * seq_len], 1)
        per_sequence = max(torch.cuda.max_memory_allocated(self.device) - before, 1)
        free = torch.cuda.mem_get_info(self.device)[0]
        return max(1, min(int(free * share // per_sequence), (2**24 - 1) // seq_len))

    def count(self, seqs: list[list[int]], batch_size: int, pad_id: int = 0, skip_first: bool = True,
              on_batch: Callable[[int], None] | None = None, on_message: Callable[[str], None] | None = None) -> Counts:
        """Count firings over ``seqs`` (token id lists) in batches; the first token of each is skipped if ``skip_first``.

        On out-of-memory the batch size is halved and the same batch retried; nothing counted is lost.
        """
        acc = torch.zeros(len(self.ffns), self.width, dtype=torch.int64, device=self.device)
        self._acc = torch.zeros_like(acc)
        messages: list[str] = []
        hooks = [(f.gate if f.kind == "gated" else f.up).register_forward_hook(self._hook(i, f))
                 for i, f in enumerate(self.ffns)]
        tokens, start = 0, 0
        try:
            while start < len(seqs):
                batch = seqs[start:start + batch_size]
                try:
                    counted = self._forward(batch, pad_id, skip_first)
                except Exception as exc:
                    if not _is_oom(exc) or batch_size == 1:
                        raise
                    batch_size //= 2
                    message = f"out of memory on a batch of {len(batch)} sequences; halved the batch size to {batch_size}"
                    messages.append(message)
                    if on_message:
                        on_message(message)
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    continue
                acc += self._acc
                tokens += counted
                start += len(batch)
                if on_batch:
                    on_batch(counted)
        finally:
            for h in hooks:
                h.remove()
            self._acc, self._weights = None, {}
        return Counts(acc.cpu().numpy(), tokens, batch_size, messages)

    @torch.inference_mode()
    def _forward(self, batch: list[list[int]], pad_id: int, skip_first: bool) -> int:
        """Run the decoder on one right-padded batch; returns the number of counted tokens."""
        longest = max(len(s) for s in batch)
        if len(batch) * longest >= 2**24:
            raise AtlasError(f"a batch of {len(batch)}x{longest} tokens exceeds 2**24; lower the batch size or seq_len")
        ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, seq in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        counted = mask.clone()
        if skip_first:
            counted[:, 0] = 0
        self._weights = {self.device: counted.view(-1).to(self.device, torch.float32)}
        self._acc.zero_()
        try:
            self.decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False)
        except StopForward:
            pass
        return int(counted.sum())


def _is_oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def count_tokens(recorder: Recorder, ids: list[int], *, seq_len: int, batch_size: int, bos: int | None, pad: int,
                 on_batch: Callable[[int], None] | None = None,
                 on_message: Callable[[str], None] | None = None) -> Counts:
    """Count firings on a token stream cut into ``seq_len`` sequences (BOS prepended if given, never counted)."""
    return recorder.count(sequences(ids, seq_len, bos), batch_size, pad, skip_first=bos is not None,
                          on_batch=on_batch, on_message=on_message)


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
