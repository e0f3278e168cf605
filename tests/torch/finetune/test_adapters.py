"""Subnetwork adapters as PEFT users handle them: a folder in PEFT's layout, Trainer checkpoints that hold only the
adapter and resume exactly, reloading into a fresh base with bit-identical logits, and publishing through a real
Hub-compatible server (olah) in both of its setups.
"""
import json
import shutil
import struct

import numpy as np
import pytest
import torch
import transformers
from olah_server import git_commit_folder, materialise, olah_python, start_olah
from tiny_models import L, V, W, tiny

import neuron_atlas as na
from neuron_atlas.atlas import Atlas
from neuron_atlas.errors import AtlasFormatError, AtlasNotFoundError, DeltaMismatchError
from neuron_atlas.finetune import (
    SubnetworkModel,
    SubnetworkTrainer,
    SubnetworkTrainerMixin,
    load_subnetwork,
    lora,
    plan_adapter_commit,
    subnetwork,
)
from neuron_atlas.finetune.adapter import CONFIG_NAME, PEFT_TYPE, WEIGHTS_NAME
from neuron_atlas.masks import NeuronMask
from neuron_atlas.testing import make_atlas

CHECKPOINT_STATE = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"}


def random_mask(seed=0, p=0.15):
    dense = np.random.default_rng(seed).random((L, W)) < p
    dense[1] = False  # a layer without neurons: no delta there
    return NeuronMask.from_dense(dense)


def batch(seed=1, b=2, t=8):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def dataset(n=8):
    rows = [batch(seed=100 + i, b=1)[0] for i in range(n)]
    return [{"input_ids": r, "labels": r} for r in rows]


def logits(model, x=None):
    with torch.no_grad():
        return model(batch(seed=9) if x is None else x).logits


def deltas(sub):
    return {k: d.weight.detach().clone() for k, d in sub.deltas.items()}


def delta_bytes(sub):
    return sum(d.weight.numel() * d.weight.element_size() for d in sub.deltas.values())


def args(out, **kw):
    base = {"output_dir": str(out), "max_steps": 4, "per_device_train_batch_size": 2, "learning_rate": 1e-2,
            "report_to": [], "use_cpu": True, "logging_strategy": "no", "save_strategy": "steps", "save_steps": 2,
            "seed": 0}
    return transformers.TrainingArguments(**(base | kw))


def _contents(path):
    """A safetensors file's metadata and tensors (as bytes): equal files, whatever the header's key order."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return fh.metadata(), {k: fh.get_tensor(k).numpy().tobytes() for k in fh.keys()}  # noqa: SIM118


def trained_subnetwork(model, mask, seed=0):
    sub = subnetwork(model, mask)
    with torch.no_grad():
        for i, d in enumerate(sub.deltas.values()):
            d.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed + i))
    return sub


# -- the folder ---------------------------------------------------------------------------------------------------


def test_save_pretrained_writes_peft_layout_with_provenance(tmp_path):
    root = tmp_path / "atlas"
    make_atlas(root, model="tiny", n_layers=L, ffn_width=W, langs=["eng_Latn", "tgl_Latn", "fra_Latn"], tokens=2000)
    neurons = Atlas(root).neurons("tiny", lang="tl", size=12)
    model = tiny()
    sub = trained_subnetwork(model, neurons)
    model.config.name_or_path = "test-org/tiny-llama"  # as from_pretrained("test-org/tiny-llama") sets it
    sub.config.revision = "0123abc"
    sub.save_pretrained(tmp_path / "adapter")
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    config = json.loads((tmp_path / "adapter" / CONFIG_NAME).read_text())
    assert config["peft_type"] == PEFT_TYPE and config["task_type"] == "CAUSAL_LM"
    assert config["base_model_name_or_path"] == "test-org/tiny-llama" and config["revision"] == "0123abc"
    assert config["base_model"]["architecture"] == "LlamaForCausalLM"  # the model's own class, not the wrapper
    assert (config["base_model"]["n_layers"], config["base_model"]["width"]) == (L, W)
    prov = config["neurons"]
    assert prov["model"] == "tiny" and prov["languages"] == ["tgl_Latn"] and prov["n_neurons"] == len(sub.mask) == len(neurons) > 0
    assert prov["params"]["method"] == "lape" and prov["params"]["size"] == 12
    assert prov["params"]["atlas"] == str(root.resolve())  # where the set came from
    assert na.open().neurons("smollm2-135m", lang="sw").params["atlas"] == "embedded"
    assert prov["fingerprint"] == sub.mask.fingerprint()
    assert config["target_modules"][0] in dict(model.named_modules())
    assert NeuronMask.load(tmp_path / "adapter" / WEIGHTS_NAME) == sub.mask  # the weights file is a mask file too
    # the model's own save_pretrained (what Trainer calls) writes the same adapter
    model.save_pretrained(tmp_path / "via-model")
    assert _contents(tmp_path / "via-model" / WEIGHTS_NAME) == _contents(tmp_path / "adapter" / WEIGHTS_NAME)
    assert not (tmp_path / "via-model" / "config.json").exists()

    # Trainer under DeepSpeed/FSDP passes the gathered state dict: its deltas are the ones written
    state = {k: 2 * v if "neuron_delta" in k else v for k, v in model.state_dict().items()}
    sub.save_pretrained(tmp_path / "from-state", state_dict=state)
    doubled = load_subnetwork(tiny(), tmp_path / "from-state")
    assert all(torch.equal(doubled.deltas[k].weight, 2 * d.weight) for k, d in sub.deltas.items())
    sub.save_pretrained(tmp_path / "other-rank", is_main_process=False)
    assert not (tmp_path / "other-rank").exists()

    fresh = SubnetworkModel.from_pretrained(tiny(), tmp_path / "adapter")
    assert torch.equal(logits(fresh.model), logits(model))
    assert not any(d.weight.requires_grad for d in fresh.deltas.values()) and not fresh.model.training  # as PEFT
    assert fresh.config.revision == "0123abc"
    trainable = load_subnetwork(tiny(), tmp_path / "adapter")
    assert all(d.weight.requires_grad for d in trainable.deltas.values())


@pytest.mark.parametrize("arch", ["gpt2", "phi3"])
def test_adapter_round_trip_on_conv1d_and_fused_ffns(tmp_path, arch):
    model = tiny(arch)
    trained_subnetwork(model, random_mask(seed=12))
    model.save_pretrained(tmp_path / "a")
    fresh = SubnetworkModel.from_pretrained(tiny(arch), tmp_path / "a")
    assert torch.equal(logits(fresh.model), logits(model))
    assert json.loads((tmp_path / "a" / CONFIG_NAME).read_text())["base_model"]["architecture"] == type(fresh.unload()).__name__


def test_a_model_carrying_a_subnetwork_pickles_and_copies(tmp_path):
    import copy
    import pickle

    model = tiny()
    trained_subnetwork(model, random_mask(seed=13))
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert type(clone) is type(model) and clone._neuron_subnetwork.model is clone
        assert torch.equal(logits(clone), logits(model))
        clone.save_pretrained(tmp_path / "clone")  # still saves the adapter
        assert torch.equal(logits(SubnetworkModel.from_pretrained(tiny(), tmp_path / "clone").model), logits(model))
        assert type(clone._neuron_subnetwork.merge_and_unload()) is transformers.LlamaForCausalLM


def test_merge_and_unload_ships_a_plain_transformers_model(tmp_path):
    model = tiny()
    sub = trained_subnetwork(model, random_mask())
    want = logits(model)
    merged = sub.merge_and_unload()
    assert type(merged) is transformers.LlamaForCausalLM and not hasattr(merged, "_neuron_subnetwork")
    merged.save_pretrained(tmp_path / "plain")
    assert (tmp_path / "plain" / "config.json").exists() and not (tmp_path / "plain" / CONFIG_NAME).exists()
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "plain")
    torch.testing.assert_close(logits(reloaded), want, rtol=1e-5, atol=1e-5)


def test_adapter_errors_name_the_problem_and_write_nothing(tmp_path):
    mask = random_mask(seed=2)
    trained_subnetwork(tiny(), mask).save_pretrained(tmp_path / "a")
    with pytest.raises(DeltaMismatchError, match="width 48 there vs 64 here"):
        SubnetworkModel.from_pretrained(tiny(width=64), tmp_path / "a")
    other = tiny(seed=3)
    with pytest.raises(DeltaMismatchError, match="another model: weights"):
        SubnetworkModel.from_pretrained(other, tmp_path / "a")
    assert not hasattr(other, "_neuron_subnetwork") and type(other) is transformers.LlamaForCausalLM
    with pytest.raises(DeltaMismatchError, match="another neuron set"):
        subnetwork(tiny(), random_mask(seed=4)).load(tmp_path / "a")
    with pytest.raises(AtlasNotFoundError, match="no adapter_config.json"):
        load_subnetwork(tiny(), tmp_path)
    with pytest.raises(AtlasNotFoundError, match="not a local folder or file, nor a Hub repo id"):
        SubnetworkModel.from_pretrained(tiny(), tmp_path / "missing")
    lora(tiny(), r=2).save(tmp_path / "lora")
    with pytest.raises(AtlasFormatError, match="PEFT LORA adapter.*peft.PeftModel.from_pretrained"):
        load_subnetwork(tiny(), tmp_path / "lora")
    weights = tmp_path / "a" / WEIGHTS_NAME
    trained_subnetwork(tiny(), mask, seed=7).save(weights)  # same set and base, other values: not what was saved
    with pytest.raises(DeltaMismatchError, match="does not match the sha256"):
        load_subnetwork(tiny(), tmp_path / "a")


# -- Trainer ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Four steps of plain transformers.Trainer on a subnetwork, checkpoints every two steps, at 1 torch thread (the
    resumed run's count: sums split over other thread counts differ in the last bits)."""
    from neuron_atlas.modeling.threads import torch_threads

    out = tmp_path_factory.mktemp("run")
    model = tiny()
    sub = subnetwork(model, random_mask(seed=5))
    with torch_threads(1):
        transformers.Trainer(model=model, args=args(out), train_dataset=dataset()).train()
    return {"out": out, "sub": sub, "deltas": deltas(sub), "logits": logits(model)}


def test_trainer_checkpoint_holds_only_the_adapter(uninterrupted):
    sub, ckpt = uninterrupted["sub"], uninterrupted["out"] / "checkpoint-4"
    assert {p.name for p in ckpt.iterdir()} == {CONFIG_NAME, WEIGHTS_NAME} | CHECKPOINT_STATE  # no model weights
    # the weights file is the deltas plus the neuron set (int32 indices, int64 offsets), byte for byte
    raw = (ckpt / WEIGHTS_NAME).read_bytes()
    header = struct.unpack("<Q", raw[:8])[0]
    assert len(raw) == 8 + header + delta_bytes(sub) + 4 * len(sub.mask) + 8 * (L + 1)
    model_bytes = sum(p.numel() * p.element_size() for n, p in sub.model.named_parameters() if "neuron_delta" not in n)
    assert delta_bytes(sub) < model_bytes / 10
    # the optimizer state is AdamW's two moments of each delta, nothing of the frozen base
    state = torch.load(ckpt / "optimizer.pt", weights_only=True)["state"]
    shapes = sorted(tuple(d.weight.shape) for d in sub.deltas.values())
    assert sorted(tuple(s["exp_avg"].shape) for s in state.values()) == shapes
    # reloaded into a fresh base: the trained model's logits, bit for bit
    fresh = SubnetworkModel.from_pretrained(tiny(), ckpt)
    assert torch.equal(logits(fresh.model), uninterrupted["logits"])
    assert all(torch.equal(fresh.deltas[k].weight, v) for k, v in uninterrupted["deltas"].items())


def test_resume_from_a_checkpoint_continues_identically(uninterrupted, tmp_path):
    sub = subnetwork(tiny(), random_mask(seed=5))
    trainer = SubnetworkTrainer(model=sub.model, args=args(tmp_path), train_dataset=dataset(), threads=1)
    trainer.train(resume_from_checkpoint=str(uninterrupted["out"] / "checkpoint-2"))
    assert trainer.state.global_step == 4
    assert all(torch.equal(sub.deltas[k].weight, v) for k, v in uninterrupted["deltas"].items())
    assert torch.equal(logits(sub.model), uninterrupted["logits"])


def test_resume_refuses_a_checkpoint_of_another_subnetwork(uninterrupted, tmp_path):
    sub = subnetwork(tiny(), random_mask(seed=6))
    trainer = SubnetworkTrainer(model=sub.model, args=args(tmp_path), train_dataset=dataset())
    with pytest.raises(DeltaMismatchError, match="another neuron set"):
        trainer.train(resume_from_checkpoint=str(uninterrupted["out"] / "checkpoint-2"))
    assert all(d.weight.abs().sum() == 0 for d in sub.deltas.values())


def test_load_best_model_at_end_reads_the_adapter(tmp_path):
    sub = subnetwork(tiny(), random_mask(seed=5))
    trainer = SubnetworkTrainer(model=sub.model, train_dataset=dataset(), eval_dataset=dataset(4),
                                args=args(tmp_path, eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
                                          metric_for_best_model="loss", greater_is_better=True))  # the worse one
    trainer.train()
    best = trainer.state.best_model_checkpoint
    assert best is not None and best.endswith("checkpoint-2")
    again = SubnetworkModel.from_pretrained(tiny(), best)
    assert all(torch.equal(sub.deltas[k].weight, d.weight) for k, d in again.deltas.items())


def _tokenizer():
    """A word-level tokenizer over the tiny vocabulary, built in code (no download)."""
    from tokenizers import Tokenizer, models

    vocab = {"<pad>": 0, "<eos>": 1} | {f"w{i}": i for i in range(2, V)}
    return transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<pad>")),
                                                pad_token="<pad>", eos_token="<eos>")


def test_trl_sft_trainer_checkpoints_and_resumes(tmp_path):
    trl = pytest.importorskip("trl")

    class SFT(SubnetworkTrainerMixin, trl.SFTTrainer):
        pass

    data = [{"input_ids": batch(seed=200 + i, b=1)[0].tolist()} for i in range(8)]

    def run(out, resume=None):
        model = tiny()
        sub = subnetwork(model, random_mask(seed=8))
        config = trl.SFTConfig(output_dir=str(out), max_steps=4, per_device_train_batch_size=2, learning_rate=1e-2,
                               report_to=[], use_cpu=True, logging_strategy="no", save_steps=2, seed=0)
        from datasets import Dataset

        SFT(model=model, args=config, train_dataset=Dataset.from_list(data),
            processing_class=_tokenizer()).train(resume_from_checkpoint=resume)
        return sub

    full = run(tmp_path / "a")
    assert {p.name for p in (tmp_path / "a" / "checkpoint-4").iterdir()} >= {CONFIG_NAME, WEIGHTS_NAME}
    assert not list((tmp_path / "a" / "checkpoint-4").glob("model*.safetensors"))
    resumed = run(tmp_path / "b", resume=str(tmp_path / "a" / "checkpoint-2"))
    assert all(torch.equal(resumed.deltas[k].weight, d.weight) for k, d in full.deltas.items())
    assert any(d.weight.abs().sum() > 0 for d in full.deltas.values())


def test_trainer_push_to_hub_uploads_the_adapter(tmp_path, monkeypatch):
    """TrainingArguments(push_to_hub=True): Trainer uploads its output folder, which holds the adapter (no HTTP)."""
    from huggingface_hub import CommitInfo, HfApi

    def upload_folder(self, *, repo_id, folder_path, **kw):
        shutil.copytree(folder_path, tmp_path / "uploaded", ignore=shutil.ignore_patterns(*kw["ignore_patterns"]))
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/a", commit_message="m",
                          commit_description="", oid="a", pr_url=None)

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("Repo", (), {"repo_id": repo_id})())
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    model = tiny()
    subnetwork(model, random_mask(seed=5))
    trainer = transformers.Trainer(model=model, train_dataset=dataset(), args=args(
        tmp_path / "out", save_strategy="no", push_to_hub=True, hub_model_id="me/tiny-sub", hub_token="hf_test"))
    trainer.train()
    trainer.push_to_hub()
    assert {p.name for p in (tmp_path / "uploaded").iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, "README.md",
                                                                    "training_args.bin"}
    assert torch.equal(logits(SubnetworkModel.from_pretrained(tiny(), tmp_path / "uploaded").model), logits(model))


# -- the Hub, through olah ----------------------------------------------------------------------------------------

REPO = "test-org/tiny-subnetwork"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The commit ``push_to_hub`` sends (captured, no HTTP), committed to a git repo olah serves; the trained model."""
    if olah_python() is None or shutil.which("git") is None:
        pytest.skip("needs git and olah (pip install olah, or set OLAH_PYTHON to a Python that has it)")
    from huggingface_hub import CommitInfo, HfApi

    base = tmp_path_factory.mktemp("hub")
    model = tiny()
    sub = trained_subnetwork(model, random_mask(seed=11))
    calls = {}

    def create_commit(self, repo_id, operations, **kw):
        calls["commit"] = (repo_id, list(operations), kw)
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/abc", commit_message="m",
                          commit_description="", oid="abc", pr_url=None)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("repo", (repo_id, kw)))
        mp.setattr(HfApi, "create_branch", lambda self, repo_id, **kw: calls.setdefault("branch", (repo_id, kw)))
        mp.setattr(HfApi, "create_commit", create_commit)
        info = model.push_to_hub(REPO, token="hf_test")  # the transformers entry point publishes the adapter
    assert info.oid == "abc"
    repo_id, ops, kw = calls["commit"]
    assert repo_id == REPO and kw["repo_type"] == "model" and calls["repo"][1]["repo_type"] == "model"
    content = materialise(ops, base / "content")
    sha = git_commit_folder(content, base / "mirrors" / "models" / REPO, "adapter")
    return {"base": base, "ops": ops, "sha": sha, "logits": logits(model), "sub": sub}


def test_plan_is_the_folder_and_a_card(published, tmp_path):
    ops = published["ops"]
    assert [op.path_in_repo for op in ops] == [CONFIG_NAME, WEIGHTS_NAME, "README.md"]
    published["sub"].save_pretrained(tmp_path / "a")
    again = plan_adapter_commit(tmp_path / "a", REPO)
    (tmp_path / "pushed").write_bytes(ops[1].path_or_fileobj)
    assert _contents(tmp_path / "a" / WEIGHTS_NAME) == _contents(tmp_path / "pushed")
    assert json.loads(again[0].path_or_fileobj)["neurons"] == json.loads(ops[0].path_or_fileobj)["neurons"]
    from huggingface_hub import ModelCard

    card = ModelCard(ops[2].path_or_fileobj.decode())
    assert card.data.library_name == "neuron-atlas" and card.data.base_model is None  # no Hub id for an unnamed base
    assert f"SubnetworkModel.from_pretrained(base, {REPO!r})" in card.text


@pytest.fixture(scope="module", params=["plain", "ranges"])
def olah(published, request):
    server = start_olah(olah_python(), published["base"] / "mirrors", published["base"] / f"olah-{request.param}",
                        ranges=request.param == "ranges")
    yield server
    server.stop()


def test_push_to_hub_then_reload_through_olah(published, olah, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", olah.endpoint)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    fresh = SubnetworkModel.from_pretrained(tiny(), REPO)
    assert torch.equal(logits(fresh.model), published["logits"])
    pinned = SubnetworkModel.from_pretrained(tiny(), REPO, revision=published["sha"], cache_dir=tmp_path / "c2")
    assert torch.equal(logits(pinned.model), published["logits"])
    with pytest.raises(DeltaMismatchError, match="another model"):
        SubnetworkModel.from_pretrained(tiny(seed=2), REPO)
    with pytest.raises(AtlasNotFoundError, match="test-org/no-such-adapter"):
        SubnetworkModel.from_pretrained(tiny(), "test-org/no-such-adapter")
