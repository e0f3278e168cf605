"""Trainer support for subnetworks: resuming from, and keeping the best of, adapter-only checkpoints.

Any ``transformers.Trainer`` already writes adapter-only checkpoints for a model carrying a subnetwork (it saves
through ``model.save_pretrained``). Reading them back is the part Trainer reserves for PEFT models: its
``_load_from_checkpoint`` and ``_load_best_model`` load adapter folders only for ``PeftModel`` instances and
otherwise look for full weights or a shard index. ``SubnetworkTrainerMixin`` loads our adapter folders there;
mix it into any Trainer subclass (``class SFT(SubnetworkTrainerMixin, trl.SFTTrainer): pass``). While the model
carries a subnetwork, any checkpoint with an ``adapter_config.json`` is read as one (through ``adapter.read_adapter``):
a malformed or foreign one is an AtlasError naming the file, not a fall-back to Trainer's search for full weights.

The mixin also computes with the project's CPU thread policy (``modeling.threads``): ``train``, ``evaluate`` and
``predict`` run inside ``torch_threads(threads)``, ``threads`` a keyword of the constructor; torch's default (every
core) made a step about 6x slower on a busy 2-core machine (benchmarks/RESULTS.md, "CPU build threads").
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import Trainer

from ..modeling.threads import COMPUTE, check_threads, torch_threads
from .adapter import has_adapter_config
from .model import SubnetworkModel, attached_subnetwork


class SubnetworkTrainerMixin:
    """Resume (``train(resume_from_checkpoint=...)``) and ``load_best_model_at_end`` from subnetwork adapter checkpoints.

    ``threads``: torch's CPU threads while training, evaluating and predicting (default: the policy of
    ``modeling.threads``: ``$NEURON_ATLAS_THREADS``, else the idle cores; torch's own setting after). The count is
    recorded beside each ``<prefix>_runtime`` metric as ``<prefix>_threads`` (``train_threads``, ``eval_threads``:
    in the metrics returned and in the log history of ``trainer_state.json``).
    """

    def __init__(self, *args: Any, threads: int | None = COMPUTE.threads, **kwargs: Any) -> None:
        self.threads = check_threads(threads)  # a bad count fails here, not after the model is prepared
        self._threads_now: int | None = None
        super().__init__(*args, **kwargs)

    @contextmanager
    def _computing(self) -> Iterator[int]:
        with torch_threads(self.threads) as n:
            outer, self._threads_now = getattr(self, "_threads_now", None), n
            try:
                yield n
            finally:
                self._threads_now = outer

    def train(self, *args: Any, **kwargs: Any):
        with self._computing():
            return super().train(*args, **kwargs)

    def evaluate(self, *args: Any, **kwargs: Any):
        with self._computing():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any):
        with self._computing() as n:
            output = super().predict(*args, **kwargs)
        if output.metrics is not None:
            _record_threads(output.metrics, n)
        return output

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        n = getattr(self, "_threads_now", None)
        if n is not None:
            _record_threads(logs, n)
        super().log(logs, *args, **kwargs)

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


def _record_threads(metrics: dict[str, Any], n: int) -> None:
    """``<prefix>_threads = n`` beside every ``<prefix>_runtime`` of ``metrics`` (in place: Trainer returns that dict)."""
    for key in [k for k in metrics if k.endswith("_runtime")]:
        metrics[key.removesuffix("runtime") + "threads"] = n


class SubnetworkTrainer(SubnetworkTrainerMixin, Trainer):
    """``transformers.Trainer`` that also resumes from subnetwork adapter checkpoints and computes with the CPU
    thread policy of ``modeling.threads`` (``threads=``: a keyword of the constructor)."""
