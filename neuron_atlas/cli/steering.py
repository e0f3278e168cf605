"""``neuron-atlas steering-vector``: a language's DiffMean residual-stream vector from the stored means, written as
safetensors, numpy ``.npy`` or Parquet (chosen by the output's extension)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import AtlasOpt, err, open_atlas, split_list

WRITERS = (".safetensors", ".npy", ".parquet")


def steering_vector_command(
    model: str,
    lang: Annotated[str, typer.Option("--lang", "-l", help="target language: tl, tgl, tgl_Latn, Tagalog")],
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write: .safetensors, .npy or .parquet")],
    layer: Annotated[Optional[int], typer.Option("--layer", help="output_hidden_states index (0: embeddings; n_layers: after the final norm); default all")] = None,
    against: Annotated[Optional[list[str]], typer.Option("--against", help="languages (or one panel name) to contrast with; default all the model's others")] = None,
    atlas: AtlasOpt = None,
) -> None:
    """Write MODEL's DiffMean steering vector for --lang: its mean hidden state minus the mean of the other languages'."""
    from ..errors import InvalidParameterError

    suffix = output.suffix.lower()
    if suffix not in WRITERS:
        raise InvalidParameterError(f"--output {output}: unknown extension {suffix or '(none)'!r}; "
                                    f"use one of {', '.join(WRITERS)}")
    if output.is_dir():
        raise InvalidParameterError(f"--output {output} is a folder; give a file path such as {output / ('vector' + suffix)}")
    items = split_list(against)
    opened = open_atlas(atlas)
    vector = opened.steering_vector(model, lang, layer=layer, against=items[0] if items and len(items) == 1 else items)
    target = opened.langs_of(model)
    meta = {"model": model, "lang": lang, "layer": "all" if layer is None else str(layer),
            "against": ",".join(items) if items else "all", "languages": str(len(target))}
    write_vector(vector, output, meta, layer)
    err.print(f"[green]{model} {lang}: steering vector {list(vector.shape)} written to {output}", highlight=False)


def write_vector(vector, path: Path, meta: dict[str, str], layer: int | None) -> None:
    """Write ``vector`` ([hidden] or [layers, hidden] float32) atomically, in the format of ``path``'s extension."""
    import io
    import json

    import numpy as np
    import pyarrow as pa

    from .._utils.files import write_bytes
    from ..format.schema import META_KEY

    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import save

        write_bytes(save({"steering_vector": np.ascontiguousarray(vector)}, metadata=meta), path)
    elif suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, vector)
        write_bytes(buf.getvalue(), path)
    else:
        import pyarrow.parquet as pq

        rows = vector[None] if vector.ndim == 1 else vector
        layers = [layer] if layer is not None else list(range(rows.shape[0]))
        table = pa.table({"layer": pa.array(layers, pa.int16()),
                          "vector": pa.array(list(rows), pa.list_(pa.float32()))})
        buf = io.BytesIO()
        pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta)}), buf)
        write_bytes(buf.getvalue(), path)
