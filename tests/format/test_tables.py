"""One description per stored table: a table added here (its description and one writer call) is a SQL view, is
checked by ``verify``, gets a card config and a JSON schema, with no other edit."""
import json

import pyarrow as pa
import pytest
from pydantic import BaseModel, Field

from neuron_atlas.format import schema
from neuron_atlas.atlas import Atlas
from neuron_atlas.hub.card import dataset_configs
from neuron_atlas.format.schema import Table, add_table
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.verify import verify
from neuron_atlas.format.writer import AtlasWriter


class GainRow(BaseModel):
    """A made-up per-(model, language) table: one gain per layer."""

    layer: int = Field(ge=0)
    gain: float


GAIN = Table("gain", GainRow, pa.schema([("layer", pa.int16()), ("gain", pa.float64())]),
             "gain/model={model}/lang={lang}/gain.parquet", split="lang")


@pytest.fixture
def gain_table():
    saved = list(schema.TABLES), dict(schema.TABLE), dict(schema.ARROW_SCHEMAS), dict(schema.ROW_MODELS)
    add_table(GAIN)
    yield GAIN
    schema.TABLES[:] = saved[0]
    for live, old in zip((schema.TABLE, schema.ARROW_SCHEMAS, schema.ROW_MODELS), saved[1:]):
        live.clear()
        live.update(old)


def _gain_atlas(root):
    make_atlas(root, model="toy", n_layers=3, ffn_width=16, langs=["tl", "id", "en"], tokens=500, seed=3)
    writer = AtlasWriter(root)
    for lang, gain in (("tgl_Latn", [1.0, 2.0, 3.0]), ("ind_Latn", [0.5, 0.25, 0.125])):
        writer.write_table("gain", pa.table({"layer": pa.array([0, 1, 2], pa.int16()), "gain": gain}),
                           model="toy", lang=lang)
    return root


def test_added_table_is_a_view_checked_and_carded(gain_table, tmp_path):
    root = _gain_atlas(tmp_path / "atlas")
    atlas = Atlas(root)
    rows = atlas.sql("SELECT model, lang, sum(gain) AS g FROM gain GROUP BY ALL ORDER BY lang")
    assert rows.to_pylist() == [{"model": "toy", "lang": "ind_Latn", "g": 0.875}, {"model": "toy", "lang": "tgl_Latn", "g": 6.0}]
    assert verify(root) == []
    configs = {c["config_name"]: c["data_files"] for c in dataset_configs(atlas.layout)}
    assert configs["toy-gain"] == [{"split": "ind_Latn", "path": "gain/model=toy/lang=ind_Latn/gain.parquet"},
                                   {"split": "tgl_Latn", "path": "gain/model=toy/lang=tgl_Latn/gain.parquet"}]
    written = schema.write_json_schemas(tmp_path / "schemas")
    gain_schema = json.loads(next(p for p in written if p.name == "gain.schema.json").read_text())
    assert gain_schema["x-arrow-types"] == {"layer": "int16", "gain": "double"}


def test_added_table_corrupt_file_is_named_and_left_out(gain_table, tmp_path):
    root = _gain_atlas(tmp_path / "atlas")
    bad = root / "gain/model=toy/lang=tgl_Latn/gain.parquet"
    data = bytearray(bad.read_bytes())
    data[40] ^= 0xFF  # a flipped byte in the first data page: the footer still reads, the page checksum does not
    bad.write_bytes(bytes(data))
    problems = verify(root)
    assert [p.path for p in problems] == [str(bad)], problems
    bad.write_bytes(b"PAR1 not parquet")
    assert any(p.path == str(bad) for p in verify(root))
    with pytest.warns(UserWarning, match="failed validation"):
        rows = Atlas(root).sql("SELECT DISTINCT lang FROM gain").column("lang").to_pylist()
    assert rows == ["ind_Latn"]


def test_write_table_checks_name_keys_and_columns(gain_table, tmp_path):
    root = _gain_atlas(tmp_path / "atlas")
    writer = AtlasWriter(root)
    with pytest.raises(ValueError, match="Did you mean: gain"):
        writer.write_table("gian", pa.table({"layer": pa.array([0], pa.int16())}), model="toy")
    with pytest.raises(ValueError, match="partitioned by"):
        writer.write_table("gain", pa.table({"layer": pa.array([0], pa.int16()), "gain": [1.0]}), model="toy")
    with pytest.raises(ValueError, match="column 'gain' is missing"):
        writer.write_table("gain", pa.table({"layer": pa.array([0], pa.int16())}), model="toy", lang="tgl_Latn")
