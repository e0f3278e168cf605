"""The ``models`` row of an imported model: its shape from flags, else from its Hugging Face config.json."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ..errors import AtlasError, InvalidParameterError
from ..format.schema import ModelRow


def hub_config(hf_repo: str) -> dict:
    """The model's ``config.json`` from the Hub or the local HF cache (honours HF_ENDPOINT and HF_HUB_OFFLINE)."""
    from huggingface_hub import hf_hub_download

    from ..hub.address import endpoint

    try:
        path = hf_hub_download(hf_repo, "config.json", endpoint=endpoint())
    except Exception as exc:
        raise AtlasError(
            f"could not read config.json of {hf_repo} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "pass --n-layers, --ffn-width and --hidden-size instead"
        ) from exc
    config = json.loads(Path(path).read_text())
    return config.get("text_config", config)


def model_row(model: str, *, hf_repo: str | None, n_layers: int | None, ffn_width: int | None,
              hidden_size: int | None, architecture: str | None = None, activation: str | None = None,
              source: str, corpus: str = "", tokens_per_language: int = 0, revision: str = "") -> ModelRow:
    """Build the provenance row; shape fields not given are read (with the architecture) from ``hf_repo``'s config.json."""
    from .. import __version__

    if None in (n_layers, ffn_width, hidden_size):
        if not hf_repo:
            raise InvalidParameterError(
                f"the shape of model {model!r} is unknown: pass n_layers, ffn_width and hidden_size "
                "(--n-layers --ffn-width --hidden-size), or hf_repo (--hf-repo) to read them from its config.json"
            )
        config = hub_config(hf_repo)
        n_layers = n_layers or config.get("num_hidden_layers")
        ffn_width = ffn_width or config.get("intermediate_size")
        hidden_size = hidden_size or config.get("hidden_size")
        architecture = architecture or (config.get("architectures") or ["unknown"])[0]
        activation = activation or config.get("hidden_act") or config.get("hidden_activation")
        if None in (n_layers, ffn_width, hidden_size):
            raise AtlasError(f"config.json of {hf_repo} lacks num_hidden_layers/intermediate_size/hidden_size; pass them")
    return ModelRow(
        model=model, hf_repo=hf_repo or "", revision=revision, architecture=architecture or "unknown",
        n_layers=n_layers, ffn_width=ffn_width, hidden_size=hidden_size, activation=activation or "silu",
        corpus=corpus or "unknown", tokens_per_language=tokens_per_language, source=source,
        builder_version=__version__, created=dt.datetime.now(dt.timezone.utc),
    )
