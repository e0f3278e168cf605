"""Tiny random-weight causal LMs built from configs in code, one per supported FFN layout (shared by the tests)."""
import torch
import transformers

H, W, L, V = 32, 48, 3, 64  # hidden size, FFN width, layers, vocabulary


def tiny(name: str = "llama", *, width: int = W, vocab_size: int = V, seed: int = 0,
         dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """A tiny model of architecture ``name`` (hidden H, FFN ``width``, L layers, no dropout), in eval mode."""
    c = transformers
    common = dict(hidden_size=H, num_hidden_layers=L, num_attention_heads=4, vocab_size=vocab_size)
    configs = {
        "llama": lambda: c.LlamaConfig(intermediate_size=width, num_key_value_heads=2, **common),
        "mistral": lambda: c.MistralConfig(intermediate_size=width, num_key_value_heads=2, **common),
        "qwen2": lambda: c.Qwen2Config(intermediate_size=width, num_key_value_heads=2, **common),
        "qwen3": lambda: c.Qwen3Config(intermediate_size=width, num_key_value_heads=2, head_dim=16, **common),
        "gemma": lambda: c.GemmaConfig(intermediate_size=width, num_key_value_heads=1, head_dim=16, **common),
        "gemma3": lambda: c.Gemma3TextConfig(intermediate_size=width, num_key_value_heads=1, head_dim=16, **common),
        "phi3": lambda: c.Phi3Config(intermediate_size=width, num_key_value_heads=4, pad_token_id=0, **common),
        "gpt2": lambda: c.GPT2Config(n_embd=H, n_inner=width, n_layer=L, n_head=4, vocab_size=vocab_size,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0),
        "gpt_neox": lambda: c.GPTNeoXConfig(intermediate_size=width, **common),
        "bloom": lambda: c.BloomConfig(hidden_size=H, n_layer=L, n_head=4, vocab_size=vocab_size),
        "opt": lambda: c.OPTConfig(ffn_dim=width, word_embed_proj_dim=H, **common),  # ReLU
    }
    torch.manual_seed(seed)
    return transformers.AutoModelForCausalLM.from_config(configs[name]()).to(dtype).eval()
