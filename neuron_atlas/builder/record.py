"""Count, per layer and FFN neuron, the tokens on which the neuron fires (act(gate) > 0), on the device, and in
the same forward pass the statistics of atlas format v2: per neuron the mean and variance of act(gate), per
residual-stream point the mean hidden state.

Forward hooks on each layer's gate (or fc_in) projection reduce the batch into an int64 ``[layers, width]``
accumulator with one reduction per layer (a GEMV of the 0/1 firing matrix with the token weights: 1 counted,
0 for BOS and padding) and no host synchronisation. The moments take two more GEMVs per layer over act(gate)
shifted by one counted token's value (sums in float32 per batch, no cancellation), merged into float64
accumulators with Chan's formula; the hidden states (transformers' ``output_hidden_states`` points: the input
of decoder layer 0, each layer's output, the base model's ``last_hidden_state``) one GEMV each. Only the decoder
stack runs (never the LM head); counting alone stops the forward at the last layer's gate. Padding and the BOS
token are never counted.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import AtlasError
from ..modeling.ffn import FFN, decoder_layers, find_ffns
from ..modeling.forward import StopForward, base_model
from ..modeling.tokens import sequences


@dataclass
class Counts:
    """Neuron firing counts of one language: ``fired[layer, neuron]`` out of ``tokens`` counted tokens, and (when
    recorded) the v2 statistics over the same tokens, float64: ``mean``/``var`` of act(gate) ``[layers, width]``
    (population variance), ``residual`` the mean hidden state ``[layers + 1, hidden]``."""

    fired: np.ndarray
    tokens: int
    batch_size: int = 0  # the batch size that fitted (smaller than asked after out-of-memory)
    messages: list[str] = field(default_factory=list)  # e.g. batch halved after out-of-memory
    mean: np.ndarray | None = None
    var: np.ndarray | None = None
    residual: np.ndarray | None = None


def sign_preserving(act: Callable, dtype: torch.dtype, device: torch.device | str) -> bool:
    """Whether act(x) > 0 exactly when x > 0 on a dense grid of normal floats (ReLU, GELU, SiLU: yes)."""
    grid = torch.linspace(-40, 40, 160_001, dtype=torch.float64)
    tiny = torch.finfo(dtype).tiny * 4
    powers = torch.tensor([tiny, 1e-30, 1e-20, 1e-12, 1e-6, 1e-3, 1e3, 1e4], dtype=torch.float64)
    x = torch.cat([grid, powers, -powers, torch.zeros(1, dtype=torch.float64)]).to(device, dtype)
    with torch.inference_mode():
        return torch.equal((act(x) > 0).cpu(), (x > 0).cpu())


class Recorder:
    """Counts FFN neuron firings of ``model`` over token sequences and, with ``stats``, records the v2 statistics
    (act(gate) moments, residual means) in the same forward pass; use ``count`` (hooks live only during it)."""

    def __init__(self, model: nn.Module, ffns: list[FFN] | None = None, stats: bool = True) -> None:
        self.model = model
        self.ffns = ffns if ffns is not None else find_ffns(model)
        widths = {f.width for f in self.ffns}
        if len(widths) != 1:
            raise AtlasError(f"FFN widths differ between layers ({sorted(widths)}); the atlas needs one width per model")
        self.width = widths.pop()
        self.hidden = self.ffns[0].hidden
        self.stats = stats
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        # Only the decoder stack: base_model is the transformer without its LM head.
        self.decoder = base_model(model)
        self.layers = decoder_layers(model)[1]
        self._by_sign = [sign_preserving(f.act, self.dtype, self.device) for f in self.ffns]
        # per-batch sums: float32 for half-precision models (exact enough, measured), the model's dtype above
        self._sum_dtype = torch.promote_types(self.dtype, torch.float32)
        self._acc: torch.Tensor | None = None
        # per batch, on self.device: sums of act - shift and (act - shift)**2 [layers, width], the shift (one counted
        # token's act), and the hidden-state sums [layers + 1, hidden]
        self._s1 = self._s2 = self._shift = self._res = None
        self._first = 0  # flat position of the batch's first counted token (its act is the shift)
        self._pending: tuple[int, FFN, torch.Tensor] | None = None  # (layer, ffn, gate output) awaiting its act
        self._buffers: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        # (device, dtype) -> [B*T] token weights: 1 on counted positions, 0 on BOS and padding
        self._weights: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def _token_weights(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The batch's token weights on ``device`` (a layer on another GPU under device_map) in ``dtype``."""
        weights = self._weights.get((device, dtype))
        if weights is None:
            weights = self._weights[(device, dtype)] = self._weights[(self.device, torch.float32)].to(device, dtype)
        return weights

    def _scratch(self, like: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A reused buffer shaped like ``like`` in ``dtype`` on its device: fresh [tokens, width] tensors per layer
        cost more than the arithmetic on them (page faults of large allocations on CPU)."""
        key = (like.device, dtype)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < like.numel():
            buffer = self._buffers[key] = torch.empty(like.numel(), dtype=dtype, device=like.device)
        return buffer[:like.numel()].view(like.shape)

    def _hook(self, i: int, ffn: FFN) -> Callable:
        last = i == len(self.ffns) - 1
        width = self.width

        def hook(module, args, out):
            if ffn.kind == "fused_gated":
                out = out[..., :width]  # rows [gate; up]: the gate half
            self._flush()  # an earlier layer's act the act hook did not see
            acted = None if self._by_sign[i] else ffn.act(out)
            fired = torch.gt(out if acted is None else acted, 0, out=self._scratch(out, torch.bool))
            # one GEMV per layer: the weights are 1 on counted tokens, 0 on BOS and padding; float32 sums of
            # 0/1 are exact below 2**24 tokens per batch
            weights = self._token_weights(out.device, torch.float32)
            counts = weights @ self._scratch(fired, torch.float32).copy_(fired).view(-1, width)
            self._acc[i] += counts.to(self._acc.device, torch.int64)
            if not self.stats:
                if last:
                    raise StopForward
            elif acted is not None:
                self._add_moments(i, acted)
            else:  # the model's own act(gate) comes to _act_hook; else _flush computes it
                self._pending = (i, ffn, out)

        return hook

    def _act_hook(self, module, args, out) -> None:
        """The FFN's activation module ran: if on the pending layer's gate output, its result is act(gate)."""
        if self._pending is None or not args or not isinstance(out, torch.Tensor):
            return
        i, _, gate = self._pending
        x = args[0]
        if (isinstance(x, torch.Tensor) and x.data_ptr() == gate.data_ptr() and x.shape == gate.shape
                and x.stride() == gate.stride()):
            self._pending = None
            self._add_moments(i, out)

    def _flush(self) -> None:
        """Compute act(gate) of a pending layer whose activation module did not report it (a functional act)."""
        if self._pending is not None:
            i, ffn, gate = self._pending
            self._pending = None
            self._add_moments(i, ffn.act(gate))

    def _add_moments(self, i: int, acted: torch.Tensor) -> None:
        """Layer ``i``'s batch sums of act - shift and (act - shift)**2 over the counted tokens (two GEMVs), the
        shift being the first counted token's act: no cancellation when the variance is small against the mean."""
        centred = self._scratch(acted, self._sum_dtype).copy_(acted).view(-1, self.width)
        shift = centred[self._first].clone()
        weights = self._token_weights(acted.device, self._sum_dtype)
        self._s1[i] = (weights @ centred.sub_(shift)).to(self.device)
        self._s2[i] = (weights @ centred.square_()).to(self.device)
        self._shift[i] = shift.to(self.device)

    def _sum_hidden(self, point: int, hidden: torch.Tensor) -> None:
        """Add the counted tokens' hidden states at ``output_hidden_states`` entry ``point`` to the batch sums."""
        if hidden.shape[-1] != self.hidden:
            raise AtlasError(f"hidden state {point} has width {hidden.shape[-1]}, not the model's hidden size "
                             f"{self.hidden}; the residual means need one width (a projected last state?)")
        self._flush()
        weights = self._token_weights(hidden.device, self._sum_dtype)
        flat = self._scratch(hidden, self._sum_dtype).copy_(hidden).view(-1, self.hidden)
        self._res[point] = (weights @ flat).to(self.device)

    def _stat_hooks(self) -> list:
        """Hooks of the v2 statistics: each FFN's activation module (its output is act(gate)), and transformers'
        hidden-state points: entry 0 is decoder layer 0's input, entry l (1 <= l < n_layers) layer l-1's output;
        the last entry, ``last_hidden_state`` (after the final norm), comes from the forward's return value."""
        def first(module, args, kwargs):
            self._sum_hidden(0, args[0] if args else kwargs["hidden_states"])

        def output(point: int) -> Callable:
            return lambda module, args, out: self._sum_hidden(point, out[0] if isinstance(out, tuple) else out)

        acts = {id(f.act): f.act for i, f in enumerate(self.ffns) if self._by_sign[i] and isinstance(f.act, nn.Module)}
        hooks = [act.register_forward_hook(self._act_hook) for act in acts.values()]
        hooks.append(self.layers[0].register_forward_pre_hook(first, with_kwargs=True))
        hooks += [layer.register_forward_hook(output(j + 1)) for j, layer in enumerate(list(self.layers)[:-1])]
        return hooks

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
        """Count firings (and, with ``stats``, record the moments and residual means) over ``seqs`` (token id lists)
        in batches; the first token of each is skipped if ``skip_first``.

        On out-of-memory the batch size is halved and the same batch retried; nothing counted is lost.
        """
        layers, width = len(self.ffns), self.width
        acc = torch.zeros(layers, width, dtype=torch.int64, device=self.device)
        self._acc = torch.zeros_like(acc)
        moments = _Moments(layers, width, self.hidden, self.device) if self.stats else None
        if moments is not None:
            self._s1, self._s2, self._shift = (torch.zeros(layers, width, dtype=self._sum_dtype, device=self.device)
                                               for _ in range(3))
            self._res = torch.zeros(layers + 1, self.hidden, dtype=self._sum_dtype, device=self.device)
        messages: list[str] = []
        hooks = [(f.gate if f.kind == "gated" else f.up).register_forward_hook(self._hook(i, f))
                 for i, f in enumerate(self.ffns)]
        if moments is not None:
            hooks += self._stat_hooks()
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
                if moments is not None and counted:
                    moments.add(counted, self._s1, self._s2, self._shift, self._res)
                tokens += counted
                start += len(batch)
                if on_batch:
                    on_batch(counted)
        finally:
            for h in hooks:
                h.remove()
            self._acc, self._weights, self._buffers, self._pending = None, {}, {}, None
            self._s1 = self._s2 = self._shift = self._res = None
        result = Counts(acc.cpu().numpy(), tokens, batch_size, messages)
        if moments is not None:
            result.mean, result.var, result.residual = moments.result()
        return result

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
        flat = counted.view(-1)
        self._weights = {(self.device, torch.float32): flat.to(self.device, torch.float32)}
        self._first = int(flat.argmax())  # the first counted position (0 when none is counted)
        self._acc.zero_()
        try:
            out = self.decoder(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False)
        except StopForward:
            pass
        else:
            if self.stats:
                self._sum_hidden(len(self.ffns), out[0])  # last_hidden_state: after the final norm
        finally:
            self._pending = None
        return int(counted.sum())


class _Moments:
    """Running float64 moments on the device: per-batch (count, shifted sums) merged with Chan's parallel formula."""

    def __init__(self, layers: int, width: int, hidden: int, device: torch.device) -> None:
        self.n = 0
        self.mean = torch.zeros(layers, width, dtype=torch.float64, device=device)
        self.m2 = torch.zeros_like(self.mean)
        self.hidden = torch.zeros(layers + 1, hidden, dtype=torch.float64, device=device)

    def add(self, n: int, s1: torch.Tensor, s2: torch.Tensor, shift: torch.Tensor, hidden: torch.Tensor) -> None:
        """Merge one batch of ``n`` tokens: ``s1``/``s2`` sums of (act - shift) and its square, ``hidden`` sums."""
        s1, s2 = s1.double(), s2.double()
        mean = shift.double() + s1 / n
        m2 = (s2 - s1 * s1 / n).clamp_min_(0)
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * (n / total)
        self.m2 += m2 + delta.square_() * (self.n * n / total)
        self.hidden += hidden.double()
        self.n = total

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, population variance, mean hidden states) as float64 arrays; NaN where no token was counted."""
        n = self.n or float("nan")
        mean = self.mean if self.n else self.mean * n
        return mean.cpu().numpy(), (self.m2 / n).cpu().numpy(), (self.hidden / n).cpu().numpy()


def _is_oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def count_tokens(recorder: Recorder, ids: list[int], *, seq_len: int, batch_size: int, bos: int | None, pad: int,
                 on_batch: Callable[[int], None] | None = None,
                 on_message: Callable[[str], None] | None = None) -> Counts:
    """Count firings on a token stream cut into ``seq_len`` sequences (BOS prepended if given, never counted)."""
    return recorder.count(sequences(ids, seq_len, bos), batch_size, pad, skip_first=bos is not None,
                          on_batch=on_batch, on_message=on_message)
