"""NeuronMask with torch: index tensors on request, and a published set checked against a model's shape."""
import pytest
import torch

from neuron_atlas.masks import FFNShape, MaskError, NeuronMask, neuron_mask

W = 8


def test_to_torch_on_request():
    mask = NeuronMask([[1, 3], [0]], W)
    idx = mask.to_torch()
    assert [t.tolist() for t in idx] == [[1, 3], [0]] and idx[0].dtype == torch.int64
    assert torch.equal(mask.to_torch(dense=True), torch.from_numpy(mask.dense()))


def test_published_llama_set_refused_on_a_mistral_nemo_shape(reference):
    sets = torch.load(reference / "gurgurov-subnetwork" / "llama-3.1-5", weights_only=True)
    langs = "mt af is cy mk lv lt sl sk et ka ne".split()
    source = {lang: [t.numpy() for t in layers] for lang, layers in zip(langs, sets)}
    mask = neuron_mask(source, lang="mt", shape=(32, 14336))
    assert len(mask) == sum(t.numel() for t in sets[0])
    assert mask.languages == ("mlt_Latn",)
    nemo = [FFNShape("gated", 5120, 14336)] * 40
    with pytest.raises(MaskError, match="32 layers but the model has 40"):
        mask.weight_masks(nemo)
