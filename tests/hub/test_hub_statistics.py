"""Format-v2 queries over hf:// served by olah on loopback (test_hub's repositories: model alpha of the commit
tagged v1 has the v2 statistics): the same answers as the local atlas, and a one-layer steering vector fetches of
each residual file its footer and that layer's row group, not the file."""
import numpy as np
import pyarrow.parquet as pq
from test_hub import URL, hub_env, repos, served  # noqa: F401 - the olah fixtures

from neuron_atlas import hub
from neuron_atlas.atlas import Atlas


def test_methods_and_steering_vectors_over_the_hub(hub_env):  # noqa: F811
    server, (_, _), (local, _) = hub_env["server"], hub_env["shas"], hub_env["atlases"]
    atlas, here = hub.open_hub(URL + "@v1"), Atlas(local)
    for method in ("mean_diff", "t"):
        got = atlas.neurons("alpha", lang="tl", method=method, size=12).to_arrow()
        assert got.equals(here.neurons("alpha", lang="tl", method=method, size=12).to_arrow())
    server.clear_log()
    vector = atlas.steering_vector("alpha", "tl", layer=2, against=["en", "fr"])
    np.testing.assert_array_equal(vector, here.steering_vector("alpha", "tl", layer=2, against=["en", "fr"]))
    if server.ranges:  # plain olah answers a range with the whole file, which is then read from the HF cache
        for lang in ("tgl_Latn", "eng_Latn", "fra_Latn"):
            path = f"residual/model=alpha/lang={lang}/residual.parquet"
            sent = sum(r["bytes"] for r in server.requests() if r["path"].endswith(path))
            meta = pq.read_metadata(local / path)
            chunks = sum(meta.row_group(2).column(i).total_compressed_size for i in range(meta.num_columns))
            assert 0 < sent <= meta.serialized_size + 8 + chunks, (lang, sent)
    np.testing.assert_array_equal(atlas.steering_vector("alpha", "tl"), here.steering_vector("alpha", "tl"))
