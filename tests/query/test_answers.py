"""One answer per question: the `lape` view holds the default top-1 % sets and nothing else, imported sets have a view
of their own with their published rate, and the Python API answers imported sets at that rate with a notice."""
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import neuron_atlas as na
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.writer import write_imported_sets


def _row(slug: str, n_layers: int = 2, ffn_width: int = 8) -> ModelRow:
    return ModelRow(model=slug, hf_repo="org/m", architecture="LlamaForCausalLM", n_layers=n_layers,
                    ffn_width=ffn_width, hidden_size=4, activation="silu", corpus="wiki", source="import:org/sets@1",
                    created=dt.datetime.now(dt.timezone.utc))


@pytest.fixture
def mixed(tmp_path):
    """A built model and two imported ones, at 5 % and at 1 %."""
    make_atlas(tmp_path, model="built", n_layers=3, ffn_width=80, langs=["eng_Latn", "swh_Latn", "tgl_Latn", "fra_Latn"],
               seed=4)
    sets5 = {"sw": [np.array([1, 3]), np.array([0, 2, 5])], "en": [np.array([4]), np.array([])]}
    write_imported_sets(tmp_path, _row("imp5"), sets5, top_rate=0.05, source="org/five@1")
    write_imported_sets(tmp_path, _row("imp1"), {"sw": [np.array([6]), np.array([7])], "en": [np.array([]), np.array([1])]},
                        top_rate=0.01, source="org/one@2")
    return na.open(tmp_path)


def _pairs(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in ("model", "lang", "layer", "neuron"))))


def test_lape_view_is_the_default_sets_only(mixed):
    view = mixed.sql("SELECT model, lang, layer, neuron FROM lape")
    assert _pairs(view) == _pairs(mixed.neurons("built").to_arrow())  # exactly the Python API's default answer
    assert mixed.sql("SELECT count(*) AS n FROM lape WHERE rank IS NULL").column("n")[0].as_py() == 0


def test_imported_view_holds_the_published_sets_at_their_rate(mixed):
    got = mixed.sql("SELECT model, lang, layer, neuron, top_rate, source FROM imported ORDER BY ALL")
    want = [("imp1", "eng_Latn", 1, 1), ("imp1", "swh_Latn", 0, 6), ("imp1", "swh_Latn", 1, 7),
            ("imp5", "eng_Latn", 0, 4), ("imp5", "swh_Latn", 0, 1), ("imp5", "swh_Latn", 0, 3),
            ("imp5", "swh_Latn", 1, 0), ("imp5", "swh_Latn", 1, 2), ("imp5", "swh_Latn", 1, 5)]
    assert _pairs(got) == want
    rates = dict(zip(got.column("model").to_pylist(), got.column("top_rate").to_pylist()))
    sources = dict(zip(got.column("model").to_pylist(), got.column("source").to_pylist()))
    assert rates == {"imp1": 0.01, "imp5": 0.05} and sources == {"imp1": "org/one@2", "imp5": "org/five@1"}
    for model in ("imp1", "imp5"):  # the same rows as the Python API's default answer
        assert _pairs(mixed.neurons(model).to_arrow()) == [p for p in want if p[0] == model]


def test_imported_sets_answer_the_default_top_at_their_rate_with_a_notice(mixed):
    s = mixed.neurons("imp5", lang="sw")
    assert len(s) == 5 and s.params["top_rate"] == 0.05
    assert "published top='5%'" in s.notices["top"] and "not the default top='1%'" in s.notices["top"]
    assert "top" not in mixed.neurons("imp1", lang="sw").notices  # published at the default rate: nothing to say
    assert len(mixed.neurons("imp5", lang="sw", top="5%")) == 5
    with pytest.raises(na.InvalidParameterError, match=r"published at top='5%' only .* ask top='5%', or leave top unset"):
        mixed.neurons("imp5", lang="sw", top="1%")
    with pytest.raises(na.InvalidParameterError, match="among= and other filter/bar rates cannot be computed"):
        mixed.neurons("imp5", lang="sw", among=["sw", "en"])
