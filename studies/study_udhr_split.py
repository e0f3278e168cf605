"""Two first real-model experiments on gemma-3-270m with UDHR split in order (the first 70% of a language's sections
to train on, the last 30% held out; the atlas itself was counted on all of the text):

  --part deactivation  Tang et al.'s matrix: switch off language A's neurons, perplexity change on B
  --part finetune      Gurgurov et al. in small: train each method on a language, held-out perplexity there and
                       on English

    python studies/study_udhr_split.py --part deactivation --atlas ATLAS --langs en fr ru zh-Hans ar hi \
        --eval-tokens 510 --seq 256 --batch 2 --threads 1
    python studies/study_udhr_split.py --part finetune --atlas ATLAS --langs tgl --train-steps 10 --batch 2 \
        --seq 128 --eval-tokens 256 --threads 1

Findings: studies/FINDINGS.md. (Moved from benchmarks/finetune.py, which keeps the speed and memory half.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def udhr_split(lang: str, heldout: float = 0.3) -> tuple[str, str]:
    """(train, held-out) text of a UDHR language: its sections in order, the last ``heldout`` share held out."""
    from neuron_atlas.corpus import open_corpus

    sections = list(open_corpus("udhr").texts(lang))
    cut = max(1, round(len(sections) * (1 - heldout)))
    return "\n".join(sections[:cut]), "\n".join(sections[cut:])


def deactivation_part(args) -> str:
    """Tang et al.'s deactivation matrix on held-out UDHR text, table + heatmap."""
    import torch

    from neuron_atlas.atlas import open as open_atlas
    from neuron_atlas.interventions.evaluate import deactivation_matrix
    from neuron_atlas.modeling.load import load_packaged

    torch.set_num_threads(args.threads)
    loaded = load_packaged(args.model)
    neurons = open_atlas(args.atlas).neurons(args.model, lang=args.langs, top=args.top)
    texts = {tag: udhr_split(tag)[1] for tag in neurons.langs}
    result = deactivation_matrix(loaded.model, neurons, texts, loaded.tokenizer, seq_len=args.seq,
                                 batch_size=args.batch, max_tokens=args.eval_tokens)
    png = result.heatmap(Path(args.out) / "deactivation.png",
                         title=f"{args.model}: perplexity change (%) with a language's top-{args.top:.0%} neurons off")
    rows, cols = result.diagonal_dominant("row"), result.diagonal_dominant("column")
    return (f"model {args.model}, LAPE top {args.top:.0%} among the atlas' languages, held-out UDHR text "
            f"(≤{args.eval_tokens} tokens per language), neurons set to 0; heatmap: {png}\n\n"
            f"{result.to_markdown()}\n\ndiagonal dominant by row (switching A off hurts A most): "
            f"{len(rows)} of {len(result.deactivated)}: {', '.join(rows) or 'none'}; by column (B is hurt most by "
            f"its own neurons): {len(cols)} of {len(result.deactivated)}: {', '.join(cols) or 'none'}")


def study_part(args) -> str:
    """Train each method on a language's UDHR text; held-out perplexity on it and on English."""
    import torch

    from neuron_atlas.atlas import open as open_atlas
    from neuron_atlas.modeling.tokens import bos_id
    from neuron_atlas.interventions.evaluate import perplexity
    from neuron_atlas.finetune import ffn_only, lora, random_subnetwork, subnetwork
    from neuron_atlas.modeling.load import load_packaged

    torch.set_num_threads(args.threads)
    atlas = open_atlas(args.atlas)
    tokenizer = load_packaged(args.model).tokenizer
    rows = []
    for lang in args.langs:
        neurons = atlas.neurons(args.model, lang=lang, top=args.top)
        tag = neurons.langs[0]
        train_text, test_text = udhr_split(tag)
        train_ids = tokenizer(train_text, add_special_tokens=False)["input_ids"]
        head = [] if bos_id(tokenizer) is None else [bos_id(tokenizer)]  # as the builder and evaluate cut windows
        tests = {tag: test_text, "eng_Latn": udhr_split("eng_Latn")[1]}
        starts = torch.randint(0, max(1, len(train_ids) - args.seq), (args.train_steps, args.batch),
                               generator=torch.Generator().manual_seed(0))
        for method in ["none", "subnetwork", "random", "ffn_only", "lora32"]:
            model = load_packaged(args.model).model
            tuned = {"none": lambda m: None, "subnetwork": lambda m: subnetwork(m, neurons),
                     "random": lambda m: random_subnetwork(m, neurons, seed=0), "ffn_only": ffn_only,
                     "lora32": lambda m: lora(m, r=32)}[method](model)
            if tuned is not None:
                optimizer = torch.optim.AdamW(tuned.trainable_parameters(), lr=args.lr, weight_decay=0.0)
                tuned.model.train()
                for step in range(args.train_steps):
                    x = torch.tensor([(head + train_ids[s:s + args.seq - len(head)])
                                      for s in starts[step].tolist()])
                    tuned.model(input_ids=x, labels=x).loss.backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            n = 0 if tuned is None else tuned.num_trainable_parameters()
            model = model if tuned is None else tuned.merge_and_unload()
            model.eval()
            ppl = {k: perplexity(model, text, tokenizer, seq_len=args.seq, batch_size=args.batch,
                                 max_tokens=args.eval_tokens) for k, text in tests.items()}
            rows.append(f"| {tag} | {method} | {n:,} | {ppl[tag]:.2f} | {ppl['eng_Latn']:.2f} |")
            print(rows[-1], file=sys.stderr)
    return (f"model {args.model}, LAPE top {args.top:.0%} neurons of each language, {args.train_steps} AdamW steps "
            f"(lr {args.lr}) of {args.batch}×{args.seq} tokens from the first 70% of the language's UDHR text; "
            f"perplexity on the last 30% (≤{args.eval_tokens} tokens) and on English's last 30%\n\n"
            "| language | method | trainable params | held-out ppl (language) | held-out ppl (English) |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", required=True, choices=["deactivation", "finetune"])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--atlas", help="atlas folder (default: the embedded atlas)")
    parser.add_argument("--langs", nargs="+", required=True)
    parser.add_argument("--top", type=float, default=0.01, help="LAPE top share of neurons")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--eval-tokens", type=int, default=1024, help="held-out tokens per language")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=".", help="folder for the heatmap PNG")
    args = parser.parse_args()
    print(deactivation_part(args) if args.part == "deactivation" else study_part(args))


if __name__ == "__main__":
    main()
