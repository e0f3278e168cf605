"""The published LAPE neuron-set files neuron-atlas knows, so importing them needs no flags beyond the file.

Each entry was read from the file and the script that wrote it (language order, top rate) and is matched
by the file's sha256, never by its name (names such as ``llama-1`` say little).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AtlasError, did_you_mean
from .._files import sha256_file

_RUCAI = ("en", "zh", "fr", "es", "vi", "id", "ja")
_SUBNET = ("mt", "af", "is", "cy", "mk", "lv", "lt", "sl", "sk", "et", "ka", "ne")
_CLAS = ("en", "ar", "bo", "da", "de", "es", "fr", "hi", "it", "ja", "ko", "mt", "nl", "no", "pl", "pt",
         "ru", "sv", "tr", "zh", "sk", "el", "kk", "sw", "ka", "uk", "fa", "th", "id", "vi", "cs", "ro")


@dataclass(frozen=True)
class KnownFile:
    """One published neuron-set file: the model it describes, its language order and how it was made."""

    name: str  # preset name, e.g. "clas-bench/llama-1"
    sha256: str
    model: str  # atlas slug
    hf_repo: str
    architecture: str
    n_layers: int
    ffn_width: int
    hidden_size: int
    languages: tuple[str, ...]
    top_rate: float
    source: str  # repo @ commit of the release
    licence: str
    corpus: str
    tokens_per_language: int = 0
    missing: tuple[str, ...] = field(default=())  # languages whose lists the file lost
    activation: str = "silu"


KNOWN: tuple[KnownFile, ...] = (
    KnownFile("rucaibox/llama-2-7b", "6653cb977fb85a5e61b21dd8f08480e7d69a18bdabdd6e374a56203b5c018c0d",
              "llama-2-7b", "meta-llama/Llama-2-7b-hf", "LlamaForCausalLM", 32, 11008, 4096, _RUCAI, 0.01,
              "RUCAIBox/Language-Specific-Neurons@fdeca23", "none stated", "wikipedia"),
    KnownFile("rucaibox/mistral-7b", "6ff1c4e00294319ff0788071b587f36dea8816f870bbd0923be8b5d90055a39b",
              "mistral-7b-v0.1", "mistralai/Mistral-7B-v0.1", "MistralForCausalLM", 32, 14336, 4096, _RUCAI, 0.01,
              "RUCAIBox/Language-Specific-Neurons@fdeca23", "none stated", "wikipedia", missing=("ja",)),
    KnownFile("subnetwork/llama-3.1-8b", "eb69502938bbcc22a5365748dcc44145b7b438d35d37e6d4b58532971c3baae8",
              "llama-3.1-8b", "meta-llama/Llama-3.1-8B", "LlamaForCausalLM", 32, 14336, 4096, _SUBNET, 0.05,
              "d-gurgurov/Language-Subnetwork-Enhancement-LLMs@087cbf9", "MIT", "glotcc"),
    KnownFile("subnetwork/mistral-nemo", "1810e7f78352c643db1f946cc977a3673cab8ebb1297c59954f2f6cd45a8ca43",
              "mistral-nemo-base-2407", "mistralai/Mistral-Nemo-Base-2407", "MistralForCausalLM", 40, 14336, 5120,
              _SUBNET, 0.05, "d-gurgurov/Language-Subnetwork-Enhancement-LLMs@087cbf9", "MIT", "glotcc"),
    KnownFile("clas-bench/llama-3.1-8b-instruct", "50367fca52be163cf2705d2d057f8437c522022c16da8b56d0026ecdb7b1b2a7",
              "llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "LlamaForCausalLM", 32, 14336, 4096, _CLAS,
              0.01, "d-gurgurov/CLaS-Bench@b3d0062", "Apache-2.0", "culturax", tokens_per_language=10_000_000),
    KnownFile("clas-bench/aya-expanse-8b", "60b433ff2991ed1637e3ec6d5f7be6cbdcdf58ac9c178443d643631e9b18c445",
              "aya-expanse-8b", "CohereLabs/aya-expanse-8b", "CohereForCausalLM", 32, 14336, 4096, _CLAS, 0.01,
              "d-gurgurov/CLaS-Bench@b3d0062", "Apache-2.0", "culturax", tokens_per_language=10_000_000),
)




def find_known(path: str | Path) -> KnownFile | None:
    """The registry entry of the file at ``path`` (matched by content hash), or None."""
    digest = sha256_file(path)
    return next((k for k in KNOWN if k.sha256 == digest), None)


def known(name: str) -> KnownFile:
    """The registry entry called ``name`` (e.g. ``clas-bench/llama-3.1-8b-instruct``)."""
    for entry in KNOWN:
        if entry.name == name:
            return entry
    names = [k.name for k in KNOWN]
    raise AtlasError(f"no known published file called {name!r}; known: {', '.join(names)}.{did_you_mean(name, names)}")
