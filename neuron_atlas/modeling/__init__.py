"""Torch-side model access: find FFN blocks in any causal LM and load the packaged models (needs the [torch] extra)."""
