"""The neuron mask type: which FFN neurons of which layers, in numpy (torch only on request), and its file format.

A ``NeuronMask`` holds one sorted index array per layer plus where it came from (model, languages, LAPE
parameters, atlas version). It converts to boolean ``[n_layers, width]`` masks, to the weight entries the
neurons own (rows of gate/up, columns of down; rows of fc_in, columns of fc_out), and to a small
safetensors file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AtlasFormatError, MaskError
from ..modeling.shape import FFNShape, ffn_shapes
from .._utils.files import write_bytes

MASK_FORMAT = "neuron-atlas-mask"
MASK_FORMAT_VERSION = 1
# Subnetwork fine-tuning deltas (neuron_atlas.finetune) carry their mask in the same header, so they load as masks.
DELTA_FORMAT = "neuron-atlas-delta"
DELTA_FORMAT_VERSION = 1


@dataclass(frozen=True)
class WeightMask:
    """The entries of one projection weight owned by the selected neurons: ``index`` along ``axis`` of ``shape``."""

    projection: str  # "gate", "up" (also fused gate_up / fc_in) or "down" (also fc_out)
    shape: tuple[int, int]
    axis: int
    index: np.ndarray

    def dense(self) -> np.ndarray:
        """Boolean array of ``shape``, True on the owned rows or columns."""
        out = np.zeros(self.shape, dtype=bool)
        if self.axis == 0:
            out[self.index] = True
        else:
            out[:, self.index] = True
        return out

    @property
    def size(self) -> int:
        """Number of weight entries owned."""
        return int(self.index.size * self.shape[1 - self.axis])


class NeuronMask:
    """Selected FFN neurons: one sorted, unique int64 index array per layer, with provenance metadata."""

    __slots__ = ("indices", "width", "model", "languages", "params", "atlas_version")

    def __init__(self, indices: Sequence[Iterable[int]], width: int, *, model: str = "",
                 languages: Sequence[str] = (), params: Mapping[str, Any] | None = None,
                 atlas_version: str = "") -> None:
        if not isinstance(width, (int, np.integer)) or width <= 0:
            raise MaskError(f"width must be a positive number of FFN neurons per layer, got {width!r}")
        if len(indices) == 0:
            raise MaskError("a neuron mask needs at least one layer")
        arrays = []
        for layer, idx in enumerate(indices):
            arr = np.unique(np.asarray(list(idx) if not hasattr(idx, "__array__") else idx).reshape(-1))
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise MaskError(f"layer {layer}: neuron indices must be integers, got dtype {arr.dtype}")
            arr = arr.astype(np.int64)
            if arr.size and (arr[0] < 0 or arr[-1] >= width):
                bad = int(arr[-1] if arr[-1] >= width else arr[0])
                raise MaskError(f"layer {layer}: neuron {bad} is out of range; this mask has {width} neurons per layer "
                                f"(valid indices 0..{width - 1})")
            arrays.append(arr)
        self.indices: tuple[np.ndarray, ...] = tuple(arrays)
        self.width = int(width)
        self.model = model
        self.languages = tuple(languages)
        self.params = dict(params or {})
        self.atlas_version = atlas_version

    # --- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_dense(cls, mask: np.ndarray, **meta: Any) -> NeuronMask:
        """From a boolean ``[n_layers, width]`` array."""
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.dtype != bool:
            raise MaskError(f"expected a boolean [n_layers, width] array, got {mask.dtype} of shape {mask.shape}")
        return cls([np.flatnonzero(row) for row in mask], mask.shape[1], **meta)

    @classmethod
    def from_pairs(cls, pairs: Any, shape: tuple[int, int], **meta: Any) -> NeuronMask:
        """From ``(layer, neuron)`` pairs (a list of tuples or an ``[n, 2]`` integer array)."""
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2) if len(pairs) else np.zeros((0, 2), np.int64)
        n_layers, width = shape
        bad = arr[(arr[:, 0] < 0) | (arr[:, 0] >= n_layers)]
        if bad.size:
            raise MaskError(f"layer {int(bad[0, 0])} is out of range; the model has {n_layers} layers "
                            f"(valid 0..{n_layers - 1})")
        order = np.argsort(arr[:, 0], kind="stable")
        arr = arr[order]
        cuts = np.searchsorted(arr[:, 0], np.arange(n_layers + 1))
        return cls([arr[cuts[i]:cuts[i + 1], 1] for i in range(n_layers)], width, **meta)

    def random_like(self, *, per_layer: bool = True, seed: int = 0) -> NeuronMask:
        """A random mask of the same size: the same count in every layer, or the same total over all layers."""
        rng = np.random.default_rng(seed)
        if per_layer:
            picks = [rng.choice(self.width, size=idx.size, replace=False) for idx in self.indices]
        else:
            flat = rng.choice(self.n_layers * self.width, size=len(self), replace=False)
            picks = [flat[flat // self.width == i] % self.width for i in range(self.n_layers)]
        return NeuronMask(picks, self.width, model=self.model, languages=(),
                          params={"random_like": self.fingerprint(), "per_layer": per_layer, "seed": seed})

    # --- views --------------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_layers, self.width

    def __len__(self) -> int:
        return int(sum(idx.size for idx in self.indices))

    def counts(self) -> np.ndarray:
        """Selected neurons per layer."""
        return np.array([idx.size for idx in self.indices], dtype=np.int64)

    def layers(self) -> list[int]:
        """Layers with at least one selected neuron."""
        return [i for i, idx in enumerate(self.indices) if idx.size]

    def dense(self) -> np.ndarray:
        """Boolean ``[n_layers, width]`` mask."""
        out = np.zeros(self.shape, dtype=bool)
        for i, idx in enumerate(self.indices):
            out[i, idx] = True
        return out

    def pairs(self) -> np.ndarray:
        """``[n, 2]`` int64 array of (layer, neuron), sorted."""
        layer = np.repeat(np.arange(self.n_layers, dtype=np.int64), self.counts())
        return np.stack([layer, np.concatenate(self.indices)], axis=1)

    def to_torch(self, *, dense: bool = False, device: Any = None) -> Any:
        """Per-layer int64 index tensors, or with ``dense=True`` a bool ``[n_layers, width]`` tensor (needs torch)."""
        import torch

        if dense:
            return torch.from_numpy(self.dense()).to(device)
        return [torch.from_numpy(idx.copy()).to(device) for idx in self.indices]

    def fingerprint(self) -> str:
        """sha256 of the shape and the indices: identifies the neuron set whatever its metadata."""
        digest = hashlib.sha256(f"{self.n_layers}x{self.width}".encode())
        for idx in self.indices:
            digest.update(np.int64(idx.size).tobytes())
            digest.update(idx.astype("<i8").tobytes())
        return digest.hexdigest()

    def metadata(self) -> dict[str, Any]:
        """JSON-able description: shape, provenance and fingerprint."""
        return {"n_layers": self.n_layers, "width": self.width, "n_neurons": len(self), "model": self.model,
                "languages": list(self.languages), "params": self.params, "atlas_version": self.atlas_version,
                "fingerprint": self.fingerprint()}

    def describe(self) -> str:
        """One line naming the set, for error messages."""
        who = f"model {self.model!r}, " if self.model else ""
        langs = f"languages {', '.join(self.languages)}, " if self.languages else ""
        return f"{who}{langs}{len(self)} neurons over {self.n_layers} layers × {self.width}"

    def __repr__(self) -> str:
        return f"NeuronMask({self.describe()})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NeuronMask) and self.shape == other.shape
                and all(np.array_equal(a, b) for a, b in zip(self.indices, other.indices)))

    __hash__ = None  # type: ignore[assignment]  # mutable metadata; use fingerprint()

    # --- set algebra --------------------------------------------------------------------------------------
    def _combine(self, other: NeuronMask, op) -> NeuronMask:
        if not isinstance(other, NeuronMask):
            return NotImplemented
        if self.shape != other.shape:
            raise MaskError(f"cannot combine masks of different shapes: {self.describe()} and {other.describe()}")
        if self.model and other.model and self.model != other.model:
            raise MaskError(f"cannot combine masks of different models: {self.model!r} and {other.model!r}")
        params = self.params if self.params == other.params else {}
        return NeuronMask([op(a, b) for a, b in zip(self.indices, other.indices)], self.width,
                          model=self.model or other.model,
                          languages=list(dict.fromkeys(self.languages + other.languages)), params=params,
                          atlas_version=self.atlas_version if self.atlas_version == other.atlas_version else "")

    def union(self, other: NeuronMask) -> NeuronMask:
        return self._combine(other, np.union1d)

    def intersection(self, other: NeuronMask) -> NeuronMask:
        return self._combine(other, lambda a, b: np.intersect1d(a, b, assume_unique=True))

    __or__ = union
    __and__ = intersection

    # --- model shapes -------------------------------------------------------------------------------------
    def check(self, target: Any) -> list[FFNShape]:
        """The per-layer FFN shapes of ``target`` (a model or a list of FFNShape), raising MaskError on a mismatch."""
        shapes = ffn_shapes(target)
        if len(shapes) != self.n_layers:
            raise MaskError(f"the mask ({self.describe()}) has {self.n_layers} layers but the model has "
                            f"{len(shapes)} FFN layers; use a neuron set computed for this model")
        widths = {s.width for s in shapes}
        if widths != {self.width}:
            raise MaskError(f"the mask ({self.describe()}) has {self.width} neurons per layer but the model's FFN "
                            f"width is {sorted(widths)}; use a neuron set computed for this model")
        return shapes

    def weight_masks(self, target: Any) -> list[dict[str, WeightMask]]:
        """Per layer, the owned entries of each projection: gate/up rows and down columns (gated), gate_up rows
        [gate; up] (fused), fc_in rows and fc_out columns (plain); transposed for Conv1D weights."""
        out = []
        for shape, idx in zip(self.check(target), self.indices):
            layer = {}
            for name, wshape in shape.weight_shapes().items():
                index = np.concatenate([idx, idx + shape.width]) if (name == "up" and shape.kind == "fused_gated") else idx
                axis = 1 if name == "down" else 0
                layer[name] = WeightMask(name, wshape, 1 - axis if shape.transposed else axis, index)
            out.append(layer)
        return out

    # --- files --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the mask as safetensors (CSR ``indices``/``offsets``) with JSON metadata, atomically."""
        from safetensors.numpy import save

        offsets = np.concatenate([[0], np.cumsum(self.counts())]).astype(np.int64)
        data = save({"indices": np.concatenate(self.indices).astype(np.int32), "offsets": offsets},
                    metadata={"format": MASK_FORMAT, "format_version": str(MASK_FORMAT_VERSION),
                              "mask": json.dumps(self.metadata(), default=str)})
        write_bytes(data, path)

    @classmethod
    def load(cls, path: str | Path) -> NeuronMask:
        """Read a mask written by ``save``; checks the format and the fingerprint."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                header = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open is not iterable
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for corrupt headers
            raise AtlasFormatError(f"{path}: not a readable safetensors file ({exc})") from None
        return cls._from_tensors(tensors, header, path)

    @classmethod
    def _from_tensors(cls, tensors: Mapping[str, np.ndarray], header: Mapping[str, str], path: Any) -> NeuronMask:
        if header.get("format") not in (MASK_FORMAT, DELTA_FORMAT) or "mask" not in header:
            raise AtlasFormatError(f"{path}: not a neuron-atlas mask (format {header.get('format')!r})")
        meta = json.loads(header["mask"])
        indices, offsets = np.asarray(tensors["indices"]), np.asarray(tensors["offsets"])
        if offsets.size != meta["n_layers"] + 1 or offsets[-1] != indices.size:
            raise AtlasFormatError(f"{path}: offsets do not match {meta['n_layers']} layers / {indices.size} indices")
        mask = cls([indices[offsets[i]:offsets[i + 1]] for i in range(meta["n_layers"])], meta["width"],
                   model=meta.get("model", ""), languages=meta.get("languages", ()), params=meta.get("params"),
                   atlas_version=meta.get("atlas_version", ""))
        if mask.fingerprint() != meta["fingerprint"]:
            raise AtlasFormatError(f"{path}: the stored neurons do not match the stored fingerprint; the file is corrupt")
        return mask
