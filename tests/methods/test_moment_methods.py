"""mean_diff and t selections, DiffMean steering vectors and activation means, queried from an atlas whose statistics
were computed from raw random activations; every expected value is computed again from those raw activations."""
import datetime as dt

import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.errors import InvalidParameterError, MissingStatisticsError
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.writer import AtlasWriter, write_imported_sets

TAGS = ["eng_Latn", "tgl_Latn", "ind_Latn", "zlm_Latn", "fra_Latn", "hin_Deva"]
L, D, HIDDEN = 3, 16, 8


def raw_language(rng, k):
    """One language's raw act(gate) [tokens, L·D] and hidden states [tokens, L+1, HIDDEN]."""
    tokens = int(rng.integers(40, 300))
    loc = rng.normal(0, 0.4, size=L * D) + (rng.random(L * D) < 0.15) * rng.normal(0, 2, size=L * D)
    acts = rng.normal(loc, rng.lognormal(-1, 0.5, size=L * D), size=(tokens, L * D))
    hidden = rng.normal(rng.normal(0, 1, size=(L + 1, HIDDEN)), 0.5, size=(tokens, L + 1, HIDDEN))
    return acts, hidden


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """(atlas root, raw activations per language, raw hidden states per language)."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("v2")
    writer = AtlasWriter(root)
    writer.add_model(ModelRow(model="raw", hf_repo="org/raw-lm", architecture="Synthetic", n_layers=L, ffn_width=D,
                              hidden_size=HIDDEN, activation="silu", corpus="udhr", tokens_per_language=300, seq_len=64,
                              dtype="float32", created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))
    acts, hidden = {}, {}
    for k, tag in enumerate(TAGS):
        a, h = raw_language(rng, k)
        acts[tag], hidden[tag] = a, h
        writer.add_counts("raw", tag, (a > 0).sum(0).reshape(L, D), a.shape[0],
                          moments=(a.mean(0).reshape(L, D), a.var(0).reshape(L, D)), residual=h.mean(0))
    writer.finalize("raw")
    return root, acts, hidden


def dense_top(score, size):
    return sorted(range(score.size), key=lambda i: (-score[i], i))[:size]


def reference_scores(method, acts, target, others):
    own = acts[target]
    if method == "mean_diff":
        return own.mean(0) - sum(acts[o].mean(0) for o in others) / len(others)
    rest = np.concatenate([acts[o] for o in others])
    return (own.mean(0) - rest.mean(0)) / np.sqrt(own.var(0) / len(own) + rest.var(0) / len(rest))


@pytest.mark.parametrize("method", ["mean_diff", "t"])
@pytest.mark.parametrize("size, among", [(5, None), ("10%", None), (12, ["tl", "id", "ms", "hi"])])
def test_selection_equals_dense_reference(raw, method, size, among):
    root, acts, _ = raw
    atlas = na.open(root)
    s = atlas.neurons("raw", method=method, size=size, among=among)
    pool = sorted(TAGS) if among is None else ["tgl_Latn", "ind_Latn", "zlm_Latn", "hin_Deva"]
    n = size if isinstance(size, int) else round(L * D * 0.10)
    assert s.langs == pool
    for target in pool:
        score = reference_scores(method, acts, target, [t for t in pool if t != target])
        rows = _rows(s, target)
        want = dense_top(score, n)
        assert sorted(rows["flat"]) == sorted(want)
        by_rank = [f for _, f in sorted(zip(rows["rank"], rows["flat"]))]
        assert by_rank == want  # rank is the position by score
        np.testing.assert_allclose(rows["score"], score[rows["flat"]], rtol=1e-9, atol=1e-12)
        # p, entropy and reach from the counts, as LAPE computes them over the compared languages
        fired = np.stack([(acts[lang] > 0).sum(0) for lang in pool]).astype(np.float64)
        p = fired / np.array([len(acts[lang]) for lang in pool])[:, None]
        share = p / p.sum(0)
        ent = -np.where(share > 0, share * np.log(np.where(share > 0, share, 1)), 0).sum(0)
        bar = np.sort(p.ravel())[round(p.size * 0.95) - 1]
        k = pool.index(target)
        np.testing.assert_allclose(rows["p"], p[k, rows["flat"]], rtol=1e-12)
        np.testing.assert_allclose(rows["entropy"], ent[rows["flat"]], rtol=1e-9, atol=1e-12)
        assert rows["n_langs"] == [int((p[:, f] > bar).sum()) for f in rows["flat"]]


def _rows(s, lang):
    t = s.to_arrow().to_pylist()
    mine = [r for r in t if r["lang"] == lang]
    return {"flat": [r["layer"] * D + r["neuron"] for r in mine], "rank": [r["rank"] for r in mine],
            "score": np.array([r["score"] for r in mine]), "p": np.array([r["p"] for r in mine]),
            "entropy": np.array([r["entropy"] for r in mine]), "n_langs": [r["n_langs"] for r in mine]}


def test_methods_need_size(raw):
    with pytest.raises(InvalidParameterError, match="size"):
        na.open(raw[0]).neurons("raw", lang="tl", method="mean_diff")


def test_lape_and_ovr_unchanged_by_the_v2_statistics(tmp_path):
    v1 = make_atlas(tmp_path / "v1", n_layers=3, ffn_width=40, langs=6, seed=3)
    v2 = make_atlas(tmp_path / "v2", n_layers=3, ffn_width=40, langs=6, seed=3, stats=True)
    for kw in ({}, {"top": "5%"}, {"size": 20}, {"size": 20, "method": "ovr"}, {"among": ["en", "fr", "de"]}):
        a, b = na.open(v1).neurons("toy", **kw).to_arrow(), na.open(v2).neurons("toy", **kw).to_arrow()
        assert a.equals(b), kw


AGAINST = [(None, [t for t in TAGS if t != "tgl_Latn"]), ("id", ["ind_Latn"]),
           (["id", "ms", "tl"], ["ind_Latn", "zlm_Latn"]), ("hi,fr", ["hin_Deva", "fra_Latn"])]


@pytest.mark.parametrize("layer", [None, 0, 2, L])
@pytest.mark.parametrize("against, others", AGAINST)
def test_steering_vector_is_diffmean_of_raw_hidden_states(raw, layer, against, others):
    root, _, hidden = raw
    got = na.open(root).steering_vector("raw", "tl", layer=layer, against=against)
    want = hidden["tgl_Latn"].mean(0) - sum(hidden[o].mean(0) for o in others) / len(others)
    want = want if layer is None else want[layer]
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_steering_vector_bad_input(raw):
    atlas = na.open(raw[0])
    with pytest.raises(InvalidParameterError, match=f"0 \\(the embeddings\\) to {L}"):
        atlas.steering_vector("raw", "tl", layer=L + 1)
    with pytest.raises(InvalidParameterError, match="no language to contrast"):
        atlas.steering_vector("raw", "tl", against="tl")
    with pytest.raises(na.UnknownLanguageError):
        atlas.steering_vector("raw", "xx-nope")


def test_activation_means_are_raw_means(raw):
    root, acts, _ = raw
    got = na.open(root).activation_means("raw", "hi")
    assert got.dtype == np.float32 and got.shape == (L, D)
    np.testing.assert_allclose(got, acts["hin_Deva"].mean(0).reshape(L, D), rtol=1e-6, atol=1e-7)


def test_v1_atlas_answers_lape_and_ovr_and_gives_the_rebuild_command(toy_atlas):
    atlas = na.open(toy_atlas)
    assert len(atlas.neurons("toy", lang="tl", top="5%"))
    assert len(atlas.neurons("toy", lang="tl", method="ovr", size=10))
    for call in (lambda: atlas.neurons("toy", lang="tl", method="mean_diff", size=10),
                 lambda: atlas.neurons("toy", lang="tl", method="t", size=10),
                 lambda: atlas.steering_vector("toy", "tl", layer=1),
                 lambda: atlas.activation_means("toy", "tl")):
        with pytest.raises(MissingStatisticsError) as info:
            call()
        message = str(info.value)
        assert "counts only" in message and "tgl_Latn" in message
        assert (f"neuron-atlas build --model synthetic/toy --corpus synthetic --langs {','.join(atlas.langs_of('toy'))} "
                f"--slug toy --tokens-per-language 3000 --out {str(toy_atlas).rstrip('/')}-v2") in message


def test_v2_atlas_without_moments_says_what_it_holds(raw, tmp_path):
    import shutil

    root = tmp_path / "residual-only"
    shutil.copytree(raw[0], root)
    shutil.rmtree(root / "activations")  # format v2 with residual means only, like the embedded atlas
    atlas = na.open(root)
    assert atlas.steering_vector("raw", "tl", layer=1).shape == (HIDDEN,)
    with pytest.raises(MissingStatisticsError) as info:
        atlas.neurons("raw", lang="tl", method="t", size=4)
    message = str(info.value)
    assert "holds its counts and residual-stream means (format v2)" in message and "counts only" not in message
    assert "size budget" not in message  # only the embedded atlas leaves moments out for its size
    assert "neuron-atlas build --model org/raw-lm" in message


def test_imported_sets_answer_lape_and_refuse_moment_methods_with_a_build_command(tmp_path):
    row = ModelRow(model="imp", hf_repo="org/llm", architecture="LlamaForCausalLM", n_layers=2, ffn_width=8,
                   hidden_size=4, activation="silu", corpus="wiki", source="import:test",
                   created=dt.datetime.now(dt.timezone.utc))
    write_imported_sets(tmp_path, row, {"en": [np.array([1, 3]), np.array([])], "sw": [np.array([]), np.array([7])]},
                        top_rate=0.01, source="test")
    atlas = na.open(tmp_path)
    assert len(atlas.neurons("imp", lang="sw")) == 1
    for call in (lambda: atlas.neurons("imp", lang="sw", method="t", size=3),
                 lambda: atlas.steering_vector("imp", "sw", layer=1)):
        with pytest.raises(MissingStatisticsError, match="neuron-atlas build --model org/llm --corpus udhr --langs "
                                                         "eng_Latn,swh_Latn --slug imp --out "):
            call()
