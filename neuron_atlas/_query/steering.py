"""DiffMean steering vectors from an atlas' stored residual means: steering with no pass over text. The vectors are
added by ``interventions.steer_residual`` at the points the means were taken."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import InvalidParameterError
from ..stats.moments import diff_mean_weights
from ..format.schema import ModelRow
from ..format.layout import Layout
from ..format.reader import read_residual


class ResidualCache:
    """Residual means of one model read so far: per layer a ``[languages, hidden]`` matrix over the model's languages
    as listed when the cache was made (open the atlas again to see languages added since); a warm query reads nothing.
    ``tokens``: the counts shards' token counts, which each residual file must repeat."""

    def __init__(self, layout: Layout, row: ModelRow, langs: list[str], tokens: dict[str, int] | None = None) -> None:
        self.layout, self.row, self.langs, self.tokens = layout, row, list(langs), tokens or {}
        self.index = {lang: i for i, lang in enumerate(self.langs)}
        self._means: dict[int, np.ndarray] = {}  # layer -> [len(langs), hidden] float64
        self._read: dict[int, np.ndarray] = {}  # layer -> [len(langs)] bool: which rows hold read values

    def layer(self, layer: int, rows: np.ndarray) -> np.ndarray:
        """The ``[len(self.langs), hidden]`` means at ``layer``, its ``rows`` read (the other rows may be zeros)."""
        return self.layers([layer], rows)[0]

    def layers(self, layers: list[int], rows: np.ndarray) -> list[np.ndarray]:
        """``layer()`` for several layers, reading (in parallel) each language not yet read at once for all of them."""
        for layer in layers:
            self._read.setdefault(layer, np.zeros(len(self.langs), dtype=bool))
        done = np.logical_and.reduce([self._read[layer][rows] for layer in layers])
        todo = [int(r) for r in np.unique(rows[~done])]
        if todo:
            with ThreadPoolExecutor(max_workers=8) as pool:
                read = list(pool.map(lambda r: read_residual(self.layout, self.row, self.langs[r], layers,
                                                            self.tokens.get(self.langs[r]))[0], todo))
            for layer in layers:  # allocated once the files have shown rows of the model's hidden size
                if layer not in self._means:
                    self._means[layer] = np.zeros((len(self.langs), self.row.hidden_size))
            for r, values in zip(todo, read):
                for i, layer in enumerate(layers):
                    self._means[layer][r], self._read[layer][r] = values[i], True
        return [self._means[layer] for layer in layers]


def check_layer(layer: int | None, row: ModelRow) -> list[int]:
    """The layers asked: one ``output_hidden_states`` index 0..n_layers, or all of them for None."""
    if layer is None:
        return list(range(row.n_layers + 1))
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer <= row.n_layers:
        raise InvalidParameterError(
            f"layer must be an output_hidden_states index of {row.model!r}: 0 (the embeddings) to {row.n_layers} "
            f"(after the final norm), or None for all; got {layer!r}")
    return [int(layer)]


def steering_vector(cache: ResidualCache, lang: str, others: list[str], layer: int | None) -> np.ndarray:
    """DiffMean m_lang − (1/|O|) Σ_{l∈O} m_l at ``layer`` (``[hidden]``) or at every layer (``[n_layers + 1, hidden]``),
    float32, over the stored residual means (equal weight per language)."""
    layers = check_layer(layer, cache.row)
    target, rows = cache.index[lang], [cache.index[o] for o in others]
    means = cache.layers(layers, np.array([target, *rows], dtype=np.int64))
    weights = diff_mean_weights(len(cache.langs), target, rows)
    vector = np.stack([weights @ m for m in means]).astype(np.float32)
    return vector[0] if layer is not None else vector
