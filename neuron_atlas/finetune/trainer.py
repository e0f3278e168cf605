"""Trainer support for subnetworks: resuming from, and keeping the best of, adapter-only checkpoints.

Any ``transformers.Trainer`` already writes adapter-only checkpoints for a model carrying a subnetwork (it saves
through ``model.save_pretrained``). Reading them back is the part Trainer reserves for PEFT models: its
``_load_from_checkpoint`` and ``_load_best_model`` load adapter folders only for ``PeftModel`` instances and
otherwise look for full weights or a shard index. ``SubnetworkTrainerMixin`` loads our adapter folders there;
mix it into any Trainer subclass (``class SFT(SubnetworkTrainerMixin, trl.SFTTrainer): pass``). While the model
carries a subnetwork, any checkpoint with an ``adapter_config.json`` is read as one (through ``adapter.read_adapter``):
a malformed or foreign one is an AtlasError naming the file, not a fall-back to Trainer's search for full weights.
"""
from __future__ import annotations

import os

from transformers import Trainer

from .adapter import has_adapter_config
from .model import SubnetworkModel, attached_subnetwork


class SubnetworkTrainerMixin:
    """Resume (``train(resume_from_checkpoint=...)``) and ``load_best_model_at_end`` from subnetwork adapter checkpoints."""

    def _subnetwork(self, model=None) -> SubnetworkModel | None:
        model = self.model if model is None else model
        return attached_subnetwork(self.accelerator.unwrap_model(model))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        sub = self._subnetwork(model)
        if sub is not None and has_adapter_config(resume_from_checkpoint):  # ours or not, read_adapter judges it
            sub.load(resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        sub, best = self._subnetwork(), self.state.best_model_checkpoint
        if sub is not None and best is not None and has_adapter_config(best):
            sub.load(os.fspath(best))
            return
        super()._load_best_model()


class SubnetworkTrainer(SubnetworkTrainerMixin, Trainer):
    """``transformers.Trainer`` that also resumes from subnetwork adapter checkpoints."""
