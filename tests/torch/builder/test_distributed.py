"""Ray builds on a local 2-CPU cluster: equal to a single-process build bit for bit, survive a killed worker,
resume to nothing, refuse mixed settings."""
import collections
import os
import signal
import threading
import time

import pyarrow.parquet as pq
import pytest

import torch

ray = pytest.importorskip("ray", reason="needs the [ray] extra (pip install -e '.[ray]')")
psutil = pytest.importorskip("psutil")
from test_record import TEXTS  # noqa: E402
from tiny_models import tiny  # noqa: E402

from neuron_atlas.builder.run import build  # noqa: E402
from neuron_atlas.corpus.local import LocalCorpus  # noqa: E402
from neuron_atlas.errors import AtlasError  # noqa: E402
from neuron_atlas.modeling.load import LoadedModel, load_packaged_tokenizer  # noqa: E402
from neuron_atlas.format.writer import AtlasWriter  # noqa: E402

TAGS = ["tgl_Latn", "ind_Latn", "deu_Latn", "rus_Cyrl", "cmn_Hans", "fra_Latn", "spa_Latn", "swh_Latn"]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """One text file per language (a local corpus: the workers read it themselves); random repeats per language."""
    folder = tmp_path_factory.mktemp("text")
    rng = __import__("random").Random()
    for i, tag in enumerate(TAGS):
        lines = [TEXTS[(i + rng.randrange(2)) % len(TEXTS)] for _ in range(60)]
        (folder / f"{tag}.txt").write_text("\n".join(lines) + "\n")
    return LocalCorpus(folder)


@pytest.fixture(scope="module")
def loaded():
    tokenizer = load_packaged_tokenizer("gemma-3-270m")  # gemma prepends BOS: exercises the BOS skip
    seed = int(torch.randint(0, 2**31, ()).item())  # fresh random weights on every run
    return LoadedModel(tiny("gemma3", vocab_size=len(tokenizer), seed=seed).double(), tokenizer, "test/tiny", "sha256:0")


def run(model, corpus, out, **kw):
    """A build; without Ray on one torch thread, as each Ray actor (num_cpus=1) has: float32 sums over another
    thread count may differ in the last bit and flip a borderline activation, which bit-for-bit checks would see."""
    kw = {"slug": "tiny", "tokens_per_language": 60, "seq_len": 16, "batch_size": 3, "progress": False} | kw
    threads = torch.get_num_threads()
    if not kw.get("ray"):
        torch.set_num_threads(1)
    try:
        return build(model, corpus, kw.pop("langs", "all"), out=out, **kw)
    finally:
        torch.set_num_threads(threads)


def tables(out, slug="tiny"):
    """Every count shard, v2 statistics file (activations, residual) and derived table (the model row holds a build
    date, so it is left out)."""
    found = {p.relative_to(out): pq.read_table(p) for kind in ("counts", "activations", "residual")
             for p in sorted((out / kind).glob(f"model={slug}/lang=*/*.parquet"))}
    found |= {p.relative_to(out): pq.read_table(p) for p in sorted((out / "lape").glob(f"model={slug}/*.parquet"))}
    return found


def assert_same_atlas(a, b, slug="tiny"):
    ta, tb = tables(a, slug), tables(b, slug)
    assert ta.keys() == tb.keys() and len(ta) > 2
    assert {p.parts[0] for p in ta} >= {"counts", "activations", "residual"}
    for key in ta:
        assert ta[key].equals(tb[key]), key


def test_ray_build_equals_single_process_bit_for_bit(loaded, corpus, tmp_path):
    single = run(loaded, corpus, tmp_path / "single")
    spread = run(loaded, corpus, tmp_path / "ray", ray="auto", workers=2)
    assert spread.built == single.built and sorted(spread.built) == sorted(TAGS)
    assert_same_atlas(tmp_path / "single", tmp_path / "ray")
    row_single, row_ray = AtlasWriter(tmp_path / "single").model("tiny"), AtlasWriter(tmp_path / "ray").model("tiny")
    assert row_single.model_dump(exclude={"created"}) == row_ray.model_dump(exclude={"created"})

    # a second run over the complete atlas does nothing: no worker started, no file rewritten
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file()}
    again = run(loaded, corpus, tmp_path / "ray", ray="auto", workers=2)
    assert again.built == {} and sorted(again.existing) == sorted(TAGS)
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*") if p.is_file()}

    # other settings are refused before anything is counted
    with pytest.raises(AtlasError, match=r"tokens_per_language: atlas has 60, this build 40"):
        run(loaded, corpus, tmp_path / "ray", ray="auto", tokens_per_language=40)
    # a worker's own error reaches the driver as itself, and a pool larger than the cluster is refused
    (tmp_path / "empty").mkdir()  # a folder without a model: only the worker loading it finds out
    with pytest.raises(AtlasError, match=r"^cannot load a model config from '.*empty'"):
        run(str(tmp_path / "empty"), corpus, tmp_path / "other", ray="auto", workers=1)
    with pytest.raises(AtlasError, match=r"workers=3: the Ray cluster fits 1 to 2 workers"):
        run(loaded, corpus, tmp_path / "other", ray="auto", workers=3)


def worker_pids():
    """PIDs of this test's own Ray actors (descendants of this process), by their process title."""
    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "ShardWorker" in " ".join(proc.cmdline()):
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def test_killed_worker_loses_nothing_and_no_shard_is_written_twice(loaded, corpus, tmp_path, monkeypatch):
    settings = {"tokens_per_language": 160, "seq_len": 8, "batch_size": 1}  # ~23 batches a shard: time to kill
    run(loaded, corpus, tmp_path / "single", **settings)
    writes = collections.Counter()
    add_counts = AtlasWriter.add_counts

    def counted(self, model, lang, *a, **kw):
        writes[lang] += 1
        return add_counts(self, model, lang, *a, **kw)

    monkeypatch.setattr(AtlasWriter, "add_counts", counted)
    out, reports, killed = tmp_path / "ray", [], []
    thread = threading.Thread(target=lambda: reports.append(run(loaded, corpus, out, ray="auto", workers=2, **settings)))
    thread.start()
    deadline = time.monotonic() + 120
    while not list(out.glob("counts/model=tiny/lang=*/counts.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = worker_pids()
    assert len(pids) == 2, pids
    os.kill(pids[0], signal.SIGKILL)
    killed.append(pids[0])
    thread.join(timeout=300)
    assert reports, "the build did not finish"
    report = reports[0]
    assert any("a worker died counting" in m for m in report.messages), report.messages
    assert sorted(report.built) == sorted(TAGS) and set(writes.values()) == {1} and sorted(writes) == sorted(TAGS)
    assert not list(out.rglob("*.tmp"))
    assert_same_atlas(tmp_path / "single", out)


def test_cli_builds_several_models_on_one_ray_pool(loaded, corpus, tmp_path):
    """`neuron-atlas build --model DIR --model smollm2-135m --ray auto`: the workers load both models by name and
    share the pool; each model's atlas equals its single-process build bit for bit."""
    from typer.testing import CliRunner

    from neuron_atlas.cli import app

    seed = int(torch.randint(0, 2**31, ()).item())
    tiny("llama", vocab_size=len(loaded.tokenizer), seed=seed).save_pretrained(tmp_path / "tiny-llama")
    loaded.tokenizer.save_pretrained(tmp_path / "tiny-llama")
    settings = ["--langs", "tl,ru", "--tokens-per-language", "64", "--seq-len", "33", "--batch-size", "2"]
    args = ["build", "--model", str(tmp_path / "tiny-llama"), "--model", "smollm2-135m", "--corpus", str(corpus.path),
            *settings, "--out", str(tmp_path / "ray"), "--ray", "auto", "--workers", "2", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tiny-llama: counted 2 languages" in result.output and "smollm2-135m: counted 2 languages" in result.output
    for name in ("tiny-llama", "smollm2-135m"):
        source = str(tmp_path / name) if name == "tiny-llama" else name
        run(source, corpus, tmp_path / "single", slug=name, langs="tl,ru", tokens_per_language=64, seq_len=33,
            batch_size=2)
        assert_same_atlas(tmp_path / "single", tmp_path / "ray", slug=name)
    bad = CliRunner().invoke(app, args[:5] + ["--slug", "x"] + args[5:])
    assert bad.exit_code == 1 and "--slug names one model" in str(bad.exception)
