"""The importers' options, each default and help text written once; the importer functions and
``neuron-atlas import`` read them from here (torch-free, so the CLI can import it at start-up)."""
from __future__ import annotations

from dataclasses import dataclass

from .._utils.settings import setting


@dataclass(frozen=True)
class ImportConfig:
    """What an import needs beyond the files, when the file is not a known published one (then all come from it)."""

    model: str | None = setting(None, "model slug in the atlas, e.g. llama-3.1-8b-instruct")
    langs: str | None = setting(None, "the file's language order, comma-separated: en,zh,fr")
    top_rate: float | None = setting(None, "LAPE top rate the sets were made with, e.g. 0.01")
    missing: str | None = setting(None, "languages whose lists the file lost, e.g. ja")
    source: str | None = setting(None, "where the file comes from, e.g. org/repo@commit")
    hf_repo: str | None = setting(None, "the model's Hub repo (its config.json gives the shape)")
    n_layers: int | None = setting(None, "decoder layers of the model (without --hf-repo)")
    ffn_width: int | None = setting(None, "FFN neurons per layer (intermediate size)")
    hidden_size: int | None = setting(None, "the model's hidden size, the width of the residual stream (without --hf-repo)")
    preset: str | None = setting(None, "a known published file's name (default: recognised by content)")


IMPORT = ImportConfig()  # the defaults
