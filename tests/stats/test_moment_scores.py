"""Moment-based scores against dense references written from the papers' definitions: raw random activations are
pooled per language in numpy and every statistic is computed from them from scratch, never from stored moments."""
import numpy as np
import pytest

from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.stats.moments import (
    diff_mean,
    mean_diff_scores,
    top_scores,
    welch_t_scores,
)


def raw_activations(seed: int, n_langs: int = 5, n: int = 40) -> list[np.ndarray]:
    """Per language, a [tokens, n] matrix of activations with language-specific means, spreads and token counts."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_langs):
        tokens = int(rng.integers(3, 200))
        loc, scale = rng.normal(0, 0.5, size=n), rng.lognormal(-1, 0.7, size=n)
        out.append(rng.normal(loc, scale, size=(tokens, n)) + rng.normal(0.3, 0.1))
    return out


def stored(acts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an atlas stores per language: mean, population variance, token count."""
    return (np.stack([a.mean(0) for a in acts]), np.stack([a.var(0) for a in acts]),
            np.array([a.shape[0] for a in acts]))


def dense_top(score: np.ndarray, size: int) -> list[int]:
    """The ``size`` highest scores, ties by index, by a plain sort."""
    return sorted(range(score.size), key=lambda i: (-score[i], i))[:size]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_diff_is_language_arithmetics_score(seed):
    acts = raw_activations(seed, n_langs=6)
    mean, _, _ = stored(acts)
    got = mean_diff_scores(mean, list(range(6)))
    for t in range(6):
        others = [acts[lang].mean(0) for lang in range(6) if lang != t]  # equal weight per language, whatever its tokens
        want = acts[t].mean(0) - sum(others) / len(others)
        np.testing.assert_allclose(got[t], want, rtol=1e-11, atol=1e-12)
    # a subset of rows gives the same rows
    np.testing.assert_array_equal(mean_diff_scores(mean, [4, 1]), got[[4, 1]])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_t_against_pooled_raw_tokens(seed):
    acts = raw_activations(seed, n_langs=5)
    mean, var, tokens = stored(acts)
    got = welch_t_scores(mean, var, tokens, [0, 3, 4])
    for i, t in enumerate([0, 3, 4]):
        rest = np.concatenate([acts[lang] for lang in range(5) if lang != t])
        own = acts[t]
        want = (own.mean(0) - rest.mean(0)) / np.sqrt(own.var(0) / own.shape[0] + rest.var(0) / rest.shape[0])
        np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-10)


def test_welch_t_with_a_large_offset_keeps_its_precision():
    # means far from 0 relative to the spread: a naive E[x²] − μ² would cancel away the variance
    acts = [a + 1e4 for a in raw_activations(5, n_langs=4)]
    mean, var, tokens = stored(acts)
    got = welch_t_scores(mean, var, tokens, [2])
    rest = np.concatenate([acts[lang] for lang in (0, 1, 3)])
    want = (acts[2].mean(0) - rest.mean(0)) / np.sqrt(acts[2].var(0) / len(acts[2]) + rest.var(0) / len(rest))
    np.testing.assert_allclose(got[0], want, rtol=1e-6)


def test_welch_t_of_constant_neurons():
    mean = np.array([[1.0, 2.0], [1.0, 1.0]])
    var = np.zeros((2, 2))
    got = welch_t_scores(mean, var, np.array([10, 20]), [0, 1])
    np.testing.assert_array_equal(got, [[0.0, np.inf], [0.0, -np.inf]])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("size", [1, 7, 40, 100])
def test_top_scores_equal_a_plain_sort(seed, size):
    acts = raw_activations(seed, n_langs=4)
    mean, var, tokens = stored(acts)
    for scores in (mean_diff_scores(mean, [0, 1, 2, 3]), welch_t_scores(mean, var, tokens, [0, 1, 2, 3])):
        for row, picks in zip(scores, top_scores(scores, size)):
            assert picks.tolist() == dense_top(row, size)


def test_ties_go_to_the_lower_layer_and_neuron():
    scores = np.array([[0.5, 2.0, 1.0, 2.0, 1.0, 2.0 + 1e-13, np.nan]])
    assert top_scores(scores, 4)[0].tolist() == [1, 3, 5, 2]  # 2.0 three times (rounded), then the first 1.0
    assert top_scores(scores, 7)[0].tolist() == [1, 3, 5, 2, 4, 0]  # NaN is never picked


def test_diff_mean_vector():
    rng = np.random.default_rng(3)
    hidden = [rng.normal(size=(int(rng.integers(2, 50)), 3, 8)) for _ in range(4)]  # tokens × layers × hidden
    means = np.stack([h.mean(0) for h in hidden])
    got = diff_mean(means, 2, [0, 3])
    np.testing.assert_allclose(got, hidden[2].mean(0) - (hidden[0].mean(0) + hidden[3].mean(0)) / 2, rtol=1e-12, atol=1e-13)
    with pytest.raises(InvalidParameterError):
        diff_mean(means, 2, [2, 3])
    with pytest.raises(InvalidParameterError):
        diff_mean(means, 2, [])
