"""The adapter folder of a subnetwork, in PEFT's layout: ``adapter_config.json`` beside ``adapter_model.safetensors``.

The config names the base model (``base_model_name_or_path``, ``revision``, its shape and weight fingerprint) and
the neuron set's provenance (atlas, model, languages, method, size, neuron count, fingerprint); the
weights file is a delta file (``SubnetworkModel.save``) and its sha256 is in the config. ``peft_type`` is
``NEURON_SUBNETWORK``: PEFT cannot load it (its registry admits only members of its own ``PeftType`` enum, and
``peft.PeftModel.from_pretrained`` looks the type up in a plain dict: ``KeyError: 'NEURON_SUBNETWORK'``), so
``SubnetworkModel.from_pretrained`` does; the config's ``load_with`` says so to whoever opens it.

``read_adapter`` is the one validator of these files: every loader (``SubnetworkModel.from_pretrained``/``load``,
``load_subnetwork``, Trainer resume, publishing) reads through it, so a malformed file is an ``AtlasError`` naming
the file, the field and what it should be, before anything is written into a model.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from .._utils.files import write_bytes
from ..errors import (
    AtlasError,
    AtlasFormatError,
    AtlasNotFoundError,
    DeltaMismatchError,
)
from ..masks import DELTA_FORMAT, DELTA_FORMAT_VERSION, MASK_FORMAT, NeuronMask

if TYPE_CHECKING:
    import torch

# The file names PEFT writes and transformers' Trainer recognises as an adapter checkpoint.
CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
PEFT_TYPE = "NEURON_SUBNETWORK"
LIBRARY = "neuron-atlas"
# Versions of the delta file (and adapter config) this package reads; a newer one needs a newer neuron-atlas.
FORMAT_VERSIONS = (DELTA_FORMAT_VERSION,)
DELTA_DTYPES = ("float32", "bfloat16", "float16", "float64")
LOAD_WITH = ("neuron_atlas.finetune.SubnetworkModel.from_pretrained(model, folder) (peft.PeftModel cannot load "
             f"peft_type {PEFT_TYPE}: it fails with KeyError: {PEFT_TYPE!r})")
_AGAIN = "save the adapter again with sub.save_pretrained(folder)"


# --- the records, one pydantic model each ---------------------------------------------------------------------
Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
Positive = Annotated[StrictInt, Field(gt=0)]
Count = Annotated[StrictInt, Field(ge=0)]
Projection = Literal["gate", "up", "down"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def _projections(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must name at least one of 'gate', 'up', 'down'")
    if len(set(value)) != len(value):
        raise ValueError(f"names a projection twice: {value}")
    return value


class BaseModelRecord(_Record):
    """The base model a subnetwork was trained on: what ``describe_base`` records and loading checks."""

    architecture: StrictStr
    n_layers: Positive
    width: Positive
    hidden: Positive
    kind: Literal["gated", "fused_gated", "plain"]
    transposed: StrictBool
    name_or_path: StrictStr | None = ""
    base_fingerprint: Sha256


class NeuronsRecord(_Record):
    """The neuron set (``NeuronMask.metadata()``): its shape, size, provenance and fingerprint."""

    n_layers: Positive
    width: Positive
    n_neurons: Positive
    model: StrictStr | None = ""
    languages: list[StrictStr] = []
    params: dict[str, Any] | None = None
    atlas_version: StrictStr | None = ""
    fingerprint: Sha256


class DeltaHeader(_Record):
    """The safetensors metadata of a delta file, its JSON fields parsed."""

    format: Literal["neuron-atlas-delta"]
    format_version: StrictInt
    mask: NeuronsRecord
    base: BaseModelRecord
    projections: list[Projection]

    _check_projections = field_validator("projections")(_projections)


class AdapterConfig(_Record):
    """``adapter_config.json``: PEFT's keys, then what a subnetwork needs to be rebuilt and verified."""

    peft_type: Literal["NEURON_SUBNETWORK"]
    format_version: StrictInt = DELTA_FORMAT_VERSION  # adapters saved before the key existed are version 1
    base_model_name_or_path: StrictStr | None = None
    revision: StrictStr | None = None
    target_modules: list[StrictStr]
    projections: list[Projection]
    delta_dtype: Literal["float32", "bfloat16", "float16", "float64"]
    base_model: BaseModelRecord
    neurons: NeuronsRecord
    weights_sha256: Sha256

    _check_projections = field_validator("projections")(_projections)


# --- writing --------------------------------------------------------------------------------------------------
def adapter_config(*, base: dict[str, Any], revision: str | None, mask: dict[str, Any], projections: list[str],
                   dtype: str, target_modules: list[str], weights: bytes) -> dict[str, Any]:
    """The JSON an adapter folder carries: PEFT's keys first, then what a subnetwork needs to be rebuilt."""
    from .. import __version__

    return {
        "peft_type": PEFT_TYPE, "task_type": "CAUSAL_LM", "base_model_name_or_path": base.get("name_or_path") or None,
        "revision": revision, "inference_mode": True, "target_modules": target_modules,
        "library_name": LIBRARY, "library_version": __version__, "format_version": DELTA_FORMAT_VERSION,
        "load_with": LOAD_WITH,
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


# --- reading: the one validator -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Adapter:
    """A validated adapter folder or delta file: everything a loader needs, every check already passed."""

    path: Path  # what was given: a folder or a delta file
    weights: Path  # the delta file
    data: bytes  # its bytes, as hashed and parsed (publish these, not a second read)
    config: AdapterConfig | None  # None for a bare delta file
    raw_config: dict[str, Any] | None  # the config as written (key order and extra keys kept)
    metadata: dict[str, str]  # the delta file's safetensors metadata, as stored
    header: DeltaHeader
    mask: NeuronMask
    tensors: dict[str, torch.Tensor]  # the deltas, ``layers.<i>.<projection>``

    @property
    def dtype(self) -> str:
        """The deltas' dtype name ('float32', 'bfloat16', ...)."""
        return str(next(iter(self.tensors.values())).dtype).removeprefix("torch.")


def has_adapter_config(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder with an ``adapter_config.json`` (valid or not: ``read_adapter`` judges it)."""
    return (Path(path) / CONFIG_NAME).is_file()


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder whose ``adapter_config.json`` claims to be a subnetwork adapter's."""
    try:
        config = json.loads((Path(path) / CONFIG_NAME).read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and config.get("peft_type") == PEFT_TYPE


def read_adapter_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The config of an adapter folder as written, after ``read_adapter`` validated the whole folder."""
    adapter = read_adapter(folder)
    if adapter.raw_config is None:
        raise AtlasNotFoundError(f"{folder} is a delta file, not an adapter folder; save the adapter with "
                                 "sub.save_pretrained(folder)")
    return adapter.raw_config


def read_adapter(path: str | os.PathLike) -> Adapter:
    """Validate an adapter folder (config, weights' sha256, weights) or a bare delta file (``SubnetworkModel.save``).

    Raises AtlasNotFoundError (nothing there), AtlasFormatError (a malformed config or weights file, non-finite
    deltas, an unknown format version) or DeltaMismatchError (config and weights of different adapters, weights
    that fail their sha256); never a raw JSON, key or attribute error.
    """
    path = Path(path)
    if path.is_dir():
        config_path, weights = path / CONFIG_NAME, path / WEIGHTS_NAME
        if not config_path.is_file():
            raise AtlasNotFoundError(f"{path} is not an adapter folder: it has no {CONFIG_NAME} (write one with "
                                     "sub.save_pretrained(folder), or pass a delta file written by sub.save(path))")
        raw_config = _read_config_json(config_path)
        config = _validate_config(raw_config, config_path, weights)
        if not weights.is_file():
            raise AtlasNotFoundError(f"{path} has {CONFIG_NAME} but no {WEIGHTS_NAME}; the adapter is incomplete")
        data = _read(weights)
        if hashlib.sha256(data).hexdigest() != config.weights_sha256:
            raise DeltaMismatchError(f"{weights} does not match the sha256 in its {CONFIG_NAME}: a save was "
                                     "interrupted between the two files, or a file was replaced or corrupted; "
                                     f"{_AGAIN}")
    else:
        config = raw_config = None
        weights = path
        if not path.exists():
            raise AtlasNotFoundError(f"no delta file or adapter folder at {path}")
        data = _read(path)
    metadata, tensors = _read_safetensors(data, weights)
    header = _validate_header(metadata, weights)
    mask = _read_mask(header, tensors, weights)
    deltas = _check_deltas(header, mask, tensors, weights)
    adapter = Adapter(path, weights, data, config, raw_config, metadata, header, mask, deltas)
    if config is not None:
        _check_agreement(config, adapter, path / CONFIG_NAME)
    return adapter


def _read_config_json(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(_read(path))
    except UnicodeDecodeError as exc:
        raise AtlasFormatError(f"{path}: not UTF-8 text ({exc.reason}); {_AGAIN}") from None
    except ValueError as exc:
        raise AtlasFormatError(f"{path} is not valid JSON ({exc}); {_AGAIN}") from None
    except RecursionError:
        raise AtlasFormatError(f"{path} is not an adapter config: its JSON is nested too deeply to read; "
                               f"{_AGAIN}") from None
    if not isinstance(config, dict):
        raise AtlasFormatError(f"{path} holds a JSON {_json_kind(config)}, not the object of an adapter config "
                               f"(peft_type, base_model, neurons, projections, weights_sha256, ...); {_AGAIN}")
    return config


def _validate_config(raw: dict[str, Any], path: Path, weights: Path) -> AdapterConfig:
    kind = raw.get("peft_type")
    if kind is None:
        raise AtlasFormatError(f"{path} has no peft_type, so it is no adapter config; a subnetwork adapter's is "
                               f"{PEFT_TYPE!r} ({_AGAIN})")
    if kind != PEFT_TYPE:
        raise AtlasFormatError(f"{path.parent} holds a PEFT {kind} adapter, not a neuron subnetwork; load it with "
                               "peft.PeftModel.from_pretrained(model, folder)")
    if raw.get("weights_sha256") is None:
        raise AtlasFormatError(f"{path} has no weights_sha256, so {weights.name} cannot be verified against it "
                               f"(a hand-edited or foreign config?); {_AGAIN}")
    _check_version(raw.get("format_version", DELTA_FORMAT_VERSION), path, "adapter config")
    try:
        return AdapterConfig.model_validate(raw)
    except ValidationError as exc:
        raise AtlasFormatError(f"{path}: {_explain(exc)}; {_AGAIN}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AtlasError(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_safetensors(data: bytes, path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file's bytes; AtlasFormatError if it is not a whole, valid one."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError) as exc:  # corrupt, truncated, unknown dtype
        raise AtlasFormatError(f"{path}: not a readable safetensors file ({exc}); truncated or corrupted? "
                               f"{_AGAIN}") from None
    (size,) = struct.unpack("<Q", data[:8])  # safetensors.load checked the header: 8-byte length, then JSON
    try:
        metadata = json.loads(data[8:8 + size]).get("__metadata__") or {}
    except (ValueError, RecursionError) as exc:
        raise AtlasFormatError(f"{path}: its safetensors header is not JSON ({exc}); {_AGAIN}") from None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise AtlasFormatError(f"{path}: its safetensors metadata is not a table of strings; {_AGAIN}")
    return metadata, tensors


def _validate_header(metadata: dict[str, str], path: Path) -> DeltaHeader:
    kind = metadata.get("format")
    if kind == MASK_FORMAT:
        raise AtlasFormatError(f"{path}: a neuron mask, not a subnetwork delta; use it as the neurons of "
                               "subnetwork(model, neurons), or load deltas written by sub.save(path)")
    if kind != DELTA_FORMAT:
        raise AtlasFormatError(f"{path}: not a subnetwork delta file (format {kind!r}, expected {DELTA_FORMAT!r} "
                               "in its safetensors metadata)")
    if "format_version" not in metadata:
        raise AtlasFormatError(f"{path}: its metadata has no format_version; this neuron-atlas reads delta format "
                               f"version {_versions()}; {_AGAIN}")
    version = metadata["format_version"]
    if not version.isdecimal():
        raise AtlasFormatError(f"{path}: format_version {version!r} is not a version number; this neuron-atlas "
                               f"reads delta format version {_versions()}")
    _check_version(int(version), path, "delta file")
    fields: dict[str, Any] = {"format": kind, "format_version": int(version)}
    for name in ("mask", "base", "projections"):
        if name not in metadata:
            raise AtlasFormatError(f"{path}: its metadata has no {name!r} field (a delta file records its neuron "
                                   f"set as 'mask', its base model as 'base' and its 'projections'); {_AGAIN}")
        try:
            fields[name] = json.loads(metadata[name])
        except (ValueError, RecursionError) as exc:
            raise AtlasFormatError(f"{path}: metadata field {name!r} is not JSON ({exc}); {_AGAIN}") from None
    try:
        return DeltaHeader.model_validate(fields)
    except ValidationError as exc:
        raise AtlasFormatError(f"{path}: metadata {_explain(exc)}; {_AGAIN}") from None


def _check_version(version: Any, path: Path, what: str) -> None:
    if isinstance(version, bool) or not isinstance(version, int):
        raise AtlasFormatError(f"{path}: format_version {version!r} is not a version number; this neuron-atlas "
                               f"reads {what} format version {_versions()}")
    if version in FORMAT_VERSIONS:
        return
    from .. import __version__

    newer = version > max(FORMAT_VERSIONS)
    raise AtlasFormatError(
        f"{path}: {what} format version {version}" + (" (written by a newer neuron-atlas)" if newer else "")
        + f"; neuron-atlas {__version__} reads {what} format version {_versions()}"
        + ("; upgrade it: pip install -U neuron-atlas" if newer else " (a corrupt or hand-edited file?)"))


def _read_mask(header: DeltaHeader, tensors: dict[str, torch.Tensor], path: Path) -> NeuronMask:
    """The neuron set of the CSR ``indices``/``offsets`` tensors, checked against the header's record of it."""
    meta = header.mask
    for name in ("indices", "offsets"):
        if name not in tensors:
            raise AtlasFormatError(f"{path}: no {name!r} tensor (a delta file stores its neuron set as CSR indices "
                                   f"and offsets); {_AGAIN}")
        t = tensors[name]
        if t.ndim != 1 or t.dtype.is_floating_point or t.dtype.is_complex or str(t.dtype) == "torch.bool":
            raise AtlasFormatError(f"{path}: tensor {name!r} is {str(t.dtype).removeprefix('torch.')} of shape "
                                   f"{tuple(t.shape)}, expected a 1-D integer tensor; {_AGAIN}")
    indices, offsets = tensors["indices"].long().numpy(), tensors["offsets"].long().numpy()
    if (offsets.size != meta.n_layers + 1 or offsets[0] != 0 or offsets[-1] != indices.size
            or np.any(np.diff(offsets) < 0)):
        raise AtlasFormatError(f"{path}: offsets {offsets.tolist()[:8]}{'...' if offsets.size > 8 else ''} do not "
                               f"split {indices.size} indices into {meta.n_layers} layers (n_layers + 1 rising "
                               f"offsets from 0 to {indices.size}); {_AGAIN}")
    layers = [indices[offsets[i]:offsets[i + 1]] for i in range(meta.n_layers)]
    for i, idx in enumerate(layers):
        if idx.size and (idx.min() < 0 or idx.max() >= meta.width):
            bad = int(idx.max() if idx.max() >= meta.width else idx.min())
            raise AtlasFormatError(f"{path}: layer {i} names neuron {bad}, out of range for a neuron set of "
                                   f"{meta.width} neurons per layer (0..{meta.width - 1}); {_AGAIN}")
        if np.any(np.diff(idx) <= 0):
            repeated = np.diff(idx) == 0
            what = f"neuron {int(idx[1:][repeated][0])} twice" if repeated.any() else "its neurons out of order"
            raise AtlasFormatError(f"{path}: layer {i} lists {what} (each layer's indices must be sorted and "
                                   f"unique: one delta row or column per neuron); {_AGAIN}")
    if indices.size != meta.n_neurons:
        raise AtlasFormatError(f"{path}: holds {indices.size} neuron indices but its metadata records "
                               f"{meta.n_neurons} neurons; {_AGAIN}")
    mask = NeuronMask(layers, meta.width, model=meta.model or "", languages=meta.languages, params=meta.params,
                      atlas_version=meta.atlas_version or "")
    if mask.fingerprint() != meta.fingerprint:
        raise AtlasFormatError(f"{path}: the stored neurons do not match the stored fingerprint; the file is "
                               f"corrupt or was edited ({_AGAIN})")
    return mask


def _check_deltas(header: DeltaHeader, mask: NeuronMask, tensors: dict[str, torch.Tensor],
                  path: Path) -> dict[str, torch.Tensor]:
    """The delta tensors, after checking names, shapes, one floating dtype and finite values against the header."""
    import torch

    base = header.base
    if (mask.n_layers, mask.width) != (base.n_layers, base.width):
        raise AtlasFormatError(f"{path}: its neuron set is {mask.n_layers} layers × {mask.width} but its base model "
                               f"{base.n_layers} layers × {base.width} FFN neurons; {_AGAIN}")
    projections = [p for p in header.projections if p != "gate" or base.kind == "gated"]
    want: dict[str, tuple[int, int]] = {}
    for layer in mask.layers():
        k = int(mask.indices[layer].size)
        for proj in projections:
            rows = 2 * k if (proj == "up" and base.kind == "fused_gated") else k
            want[f"layers.{layer}.{proj}"] = (base.hidden, k) if proj == "down" else (rows, base.hidden)
    deltas = {k: t for k, t in tensors.items() if k.startswith("layers.")}
    unknown = sorted(set(tensors) - set(deltas) - {"indices", "offsets"})
    if unknown:
        raise AtlasFormatError(f"{path}: unexpected tensor(s) {unknown[:5]}; a delta file holds 'indices', "
                               "'offsets' and deltas named layers.<layer>.<projection>")
    if not deltas:
        raise AtlasFormatError(f"{path}: holds no delta tensors (layers.<layer>.<projection>), only the neuron set; "
                               f"{_AGAIN}")
    if set(deltas) != set(want):
        missing, extra = sorted(set(want) - set(deltas)), sorted(set(deltas) - set(want))
        raise AtlasFormatError(
            f"{path}: the deltas do not match its neuron set and projections {header.projections}: "
            + (f"missing {missing[:5]}" if missing else "") + ("; " if missing and extra else "")
            + (f"unexpected {extra[:5]}" if extra else "") + f"; {_AGAIN}")
    for key, shape in want.items():
        t = deltas[key]
        if tuple(t.shape) != shape:
            raise AtlasFormatError(f"{path}: delta {key} has shape {tuple(t.shape)}, expected {shape} "
                                   f"({mask.indices[int(key.split('.')[1])].size} neurons, hidden size "
                                   f"{base.hidden}); {_AGAIN}")
    dtypes = {str(t.dtype).removeprefix("torch.") for t in deltas.values()}
    if len(dtypes) > 1 or not dtypes <= set(DELTA_DTYPES):
        raise AtlasFormatError(f"{path}: delta dtype(s) {sorted(dtypes)}; the deltas must share one floating dtype "
                               f"of {list(DELTA_DTYPES)}; {_AGAIN}")
    for key, t in deltas.items():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise AtlasFormatError(f"{path}: delta {key} holds {bad} non-finite value(s) (NaN or inf), which would "
                                   "make every output NaN; training diverged? Load an earlier checkpoint, or "
                                   "train again with a lower learning rate")
    return {k: deltas[k] for k in want}


def _check_agreement(config: AdapterConfig, adapter: Adapter, path: Path) -> None:
    """The config and the weights file must describe the same adapter (the sha256 binds only the weights)."""
    header = adapter.header
    found = []
    if config.projections != header.projections:
        found.append(f"projections {config.projections} there vs {header.projections} in the weights")
    if config.neurons.fingerprint != adapter.mask.fingerprint():
        found.append(f"neuron set fingerprint {config.neurons.fingerprint[:12]} there vs "
                     f"{adapter.mask.fingerprint()[:12]} in the weights")
    for key in ("architecture", "n_layers", "width", "hidden", "kind", "transposed", "base_fingerprint"):
        if getattr(config.base_model, key) != getattr(header.base, key):
            found.append(f"base model {key} {getattr(config.base_model, key)!r} there vs "
                         f"{getattr(header.base, key)!r} in the weights")
    if config.delta_dtype != adapter.dtype:
        found.append(f"delta_dtype {config.delta_dtype!r} there vs {adapter.dtype!r} in the weights")
    if found:
        raise DeltaMismatchError(f"{path} and its {WEIGHTS_NAME} describe different adapters ({found[0]}); "
                                 f"{_AGAIN}")


def _explain(exc: ValidationError) -> str:
    """Pydantic's first error as one line: the field, what is wrong, what was there."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the record"
    if first["type"] == "missing":
        return f"field {where!r} is missing"
    got = first.get("input")
    shown = f", got {_short(got)}" if not isinstance(got, dict) else ""
    return f"field {where!r} is invalid ({first['msg']}{shown})"


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", type(None): "null", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def _versions() -> str:
    return ", ".join(str(v) for v in FORMAT_VERSIONS)


# --- the Hub --------------------------------------------------------------------------------------------------
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
