"""The adapter folder of a subnetwork, in PEFT's layout: ``adapter_config.json`` beside ``adapter_model.safetensors``.

The config names the base model (``base_model_name_or_path``, ``revision``, its shape and weight fingerprint) and
the neuron set's provenance (atlas, model, languages, method, size, neuron count, fingerprint); the
weights file is a delta file (``SubnetworkModel.save``) and its sha256 is in the config. ``peft_type`` is
``NEURON_SUBNETWORK``: PEFT cannot load it (its registry admits only members of its own ``PeftType`` enum), so
``SubnetworkModel.from_pretrained`` does.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .._utils.files import write_bytes
from ..errors import (
    AtlasError,
    AtlasFormatError,
    AtlasNotFoundError,
    DeltaMismatchError,
)

# The file names PEFT writes and transformers' Trainer recognises as an adapter checkpoint.
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_TYPE = "NEURON_SUBNETWORK"
LIBRARY = "neuron-atlas"


def adapter_config(*, base: dict[str, Any], revision: str | None, mask: dict[str, Any], projections: list[str],
                   dtype: str, target_modules: list[str], weights: bytes) -> dict[str, Any]:
    """The JSON an adapter folder carries: PEFT's keys first, then what a subnetwork needs to be rebuilt."""
    from .. import __version__

    return {
        "peft_type": PEFT_TYPE, "task_type": "CAUSAL_LM", "base_model_name_or_path": base.get("name_or_path") or None,
        "revision": revision, "inference_mode": True, "target_modules": target_modules,
        "library_name": LIBRARY, "library_version": __version__,
        "projections": projections, "delta_dtype": dtype, "base_model": base, "neurons": mask,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }


def write_adapter(folder: str | os.PathLike, config: dict[str, Any], weights: bytes) -> Path:
    """Write the weights, then the config (each atomically): a folder with a config always has its weights."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(weights, folder / WEIGHTS_NAME)
    write_bytes((json.dumps(config, indent=2, default=str) + "\n").encode(), folder / CONFIG_NAME)
    return folder


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a subnetwork adapter (e.g. a Trainer checkpoint of one)."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("peft_type") == PEFT_TYPE
    except ValueError:
        return False


def read_adapter_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The config of an adapter folder, checked to be a subnetwork's and to match its weights file."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise AtlasNotFoundError(f"{folder} is not an adapter folder: it has no {CONFIG_NAME} (write one with "
                                 "sub.save_pretrained(folder), or pass a delta file written by sub.save(path))")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise AtlasFormatError(f"{path} is not valid JSON ({exc})") from None
    kind = config.get("peft_type")
    if kind != PEFT_TYPE:
        raise AtlasFormatError(f"{folder} holds a PEFT {kind} adapter, not a neuron subnetwork; load it with "
                               "peft.PeftModel.from_pretrained(model, folder)")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise AtlasNotFoundError(f"{folder} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the adapter is incomplete")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if config.get("weights_sha256") not in (None, digest):
        raise DeltaMismatchError(f"{weights} does not match the sha256 in its {CONFIG_NAME}: a save was interrupted "
                                 "between the two files, or a file was replaced or corrupted; save the adapter again")
    return config


def resolve_adapter(model_id: str | os.PathLike, *, revision: str | None = None, token: str | None = None,
                    cache_dir: str | os.PathLike | None = None) -> Path:
    """A local adapter folder or delta file as is; otherwise a Hub model repo, downloaded (config and weights)."""
    local = Path(model_id)
    if local.exists():
        return local
    text = os.fspath(model_id)
    if text.count("/") != 1 or text.startswith((".", "/")):
        raise AtlasNotFoundError(f"no adapter at {text!r}: not a local folder or file, nor a Hub repo id (org/name)")
    from huggingface_hub import snapshot_download

    from ..hub.address import endpoint, resolve_token

    where = endpoint()
    try:
        folder = snapshot_download(text, revision=revision, token=resolve_token(token), cache_dir=cache_dir,
                                   allow_patterns=[CONFIG_NAME, WEIGHTS_NAME], endpoint=where)
    except Exception as exc:  # every Hub failure becomes an AtlasError naming the repo
        raise _hub_error(exc, text, revision, where) from exc
    return Path(folder)


def _hub_error(exc: Exception, repo_id: str, revision: str | None, where: str | None) -> AtlasError:
    """Translate a huggingface_hub error about a model repo into one that says what to do."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    where = where or "https://huggingface.co"
    if isinstance(exc, RevisionNotFoundError):
        return AtlasNotFoundError(f"model repo {repo_id} has no revision {revision!r} (a branch, tag or commit sha)")
    if isinstance(exc, RepositoryNotFoundError):
        return AtlasNotFoundError(f"model repo {repo_id!r} was not found at {where}: it does not exist, or it is "
                                  "private and no valid token was given (set HF_TOKEN or pass token=)")
    return AtlasError(f"could not download the adapter {repo_id}@{revision or 'main'} from {where}: {exc}")
