"""Random-weight Llama-shaped models for the benchmarks: a real model's shape without its weights (no Hub here).

``llama-3.1-8b`` is the GPU benchmarks' shape (issues 9 and 12); ``tiny`` is a fast CPU stand-in.
"""
from __future__ import annotations

SHAPES = {
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, max_position_embeddings=131072),
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    "tiny": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8,
                 num_key_value_heads=4, vocab_size=32000),
}


def llama_config(shape: str, layers: int | None = None):
    """The shape's ``LlamaConfig``; ``layers`` keeps only that many decoder layers (a cut-down smoke run)."""
    from transformers import LlamaConfig

    kwargs = dict(SHAPES[shape])
    if layers:
        kwargs["num_hidden_layers"] = layers
    return LlamaConfig(**kwargs)


def random_llama(shape: str, dtype: str = "float32", device: str = "cpu", layers: int | None = None, seed: int = 0):
    """A model of ``shape`` with seeded random weights, created directly on ``device`` in ``dtype``."""
    import torch
    from transformers import AutoModelForCausalLM

    from neuron_atlas.modeling.load import parse_dtype

    torch.manual_seed(seed)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(llama_config(shape, layers), dtype=parse_dtype(dtype))
