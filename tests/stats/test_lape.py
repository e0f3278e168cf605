"""neuron_atlas.stats.lape against the independent dense reference, on random counts (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.stats.lape import LapeParams, activation_probs, lape, language_sets, parse_size, parse_top, quantile, reach, sized_sets
from neuron_atlas.methods.ovr import ovr_scores, ovr_sets
from reference_lape import reference_above_bar, reference_sized_sets, reference_ovr_scores, reference_ovr_sets, reference_sets

rates = st.one_of(st.sampled_from([0.01, 0.05, 0.5, 0.9, 0.95, 1.0]), st.floats(0.001, 1.0))


@st.composite
def counts(draw):
    L, d, K = draw(st.integers(1, 4)), draw(st.integers(1, 12)), draw(st.integers(1, 6))
    tokens = np.array(draw(st.lists(st.integers(0, 40), min_size=K, max_size=K)), dtype=np.int64)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    fired = rng.integers(0, tokens + 1, size=(L, d, K))
    if draw(st.booleans()):  # all-zero neurons
        fired[:, : d // 2] = 0
    if draw(st.booleans()) and d > 1:  # exact ties: duplicated neurons
        fired[:, 1] = fired[:, 0]
    return fired, tokens


def _as_pairs(flat_sets, d):
    return {k: sorted((int(i) // d, int(i) % d) for i in s) for k, s in enumerate(flat_sets)}


@settings(max_examples=300, deadline=None)
@given(counts(), rates, rates, rates)
def test_sets_equal_reference(data, top_rate, filter_rate, bar_ratio):
    fired, tokens = data
    L, d, K = fired.shape
    params = LapeParams(top_rate, filter_rate, bar_ratio)
    got = language_sets(fired.reshape(L * d, K).T.copy(), tokens, params)
    assert len(got) == K  # trailing empty languages are kept
    assert _as_pairs(got, d) == reference_sets(fired, tokens, top_rate, filter_rate, bar_ratio)


def test_known_answer():
    # 2 languages, 1 layer, 4 neurons; neuron 0 fires only for language 0, neuron 3 only for language 1.
    fired = np.array([[[10, 0], [5, 5], [1, 1], [0, 9]]])
    tokens = np.array([10, 10])
    got = language_sets(fired.reshape(4, 2).T.copy(), tokens, LapeParams(top_rate=0.5, filter_rate=0.7, bar_ratio=0.7))
    assert [s.tolist() for s in got] == [[0], [3]]


def test_quantile_is_kth_smallest():
    values = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    assert quantile(values, 0.4) == 2.0  # round(5*0.4)=2 -> 2nd smallest
    assert quantile(values, 0.01) == 1.0  # k clamps to 1


@pytest.mark.parametrize("top,expected", [("1%", 0.01), (" 2.5% ", 0.025), (0.01, 0.01), ("0.3", 0.3), ("100%", 1.0)])
def test_parse_top(top, expected):
    assert parse_top(top) == pytest.approx(expected)


@pytest.mark.parametrize("top", ["0%", "101%", -0.1, 0, float("nan"), "abc", None, True, 1.5])
def test_parse_top_rejects(top):
    with pytest.raises(InvalidParameterError, match="top"):
        parse_top(top)


@pytest.mark.parametrize("kw", [{"filter_rate": float("nan")}, {"bar_ratio": -0.5}, {"top_rate": 0}, {"filter_rate": 2}])
def test_params_reject(kw):
    with pytest.raises(InvalidParameterError):
        LapeParams(**kw)


def _flat_pairs(flat, d):
    return [(int(i) // d, int(i) % d) for i in flat]


@settings(max_examples=200, deadline=None)
@given(counts(), st.integers(1, 30), rates, rates)
def test_sized_sets_equal_reference(data, size, filter_rate, bar_ratio):
    fired, tokens = data
    L, d, K = fired.shape
    flat = fired.reshape(L * d, K).T.copy()
    result = lape(flat, tokens, LapeParams(0.01, filter_rate, bar_ratio))
    picks, qualified = sized_sets(activation_probs(flat, tokens), result, list(range(K)), size)
    ref = reference_sized_sets(fired, tokens, size, filter_rate, bar_ratio)
    for k in range(K):
        assert _flat_pairs(picks[k], d) == ref[k][0]  # same neurons, same (entropy) order
        assert qualified[k] == ref[k][1]
        assert len(picks[k]) == min(size, qualified[k])


@settings(max_examples=200, deadline=None)
@given(counts(), st.integers(1, 30), st.sampled_from([0.5, 0.9, 0.95, 1.0]))
def test_ovr_sets_equal_reference(data, size, q):
    fired, tokens = data
    L, d, K = fired.shape
    if K < 2:
        return
    flat = fired.reshape(L * d, K).T.copy()
    scores = ovr_scores(activation_probs(flat, tokens), list(range(K)), q)
    np.testing.assert_array_equal(scores, reference_ovr_scores(fired, tokens, q).reshape(K, L * d))
    picks, qualified = ovr_sets(scores, size)
    ref = reference_ovr_sets(fired, tokens, size, q)
    for k in range(K):
        assert _flat_pairs(picks[k], d) == ref[k][0]
        assert qualified[k] == ref[k][1]


@settings(max_examples=100, deadline=None)
@given(counts(), rates)
def test_reach_counts_languages_above_bar(data, bar_ratio):
    fired, tokens = data
    L, d, K = fired.shape
    flat = fired.reshape(L * d, K).T.copy()
    p = activation_probs(flat, tokens)
    tags = [f"l{k}" for k in range(K)]
    count, tops = reach(p, quantile(p, bar_ratio), tags, few=K)
    _, per = reference_above_bar(fired, tokens, [(i // d, i % d) for i in range(L * d)], bar_ratio)
    for i in range(L * d):
        assert count[i] == len(per[(i // d, i % d)])
        assert sorted(tops[i].split(",") if tops[i] else []) == sorted(f"l{k}" for k in per[(i // d, i % d)])


def test_ovr_needs_two_languages():
    with pytest.raises(InvalidParameterError, match="2 languages"):
        ovr_scores(np.ones((1, 3)), [0])


@pytest.mark.parametrize("size,expected", [(500, 500), ("0.5%", 50), ("0.001%", 1), (1, 1)])
def test_parse_size(size, expected):
    assert parse_size(size, 10_000) == expected


@pytest.mark.parametrize("size", [0, -3, 1.5, "abc", True, "0%"])
def test_parse_size_rejects(size):
    with pytest.raises(InvalidParameterError):
        parse_size(size, 10_000)
