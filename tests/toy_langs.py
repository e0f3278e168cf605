"""The languages of the synthetic toy atlas (conftest's ``toy_atlas``), importable by tests: conftest itself is not."""
LANGS = ["eng_Latn", "tgl_Latn", "ind_Latn", "zlm_Latn", "fra_Latn", "cmn_Hans", "cmn_Hant", "srp_Cyrl", "srp_Latn"]
SMALL_LANGS = ["eng_Latn", "tgl_Latn", "ind_Latn", "fra_Latn"]  # the small atlas tests tamper with (conftest.pristine)
