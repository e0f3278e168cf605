"""One CPU thread policy for every torch entry point (modeling/threads.py): each call computes inside
``torch_threads``, at its ``threads=`` keyword, else ``$NEURON_ATLAS_THREADS``, else the idle cores, and leaves
torch's own setting as it found it; the first load of a packaged model says so once and shows a bar."""
import inspect

import pytest

import torch
import transformers
from tiny_models import V, tiny

from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.modeling import load as load_mod
from neuron_atlas.modeling import threads as threads_mod
from neuron_atlas.modeling.threads import COMPUTE, ENV, MAX_THREADS, torch_threads

OUTSIDE = 3  # torch's setting around the calls: neither the keyword (2) nor the environment's (1) nor the idle cores
SETS = {"eng_Latn": {0: [1, 2, 3], 2: [5, 9]}, "tgl_Latn": {0: [3, 4], 1: [7, 40], 2: [9, 11]}}


@pytest.fixture
def outside(monkeypatch):
    """torch at OUTSIDE threads, no $NEURON_ATLAS_THREADS, and 1 idle core (whatever this machine's load is)."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(threads_mod, "idle_cores", lambda: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(OUTSIDE)
    yield
    torch.set_num_threads(before)


def spy(model):
    """torch's thread count whenever ``model``'s first decoder block runs (Wanda runs the decoder without the LM head;
    finding the FFNs probes each one alone, outside any block)."""
    from neuron_atlas.modeling.ffn import decoder_layers

    seen = []
    decoder_layers(model)[1][0].register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    return seen


def test_the_policy_is_applied_inside_and_restored_after(outside, monkeypatch):
    with torch_threads(2) as n:
        assert n == 2 and torch.get_num_threads() == 2
        with torch_threads(None) as inner:  # an entry point called by another keeps its caller's count
            assert inner == 2 and torch.get_num_threads() == 2
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == OUTSIDE
    with torch_threads(None) as n:  # the idle cores
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == OUTSIDE
    with pytest.raises(RuntimeError), torch_threads(2):  # restored after an error too
        raise RuntimeError
    assert torch.get_num_threads() == OUTSIDE


def test_the_environment_sets_the_default_and_the_keyword_overrides_it(outside, monkeypatch):
    monkeypatch.setenv(ENV, "2")
    with torch_threads(None) as n:
        assert n == 2 and torch.get_num_threads() == 2
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    for idle in ("auto", "", " AUTO "):
        monkeypatch.setenv(ENV, idle)
        with torch_threads(None) as n:
            assert n == 1
    assert torch.get_num_threads() == OUTSIDE


@pytest.mark.parametrize("raw", ["two", "0", "-1", "1.5", str(MAX_THREADS + 1)])
def test_a_bad_environment_value_is_a_clear_error(outside, monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(InvalidParameterError, match=f"{ENV} must be a whole number.*got {raw!r}"), torch_threads(None):
        pass
    with torch_threads(2):  # a count given in the call does not read the variable
        pass
    assert torch.get_num_threads() == OUTSIDE


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", MAX_THREADS + 1])
def test_a_bad_keyword_is_a_clear_error(outside, bad):
    with (pytest.raises(InvalidParameterError, match=r"threads must be a whole number from 1 to \d+ .*got"),
          torch_threads(bad)):
        pass
    model = tiny()
    from neuron_atlas.interventions.evaluate import perplexity

    with pytest.raises(InvalidParameterError, match="threads must be"):
        perplexity(model, list(range(1, 9)), progress=False, threads=bad)
    assert torch.get_num_threads() == OUTSIDE


class CharTokenizer:
    """Characters -> ids (BOS 1, EOS 2, pad 0), enough for the pruning calibration sets."""

    eos_token, eos_token_id, pad_token_id, padding_side = "</s>", 2, 0, "right"

    def __call__(self, texts, truncation=True, max_length=512):
        ids = [[1] + [3 + ord(c) % (V - 3) for c in t] for t in texts]
        return {"input_ids": [s[:max_length] if truncation else s for s in ids]}


PARALLEL = {"swa_Latn": [f"sentensi ya {i} kwa Kiswahili" for i in range(6)],
            "eng_Latn": [f"sentence number {i} in English" for i in range(6)]}


def entry_points():
    """(name, call(model, threads) -> what it returns, the count it records or None)."""
    from neuron_atlas.interventions.evaluate import deactivation_matrix, perplexities, perplexity
    from neuron_atlas.interventions.hooks import mean_activations, steer
    from neuron_atlas.prune.wanda import monolingual, translation_calibrated

    ids = torch.randint(0, V, (40,), generator=torch.Generator().manual_seed(0)).tolist()
    kw = {"seq_len": 16, "progress": False}
    return [
        ("perplexity", lambda m, t: perplexity(m, ids, **kw, **t), None),
        ("perplexities", lambda m, t: perplexities(m, {"tl": ids, "en": ids[::-1]}, **kw, **t), None),
        ("deactivation_matrix", lambda m, t: deactivation_matrix(m, SETS, {"tl": ids, "en": ids}, **kw, **t),
         lambda r: r.threads),
        ("mean_activations", lambda m, t: mean_activations(m, [ids[:10], ids[10:]], SETS["tgl_Latn"], **t), None),
        ("steer calibration", lambda m, t: steer(m, SETS, to="tl", text=ids, seq_len=16, **t), None),
        ("Wanda", lambda m, t: translation_calibrated(m, CharTokenizer(), ["sw-en"], corpus=PARALLEL, nsamples=2,
                                                      max_length=32, **t), lambda r: r.metadata["threads"]),
        ("sequential Wanda", lambda m, t: monolingual(m, CharTokenizer(), ["sw-en"], corpus=PARALLEL, nsamples=2,
                                                      max_length=32, sequential=True, **t),
         lambda r: r.metadata["threads"]),
    ]


@pytest.mark.parametrize("name", [name for name, _, _ in entry_points()])
def test_every_entry_point_computes_with_the_policy(outside, monkeypatch, name):
    _, call, recorded = next(e for e in entry_points() if e[0] == name)
    model = tiny()
    seen = spy(model)
    monkeypatch.setenv(ENV, "1")
    result = call(model, {})  # the default: the environment's 1
    assert seen and set(seen) == {1} and torch.get_num_threads() == OUTSIDE
    assert recorded is None or recorded(result) == 1
    seen.clear()
    result = call(model, {"threads": 2})  # the keyword beats the environment
    assert seen and set(seen) == {2} and torch.get_num_threads() == OUTSIDE
    assert recorded is None or recorded(result) == 2


def test_the_trainer_trains_and_evaluates_with_the_policy_and_records_it(outside, monkeypatch, tmp_path):
    from neuron_atlas.finetune import SubnetworkTrainer, subnetwork

    model = tiny()
    sub = subnetwork(model, SETS["tgl_Latn"])
    seen = spy(sub.model)
    rows = [torch.randint(0, V, (8,), generator=torch.Generator().manual_seed(i)) for i in range(4)]
    data = [{"input_ids": r, "labels": r} for r in rows]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                                          report_to=[], save_strategy="no", use_cpu=True, logging_strategy="no")
    trainer = SubnetworkTrainer(model=sub.model, args=args, train_dataset=data, eval_dataset=data, threads=2)
    monkeypatch.setenv(ENV, "1")
    out = trainer.train()
    assert set(seen) == {2} and torch.get_num_threads() == OUTSIDE
    assert out.metrics["train_threads"] == 2
    assert trainer.state.log_history[-1]["train_threads"] == 2  # trainer_state.json's log history
    seen.clear()
    trainer.threads = None  # the policy's default: the environment's 1
    assert trainer.evaluate()["eval_threads"] == 1 and set(seen) == {1}
    assert trainer.predict(data).metrics["test_threads"] == 1
    assert torch.get_num_threads() == OUTSIDE
    with pytest.raises(InvalidParameterError, match="threads must be"):
        SubnetworkTrainer(model=sub.model, args=args, train_dataset=data, threads=0)


def test_every_entry_point_reads_its_default_from_one_place():
    from neuron_atlas.builder.config import BUILD
    from neuron_atlas.builder.run import build_models
    from neuron_atlas.finetune.trainer import SubnetworkTrainerMixin
    from neuron_atlas.interventions.evaluate import deactivation_matrix, perplexities, perplexity
    from neuron_atlas.interventions.hooks import mean_activations, steer
    from neuron_atlas.prune.feature_norms import build_features
    from neuron_atlas.prune.wanda import magnitude, monolingual, sequential_wanda_masks, translation_calibrated

    functions = [build_models, SubnetworkTrainerMixin.__init__, deactivation_matrix, perplexities, perplexity,
                 mean_activations, steer, build_features, magnitude, monolingual, sequential_wanda_masks,
                 translation_calibrated, load_mod.load_packaged, load_mod.load_model]
    for fn in functions:
        assert inspect.signature(fn).parameters["threads"].default is COMPUTE.threads, fn.__qualname__
    assert BUILD.threads is COMPUTE.threads


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"t{i}": i for i in range(V)} | {"[UNK]": V}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")


def test_the_first_load_of_a_packaged_model_says_so_once_with_a_bar(outside, monkeypatch, tmp_path, capsys):
    import gguf as gguf_lib
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    gguf = tmp_path / "tiny.gguf"
    writer = gguf_lib.GGUFWriter(str(gguf), "llama")
    writer.add_string("general.name", "tiny")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    class FakePackage(load_mod.Package):
        def gguf_path(self):
            return gguf

    own_tqdm, own_reader, loads = gguf_utils.tqdm, gguf_lib.GGUFReader, []

    def fake_load(path, dtype="float32"):  # what transformers does with a GGUF file, on a tiny model
        loads.append(torch.get_num_threads())
        assert gguf_lib.GGUFReader(path) is gguf_lib.GGUFReader(path)  # the header is parsed once per conversion
        for _ in gguf_utils.tqdm(list(range(5)), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        return load_mod.LoadedModel(tiny(vocab_size=V + 1), _tiny_tokenizer(), path, "sha256:0")

    monkeypatch.setenv("NEURON_ATLAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(load_mod.PACKAGES, "tiny", FakePackage("tiny", "torch", "no_such_module"))
    monkeypatch.setattr(load_mod, "load_causal_lm", fake_load)
    first = load_mod.load_packaged("tiny", threads=2)
    err = capsys.readouterr().err
    target = tmp_path / "cache" / "models" / "tiny"
    assert err.count("first use") == 1 and "once" in err and str(target) in " ".join(err.split())
    assert "tiny: dequantising: 5/5 tensor" in err  # the bar's line in a log (stderr is no terminal here)
    assert gguf_utils.tqdm is own_tqdm and gguf_lib.GGUFReader is own_reader  # transformers' and gguf's own after
    assert loads == [2] and torch.get_num_threads() == OUTSIDE
    assert first.source.startswith("pypi:torch==") and first.source.endswith("/tiny.gguf")
    second = load_mod.load_packaged("tiny")
    assert "first use" not in capsys.readouterr().err and loads == [2]  # cached: no note, no dequantisation
    assert second.revision == first.revision == "sha256:0"
    from neuron_atlas._utils.progress import quieted

    monkeypatch.setenv("NEURON_ATLAS_CACHE", str(tmp_path / "other"))
    with quieted():
        load_mod.load_packaged("tiny")
    assert capsys.readouterr().err == "" and len(loads) == 2
