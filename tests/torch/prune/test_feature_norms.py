"""Building the features table on a tiny random model: residual norms against a hidden-states reference."""
import numpy as np
import torch

from neuron_atlas._query import features as ft
from neuron_atlas.prune import feature_norms


def test_residual_norms_equal_hidden_states_reference(tmp_path):
    from test_prune import PARALLEL, CharTokenizer, random_set, tiny_model

    model, calib = tiny_model("gemma3", seed=3), random_set(4, n=6)
    got = feature_norms.residual_norms(model, calib, batch_size=4)
    assert got.shape == (4, 32)
    final_norm = model.model.norm
    model.model.norm = torch.nn.Identity()  # so the last hidden state is the last block's raw output
    ref = np.zeros((4, 32))
    with torch.no_grad():
        for seq in calib.sequences:  # each sample alone, unpadded, through transformers' own hidden_states
            hidden = model.model(input_ids=torch.tensor([seq]), output_hidden_states=True).hidden_states
            ref += np.stack([(h[0].double() ** 2).sum(0).numpy() for h in hidden])
    model.model.norm = final_norm
    np.testing.assert_allclose(got, ref, rtol=1e-5)

    paths = feature_norms.build_features(model, CharTokenizer(), tmp_path, "tiny", ["sw-en", "fr-en"], corpus=PARALLEL,
                              nsamples=3, max_length=64)
    assert [p.parent.name for p in paths] == ["pair=swh_Latn-eng_Latn", "pair=fra_Latn-eng_Latn"]
    table = ft.features(tmp_path, "tiny", "sw-en", top=5)
    assert table.num_rows == 4 * 5 and set(table["layer"].to_pylist()) == {0, 1, 2, 3}
    assert ft.metadata(tmp_path, "tiny", "fr-en")["samples"] == 3
