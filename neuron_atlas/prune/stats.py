"""Calibration statistics for Wanda: per linear layer, the L2 norm ‖X_j‖₂ of each input feature over calibration tokens.

Accumulated with forward pre-hooks in one pass over the calibration set: each hook adds the per-feature sum of
squares of its input on the non-padding tokens of the batch, so no activation outlives its layer call.

Differences from the authors' code (hwichan0720/pruning_for_multilinguality, ``src/prune_mt.py`` and
``src/layerwrapper.py``), both bugs there:

* padding: their samples are padded to 512 tokens (``padding="max_length"``) and ``WrappedGPT`` is built without
  attention masks, so the hidden states at pad positions enter ‖X_j‖. Here only tokens with attention_mask = 1 count.
* attention masks: their ``prepare_calibration_input`` keeps only the mask of the *last* sample it saw and passes that
  one mask to every sample's layer call. Here every sample runs with its own attention mask.

Also different by default: Wanda (and the authors) compute the statistics block by block on a model whose earlier
blocks are already pruned; ``input_norms`` takes all statistics from the dense model in one pass, and
``wanda.sequential_wanda_masks`` does the block-by-block version with the same hooks (one truncated pass per block,
still no stored activations). Their running mean over samples scales every ‖X_j‖ of a layer by the same
constant, which leaves the within-row ranking, hence the masks, unchanged; here ``norm`` is exactly ‖X_j‖₂.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import AtlasError
from ..modeling.ffn import decoder_layers
from ..modeling.forward import StopForward, base_model, stop_forward
from .._utils.progress import Bar
from .._utils.progress import bar as progress_bar
from .calibration import CalibrationSet


def prunable_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear inside the decoder blocks, by its name in ``model`` (embeddings and LM head excluded)."""
    _, layers = decoder_layers(model)
    blocks = {id(m) for m in layers}
    names = {id(m): name for name, m in model.named_modules()}
    out: dict[str, nn.Linear] = {}
    for block in layers:
        prefix = names[id(block)]
        for name, module in block.named_modules():
            if isinstance(module, nn.Linear) and id(module) not in blocks:
                out[f"{prefix}.{name}"] = module
    if not out:
        raise AtlasError(f"{type(model).__name__}: its decoder blocks contain no nn.Linear to prune")
    return out


@dataclass
class InputNorms:
    """Per linear layer, the sum over calibration tokens of each input feature's square, and the token count."""

    sumsq: dict[str, torch.Tensor]  # float64 [in_features]
    tokens: int

    def norm(self, name: str) -> torch.Tensor:
        """‖X_j‖₂ over all calibration tokens."""
        return self.sumsq[name].sqrt()

    def rms(self, name: str) -> torch.Tensor:
        """‖X_j‖₂ / sqrt(tokens): comparable between calibration sets of different sizes."""
        return (self.sumsq[name] / max(self.tokens, 1)).sqrt()

    def scale(self, name: str, contrast: InputNorms | None = None, eps: float = 1e-12) -> torch.Tensor:
        """The column factor of the Wanda score: ‖X_j‖₂, or with a contrast set rms_j · (rms_j / rms^c_j).

        The contrast form is the authors' ``calculate_scaler_row`` (their BLOOM variant): features large on the
        calibration set *relative to* the contrast set weigh more. There, which of the two data types is the base
        is ``list(set(data_types))[0]``, i.e. decided by string hashing (PYTHONHASHSEED); here it is explicit.
        """
        if contrast is None:
            return self.norm(name)
        rms = self.rms(name)
        return rms * rms / contrast.rms(name).clamp_min(eps)


def run_batches(model: nn.Module, calib: CalibrationSet, batch_size: int, on_batch, label: str,
                stop_after: nn.Module | None = None, bar: Bar | None = None, weight: float = 1.0) -> None:
    """Run the base model over the calibration set; ``on_batch(mask)`` is called with each batch's bool mask first.

    With ``stop_after``, each forward pass ends once that module has run. Progress goes to ``bar`` (a caller's bar
    over several passes: each batch advances it by its tokens × ``weight``, the share of a full pass it costs), else
    to a bar of its own over the set's tokens.
    """
    body = base_model(model)
    device = next(model.parameters()).device
    handle = stop_after.register_forward_hook(stop_forward) if stop_after is not None else None
    try:
        with torch.inference_mode(), (nullcontext(bar) if bar is not None else progress_bar(label, calib.tokens, "tok")) as b:
            for ids, mask in calib.batches(batch_size):
                mask = mask.to(device)
                on_batch(mask.bool())
                positions = (mask.cumsum(dim=1) - 1).clamp_min(0)  # left padding keeps each sample's own positions
                try:
                    body(input_ids=ids.to(device), attention_mask=mask, position_ids=positions, use_cache=False)
                except StopForward:
                    pass
                b.advance(int(mask.sum()) * weight)
            b.log(label)
    finally:
        if handle is not None:
            handle.remove()


def input_norms(model: nn.Module, calib: CalibrationSet, *, batch_size: int = 4,
                modules: dict[str, nn.Module] | None = None, stop_after: nn.Module | None = None,
                bar: Bar | None = None, weight: float = 1.0) -> InputNorms:
    """‖X_j‖₂ of every input feature of every prunable linear layer (or of ``modules``) over the non-padding
    calibration tokens; ``stop_after`` ends each forward pass early, ``bar``/``weight`` as in ``run_batches``."""
    modules = prunable_linears(model) if modules is None else modules
    sumsq = {name: torch.zeros(m.in_features, dtype=torch.float64, device=m.weight.device)
             for name, m in modules.items()}
    current: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module, args):
            x, mask = args[0], current["mask"]
            if x.shape[:-1].numel() != mask.numel():
                raise AtlasError(f"{name}: input of shape {tuple(x.shape)} does not line up with the "
                                 f"[batch, tokens] attention mask {tuple(mask.shape)}")
            real = x.reshape(-1, x.shape[-1])[mask.reshape(-1)]
            sumsq[name] += real.float().square().sum(dim=0).double()
        return hook

    handles = [m.register_forward_pre_hook(hook_for(name)) for name, m in modules.items()]
    try:
        run_batches(model, calib, batch_size, lambda mask: current.__setitem__("mask", mask), "calibration norms",
                    stop_after, bar, weight)
    finally:
        for h in handles:
            h.remove()
    return InputNorms({k: v.cpu() for k, v in sumsq.items()}, calib.tokens)
