"""Does the BOS of evaluation windows change a deactivation finding? (FINDINGS.md, question 8)

Until ``evaluate.token_windows`` cut windows as the builder does, it prepended ``tokenizer.bos_token_id`` to every
window whenever the tokenizer had one, while the builder (``modeling.tokens.bos_id``) prepends it only when the
tokenizer starts its own encodings with it. They agree on gemma-3-270m (``<bos>``) and disagree on smollm2-135m,
whose ``bos_token_id`` is ``<|im_start|>`` (a chat-turn marker its encodings never start with). This recomputes a
few deactivation ΔNLL values of the sets study on smollm2-135m both ways, on the same held-out token stream as
``study_sets.py``.

    PYTHONPATH=.:studies STUDY_THREADS=1 python studies/study_bos.py [--targets tgl_Latn ind_Latn hin_Deva]
"""
from __future__ import annotations

import argparse
import time

from study_common import eval_langs, load, udhr_ids

SLUG, SEQ, WINDOWS = "smollm2-135m", 128, 2


def old_windows(ids: list[int], bos: int) -> list[list[int]]:
    """The earlier ``token_windows`` cut: the tokenizer's ``bos_token_id`` + 127 text tokens per window."""
    return [[bos] + ids[i:i + SEQ - 1] for i in range(0, len(ids), SEQ - 1)][:WINDOWS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["tgl_Latn", "ind_Latn", "hin_Deva"])
    parser.add_argument("--sets", nargs="+", default=["lape-1%", "lape-size-0.5%"])
    args = parser.parse_args()

    import neuron_atlas as na
    from neuron_atlas.interventions.evaluate import nll, token_windows
    from neuron_atlas.masks import neuron_mask

    model, tok, row = load(SLUG)
    atlas = na.open()
    cuts = {"builder (now)": lambda ids: token_windows(ids, tok, SEQ)[:WINDOWS],
            "old token_windows": lambda ids: old_windows(ids, tok.bos_token_id)}
    kwargs = {"lape-1%": {}, "lape-size-0.5%": {"size": "0.5%"}}
    print(f"{SLUG}: bos_token_id={tok.bos_token_id} ({tok.bos_token!r}); ΔNLL nats/token on {WINDOWS}×{SEQ} held-out")
    print("| target | set | lang | windows | base NLL | ΔNLL |\n|---|---|---|---|---|---|")
    for tag in args.targets:
        relatives, unrelated = eval_langs(tag)
        langs = [tag, *relatives[:1], *unrelated[:1]]
        streams = {lang: udhr_ids(tok, lang)[row.tokens_per_language:] for lang in langs}
        for name in args.sets:
            mask = neuron_mask(atlas.neurons(SLUG, lang=tag, **kwargs[name]))
            for lang in langs:
                for cut, windows_of in cuts.items():
                    windows = windows_of(streams[lang])
                    t = time.time()
                    total, count = nll(model, windows)
                    with na.interventions.deactivate(model, mask):
                        off, _ = nll(model, windows)
                    print(f"| {tag} | {name} (n={len(mask)}) | {lang} | {cut} | {total / count:.3f} | "
                          f"{(off - total) / count:+.3f} |  <!-- {time.time() - t:.1f}s -->", flush=True)


if __name__ == "__main__":
    main()
