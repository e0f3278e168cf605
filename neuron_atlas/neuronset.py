"""NeuronSet: the language-specific neurons of one query, as Arrow (and pandas)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .format.schema import META_KEY

SCHEMA = pa.schema(
    [
        ("model", pa.string()), ("lang", pa.string()), ("layer", pa.int16()), ("neuron", pa.int32()),
        ("p", pa.float64()), ("entropy", pa.float64()), ("rank", pa.int32()), ("score", pa.float64()),
        ("n_langs", pa.int32()), ("top_langs", pa.string()),
    ]
)
TINY = 10  # a language with fewer neurons than this gets a notice saying why and what to ask instead


@dataclass
class NeuronSet:
    """Rows (model, lang, layer, neuron, p, entropy, rank, score, n_langs, top_langs) sorted by (lang, layer, neuron).

    ``p`` is the neuron's activation probability for that language, ``entropy`` its LAPE entropy over
    the language set, ``rank`` its position by entropy among neurons passing the filter (for the scoring methods
    ``ovr``, ``mean_diff``, ``t``: by its ``score`` within its language; ``score`` is null for LAPE). ``n_langs`` counts the languages
    whose p exceeds LAPE's activation bar on the neuron and ``top_langs`` names the first few by p: what the
    neuron reaches besides its language. ``notices`` holds one line per language whose set is tiny or short of
    the asked ``size``, saying why and what to ask instead.

    ``Atlas.neurons`` makes one. ``len(s)`` is the number of rows; polars, DuckDB, pyarrow and pandas take it
    directly (the Arrow C stream interface).

    Attributes:
        table: the rows, a pyarrow Table with the columns above (schema ``neuronset.SCHEMA``).
        model: the model's slug.
        langs: the canonical tags asked for, in order (a language with an empty set is listed too).
        n_layers: the model's number of layers.
        ffn_width: the model's FFN width (neurons per layer).
        params: the query's parameters (method, size, top_rate, filter_rate, bar_ratio, among, panel, revision,
            atlas; ``source`` for imported sets) (default: empty).
        notices: one line per language (or per condition, e.g. ``among``) worth a note (default: empty).
    """

    table: pa.Table
    model: str
    langs: list[str]
    n_layers: int
    ffn_width: int
    params: dict[str, Any] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)

    def to_arrow(self) -> pa.Table:
        """The rows as a pyarrow Table carrying the set's description in its schema metadata.

        Returns:
            pyarrow.Table: ``table`` (columns model, lang, layer, neuron, p, entropy, rank, score, n_langs,
            top_langs) with the JSON of model, langs, n_layers, ffn_width, ``params`` and ``notices`` under the
            schema metadata key ``neuron_atlas.format.schema.META_KEY``.
        """
        meta = {"model": self.model, "langs": self.langs, "n_layers": self.n_layers, "ffn_width": self.ffn_width,
                **self.params, "notices": self.notices}
        return self.table.replace_schema_metadata({META_KEY: json.dumps(meta, default=str).encode()})

    def to_pandas(self):
        """The rows as a pandas DataFrame (needs pandas: ``pip install 'neuron-atlas[pandas]'``; on pandas >= 3
        ``pd.DataFrame.from_arrow(s)`` gives the same).

        Returns:
            pandas.DataFrame: the columns of ``to_arrow()``, one row per (lang, layer, neuron).

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            import pandas  # noqa: F401 - only to say what is missing; pyarrow does the conversion
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install 'neuron-atlas[pandas]' (or use to_arrow())") from None
        return self.to_arrow().to_pandas()

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow C stream of ``to_arrow()``: polars (``pl.DataFrame(s)``), DuckDB (``duckdb.sql("FROM s")``),
        pyarrow (``pa.table(s)``) and pandas (``pd.DataFrame.from_arrow(s)``) take a NeuronSet directly.

        Args:
            requested_schema: a PyCapsule holding the schema the consumer asks for (default None: the set's own).

        Returns:
            object: a PyCapsule holding an ``ArrowArrayStream`` of ``to_arrow()``.
        """
        return self.to_arrow().__arrow_c_stream__(requested_schema)

    def __len__(self) -> int:
        return self.table.num_rows

    def __repr__(self) -> str:
        counts = ", ".join(f"{lang}: {n}" for lang, n in self.sizes().items())
        lines = list(self.notices.values())
        notes = "".join(f"\n  note: {text}" for text in lines[:5])
        notes += f"\n  ... {len(lines) - 5} more notes in .notices" if len(lines) > 5 else ""
        return f"NeuronSet(model={self.model!r}, {len(self)} neurons; {counts}){notes}"

    def sizes(self) -> dict[str, int]:
        """Neurons per language (0 for languages with an empty set).

        Returns:
            dict[str, int]: neurons of each language of ``langs``, in that order.
        """
        got = dict(zip(*np.unique(self.table.column("lang").to_numpy(zero_copy_only=False), return_counts=True)))
        return {lang: int(got.get(lang, 0)) for lang in self.langs}

    def by_layer(self) -> pa.Table:
        """Neurons per (lang, layer), every layer listed (zeros included): the per-layer distribution.

        Returns:
            pyarrow.Table: ``len(langs) * n_layers`` rows in (lang, layer) order, columns ``lang``, ``layer``
            (int16) and ``n_neurons`` (int64).
        """
        counts = np.zeros((len(self.langs), self.n_layers), dtype=np.int64)
        index = {lang: k for k, lang in enumerate(self.langs)}
        k = np.array([index[x] for x in self.table.column("lang").to_pylist()], dtype=np.int64)
        np.add.at(counts, (k, self.table.column("layer").to_numpy().astype(np.int64)), 1)
        return pa.table({
            "lang": np.repeat(np.array(self.langs, dtype=object), self.n_layers),
            "layer": np.tile(np.arange(self.n_layers, dtype=np.int16), len(self.langs)),
            "n_neurons": counts.ravel(),
        })

    def indices(self) -> dict[str, list[np.ndarray]]:
        """``{lang: [sorted neuron indices of layer 0, layer 1, ...]}``, the layout published LAPE files use.

        Returns:
            dict[str, list[numpy.ndarray]]: per language of ``langs``, ``n_layers`` sorted int64 arrays of neuron
            indices (empty where the layer has none).
        """
        out = {}
        for lang in self.langs:
            rows = self.table.filter(pc.equal(self.table.column("lang"), lang))
            layer = rows.column("layer").to_numpy()
            neuron = rows.column("neuron").to_numpy()
            out[lang] = [np.sort(neuron[layer == i]).astype(np.int64) for i in range(self.n_layers)]
        return out

    def mask(self) -> np.ndarray:
        """Boolean [n_layers, ffn_width] mask of the union over this set's languages.

        Returns:
            numpy.ndarray: bool ``[n_layers, ffn_width]``, True at every (layer, neuron) of any language's set.
        """
        m = np.zeros((self.n_layers, self.ffn_width), dtype=bool)
        m[self.table.column("layer").to_numpy(), self.table.column("neuron").to_numpy()] = True
        return m
