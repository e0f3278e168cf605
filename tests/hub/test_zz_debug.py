from test_hub import *  # noqa
from test_hub import URL, _fetched, LANGS


def test_dbg(hub_env, tmp_path):
    import json
    from neuron_atlas.explore import build_site
    from neuron_atlas.explore import site as S
    import neuron_atlas as na
    r1 = build_site(URL, tmp_path / "hub-site", models=["alpha"], log=print)
    s1 = json.loads((tmp_path / "hub-site/.explore.json").read_text())
    a = na.open(URL)
    print("fp", S.model_fingerprint(a, "alpha"), S._code_fingerprint())
    r2 = build_site(URL, tmp_path / "hub-site", models=["alpha"], log=print)
    a = na.open(URL)
    print("fp", S.model_fingerprint(a, "alpha"), S._code_fingerprint())
    s2 = json.loads((tmp_path / "hub-site/.explore.json").read_text())
    print(s1, s2, r1, r2)
    assert 0
