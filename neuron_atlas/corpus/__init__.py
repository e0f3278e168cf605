"""Text corpora the builder counts activations on: UDHR (pinned, cached), local files, Hugging Face datasets; and a
language's text in one call (``text``, ``held_out``) for examples and evaluations."""
from ..errors import CorpusError
from .base import Corpus, split_by_min_chars
from .hf import LAYOUTS, HFCorpus, HFLayout
from .local import LocalCorpus
from .registry import CORPORA, open_corpus
from .script import dominant_script, script_mismatch
from .text import held_out, text
from .udhr import UDHR

__all__ = [
    "CORPORA", "LAYOUTS", "UDHR", "Corpus", "CorpusError", "HFCorpus", "HFLayout", "LocalCorpus",
    "dominant_script", "held_out", "open_corpus", "script_mismatch", "split_by_min_chars", "text",
]
