"""Importers: the real published neuron-set files (read in place from ../shared/reference) and raw activation files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import typer
from reference_lape import reference_sets
from typer.testing import CliRunner

from neuron_atlas.atlas import Atlas
from neuron_atlas.errors import AtlasError
from neuron_atlas.importers import KNOWN, find_known, import_activations, import_neuron_sets, known
from neuron_atlas.cli.importers import import_command
from neuron_atlas.testing import make_atlas

import torch

FILES = {
    "rucaibox/llama-2-7b": "rucaibox/LLaMA-2-7B.neuron.pth",
    "rucaibox/mistral-7b": "rucaibox/Mistral-7B.neuron.pth",
    "subnetwork/llama-3.1-8b": "gurgurov-subnetwork/llama-3.1-5",
    "subnetwork/mistral-nemo": "gurgurov-subnetwork/nemo-5",
    "clas-bench/llama-3.1-8b-instruct": "clas-bench/llama-1",
    "clas-bench/aya-expanse-8b": "clas-bench/aya-1",
}
# language-neuron pairs, from the reference README
PAIRS = {"rucaibox/llama-2-7b": 5024, "rucaibox/mistral-7b": 6022, "subnetwork/llama-3.1-8b": 37547,
         "subnetwork/mistral-nemo": 47120, "clas-bench/llama-3.1-8b-instruct": 13198, "clas-bench/aya-expanse-8b": 11361}


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("import")(import_command)
    app.command("other")(lambda: None)  # two commands, so `import` is a named sub-command as in the real CLI
    return app


def _run(*args: str):
    return CliRunner().invoke(_cli(), ["import", *map(str, args)], env={"COLUMNS": "200"})


def _main(*args: str):
    """The real command line: errors on stderr, one line, exit 2 for bad input (the CLI's contract)."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "import", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


def _bad_input(proc, message: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and proc.stdout == "" and len(lines) == 1 and message in lines[0], proc.stderr


def _raw(reference, name: str) -> list[list[np.ndarray]]:
    """The file as torch loads it: list[lang][layer] of index arrays."""
    return [[t.numpy() for t in per_layer] for per_layer in torch.load(reference / FILES[name], weights_only=True)]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, reference):
    """An atlas holding every known published file, imported by the CLI with no flag but --atlas."""
    root = tmp_path_factory.mktemp("imported") / "atlas"
    for rel in FILES.values():
        result = _run(reference / rel, "--atlas", root)
        assert result.exit_code == 0, result.output
    return Atlas(root)


# -- the registry -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FILES))
def test_registry_entries_match_the_files(name, reference):
    entry = known(name)
    assert find_known(reference / FILES[name]) == entry  # recognised by content
    sets = _raw(reference, name)
    assert len(sets) == len(entry.languages) - len(entry.missing)
    assert all(len(per_layer) == entry.n_layers for per_layer in sets)
    assert max(int(idx.max()) for per_layer in sets for idx in per_layer if idx.size) < entry.ffn_width
    assert sum(idx.size for per_layer in sets for idx in per_layer) == PAIRS[name]


def test_registry_names_and_unknown_preset():
    assert len({k.name for k in KNOWN}) == len({k.model for k in KNOWN}) == len({k.sha256 for k in KNOWN}) == len(KNOWN)
    with pytest.raises(AtlasError, match="known: .*clas-bench/llama-3.1-8b-instruct"):
        known("clas-bench/llama")


# -- published neuron sets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FILES))
def test_imported_sets_are_exactly_the_files(imported, name, reference):
    entry = known(name)
    got = imported.neurons(entry.model, top=entry.top_rate)
    assert len(got) == PAIRS[name]
    indices = got.indices()
    raw = _raw(reference, name)
    present = [lang for lang in entry.languages if lang not in entry.missing]
    for lang, tag in zip(entry.languages, got.langs):
        want = raw[present.index(lang)] if lang in present else [np.zeros(0)] * entry.n_layers
        for layer in range(entry.n_layers):
            np.testing.assert_array_equal(indices[tag][layer], np.sort(want[layer]))
    row = imported.model(entry.model)
    assert (row.n_layers, row.ffn_width, row.hf_repo) == (entry.n_layers, entry.ffn_width, entry.hf_repo)
    assert row.source == f"import:{entry.source}"


def test_readme_counts_and_the_clas_bench_swahili_set(imported, reference):
    llama2 = imported.neurons("llama-2-7b", lang="en").sizes()
    assert llama2 == {"eng_Latn": 95}
    clas = imported.neurons("llama-3.1-8b-instruct", lang=["en", "bo"]).sizes()
    assert clas == {"eng_Latn": 78, "bod_Tibt": 1099}
    sw = imported.neurons("llama-3.1-8b-instruct", lang="sw")
    swahili = _raw(reference, "clas-bench/llama-3.1-8b-instruct")[known("clas-bench/llama-3.1-8b-instruct").languages.index("sw")]
    assert len(sw) == sum(idx.size for idx in swahili) > 0
    meta = sw.to_arrow().schema.metadata[b"neuron_atlas"].decode()
    assert "CLaS-Bench" in meta
    assert imported.neurons("mistral-7b-v0.1", lang="ja").sizes() == {"jpn_Jpan": 0}  # the lost language: empty
    with pytest.raises(AtlasError, match="imported from .*published at top='1%' only"):
        imported.neurons("llama-3.1-8b-instruct", lang="sw", top="5%")
    sql = imported.sql("SELECT count(*) AS n FROM imported WHERE model = 'llama-3.1-8b-instruct' AND lang = 'swh_Latn'")
    assert sql.column("n").to_pylist() == [len(sw)]


def test_language_count_must_match_unless_missing_is_named(tmp_path, reference):
    path = reference / FILES["rucaibox/mistral-7b"]
    langs = ["en", "zh", "fr", "es", "vi", "id", "ja"]
    shape = {"n_layers": 32, "ffn_width": 14336, "hidden_size": 4096, "architecture": "MistralForCausalLM"}
    with pytest.raises(AtlasError, match="holds 6 language lists but 7 languages.*--missing ja"):
        import_neuron_sets(path, tmp_path / "a", "mistral-7b", langs, top_rate=0.01, source="x", **shape)
    with pytest.raises(AtlasError, match="holds 6 language lists but 5"):
        import_neuron_sets(path, tmp_path / "a", "mistral-7b", langs, top_rate=0.01, source="x",
                           missing=["vi", "ja"], **shape)
    with pytest.raises(AtlasError, match=r"missing=\['ko'\] are not among"):
        import_neuron_sets(path, tmp_path / "a", "mistral-7b", langs, top_rate=0.01, source="x", missing=["ko"], **shape)
    sizes = import_neuron_sets(path, tmp_path / "a", "mistral-7b", langs, top_rate=0.01, source="x", missing=["ja"],
                               **shape)
    assert sizes["jpn_Jpan"] == 0 and sum(sizes.values()) == PAIRS["rucaibox/mistral-7b"]
    result = _run(path, "--atlas", tmp_path / "b", "--preset", "rucaibox/mistral-7b", "--missing", "")
    assert result.exit_code == 0, result.output  # the registry knows 'ja' is missing


def test_indices_beyond_the_ffn_width_are_refused(tmp_path, reference):
    path = reference / FILES["rucaibox/llama-2-7b"]
    with pytest.raises(AtlasError, match="beyond the FFN width 11000"):
        import_neuron_sets(path, tmp_path / "a", "llama-2-7b", list(known("rucaibox/llama-2-7b").languages),
                           top_rate=0.01, source="x", n_layers=32, ffn_width=11000, hidden_size=4096, architecture="L")
    with pytest.raises(AtlasError, match="holds 32 layers per language, but model llama-2-7b has 40"):
        import_neuron_sets(path, tmp_path / "a", "llama-2-7b", list(known("rucaibox/llama-2-7b").languages),
                           top_rate=0.01, source="x", n_layers=40, ffn_width=11008, hidden_size=4096, architecture="L")
    assert not (tmp_path / "a" / "lape").exists()  # nothing half-written


def test_cli_errors_say_what_is_needed(tmp_path, reference):
    file = reference / FILES["clas-bench/llama-3.1-8b-instruct"]
    proc = _main(file, "--atlas", tmp_path / "a", "--langs", "en,ar")  # overrides the registry's 32 languages
    _bad_input(proc, "holds 32 language lists but 2 languages were given")
    unknown = tmp_path / "mine.pth"
    torch.save([[torch.tensor([1, 2])], [torch.tensor([3])]], unknown)
    _bad_input(_main(unknown, "--atlas", tmp_path / "a"), "not a known published file: give --model, --lang")
    proc = _main(unknown, "--atlas", tmp_path / "a", "--model", "mine", "--langs", "en,fr", "--top-rate", "0.01",
                 "--source", "me", "--n-layers", "1", "--ffn-width", "8")
    _bad_input(proc, "pass n_layers, ffn_width and hidden_size")
    result = _run(unknown, "--atlas", tmp_path / "a", "--model", "mine", "--langs", "en,fr", "--top-rate", "0.01",
                  "--source", "me", "--n-layers", "1", "--ffn-width", "8", "--hidden-size", "4")
    assert result.exit_code == 0, result.output
    assert Atlas(tmp_path / "a").neurons("mine").sizes() == {"eng_Latn": 2, "fra_Latn": 1}


def test_importing_sets_over_built_counts_is_refused(tmp_path):
    root = make_atlas(tmp_path / "a", model="toy", n_layers=2, ffn_width=16, langs=3, seed=0)
    file = tmp_path / "sets.pth"
    torch.save([[torch.tensor([1]), torch.tensor([2])]], file)
    with pytest.raises(AtlasError, match="has activation counts built here"):
        import_neuron_sets(file, root, "toy", ["en"], top_rate=0.01, source="x", ffn_width=16, hidden_size=4,
                           architecture="X")
    raw = tmp_path / "activation.en.train.toy"
    torch.save({"n": 3, "over_zero": torch.zeros(2, 16, dtype=torch.int32)}, raw)
    with pytest.raises(AtlasError, match="holds a dict, not a list"):
        import_neuron_sets(raw, root, "other", ["en"], top_rate=0.01, source="x", ffn_width=16, hidden_size=4,
                           architecture="X")
    with pytest.raises(AtlasError, match="not a torch.save file"):
        import_neuron_sets(root / "atlas.json", root, "other", ["en"], top_rate=0.01, source="x", ffn_width=16,
                           hidden_size=4, architecture="X")


# -- raw activation files ---------------------------------------------------------------------------------------


def _activation_files(folder: Path, rng, langs, n_layers, d, model="toy"):
    """RUCAIBox-style files activation.<lang>.train.<model> of {'n': tokens, 'over_zero': [L, d]} with random counts."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = rng.integers(200, 5000, size=len(langs))
    base = rng.beta(0.5, 4, size=(n_layers, d))
    fired = np.stack([rng.binomial(t, np.clip(base * rng.lognormal(0, 0.8, size=base.shape), 0, 1)) for t in tokens])
    files = []
    for lang, t, f in zip(langs, tokens, fired):
        path = folder / f"activation.{lang}.train.{model}"
        torch.save({"n": int(t), "over_zero": torch.from_numpy(f.astype(np.int32))}, path)
        files.append(path)
    return files, fired, tokens


def test_raw_activations_become_full_statistics(tmp_path, rng):
    langs = ["en", "zh", "fr", "es", "vi", "id"]
    files, fired, tokens = _activation_files(tmp_path / "raw", rng, langs, n_layers=3, d=70)
    got = import_activations(dict(zip(langs, files)), tmp_path / "atlas", "toy", source="RUCAIBox activation.py",
                             hidden_size=16, architecture="LlamaForCausalLM")
    assert list(got.values()) == tokens.tolist()
    atlas = Atlas(tmp_path / "atlas")
    counts = atlas.sql("SELECT lang, layer, neuron, fired, tokens FROM counts WHERE model = 'toy' ORDER BY lang, layer, neuron")
    for i, tag in enumerate(got):  # in the order given
        rows = counts.filter(counts.column("lang").to_numpy(zero_copy_only=False) == tag)
        np.testing.assert_array_equal(rows.column("fired").to_numpy(), fired[i].ravel())
        assert set(rows.column("tokens").to_pylist()) == {int(tokens[i])}
    tags = list(got)
    for top in ("1%", "4%"):
        want = reference_sets(np.moveaxis(fired, 0, -1), tokens, float(top[:-1]) / 100, 0.95, 0.95)
        assert sum(len(v) for v in want.values()) > 0
        result = atlas.neurons("toy", top=top).indices()
        for k, tag in enumerate(tags):
            pairs = sorted((layer, int(n)) for layer, idx in enumerate(result[tag]) for n in idx)
            assert pairs == want[k], (top, tag)
    assert atlas.model("toy").source == "import:RUCAIBox activation.py"


def test_activation_cli_reads_languages_from_file_names(tmp_path, rng):
    files, _, tokens = _activation_files(tmp_path / "raw", rng, ["en", "tl"], n_layers=2, d=30)
    result = _run(*files, "--atlas", tmp_path / "atlas", "--model", "toy", "--source", "mine", "--hidden-size", "8")
    assert result.exit_code == 0, result.output
    assert Atlas(tmp_path / "atlas").langs_of("toy") == ["eng_Latn", "tgl_Latn"]
    proc = _main(*files, "--atlas", tmp_path / "other", "--model", "toy", "--source", "mine", "--hidden-size", "8",
                 "--langs", "en")
    _bad_input(proc, "2 activation files but 1 languages")
    _bad_input(_main(*files, "--atlas", tmp_path / "other"), "importing activation files needs --model and --source")


def test_bad_activation_files(tmp_path, rng):
    files, _, _ = _activation_files(tmp_path / "a", rng, ["en"], n_layers=2, d=30)
    other, _, _ = _activation_files(tmp_path / "b", rng, ["fr"], n_layers=2, d=31)
    with pytest.raises(AtlasError, match=r"shape \(2, 31\), the other files \(2, 30\)"):
        import_activations({"en": files[0], "fr": other[0]}, tmp_path / "x", "toy", source="s", hidden_size=8,
                           architecture="X")
    bad = tmp_path / "activation.de.train.toy"
    torch.save({"n": 5, "over_zero": torch.full((2, 30), 9, dtype=torch.int32)}, bad)
    with pytest.raises(AtlasError, match=r"must lie in \[0, n=5\]"):
        import_activations({"de": bad}, tmp_path / "y", "toy", source="s", hidden_size=8, architecture="X")


def test_every_imported_model_answers_the_default_query_at_its_published_rate(imported):
    """After importing every published file, the default query answers each model (llama-3.1-8b's sets are 5 %),
    the `imported` view holds them with their rate, and the `lape` view (default sets of built models) none."""
    for entry in KNOWN:
        s = imported.neurons(entry.model)
        assert s.params["top_rate"] == entry.top_rate and len(s) > 0
        if entry.top_rate != 0.01:
            assert f"published top='{entry.top_rate * 100:g}%'" in s.notices["top"]
        else:
            assert "top" not in s.notices
    rates = imported.sql("SELECT model, any_value(top_rate) AS r, count(*) AS n FROM imported GROUP BY model")
    assert dict(zip(rates["model"].to_pylist(), rates["r"].to_pylist())) == {e.model: e.top_rate for e in KNOWN}
    assert dict(zip(rates["model"].to_pylist(), rates["n"].to_pylist())) == {e.model: PAIRS[e.name] for e in KNOWN}
    assert imported.sql("SELECT count(*) AS n FROM lape")["n"].to_pylist() == [0]
