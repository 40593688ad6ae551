"""tinylm_core: a small language model built from scratch, exported from the tinylm notebooks.

This file is written by hand: it lists, on purpose, what a user of the package needs. Everything
else stays importable from its module (`from tinylm_core.model import TransformerBlock`); each
module names the notebook that generates it.

>>> from tinylm_core import CharTokenizer, TransformerLM
>>> tokenizer = CharTokenizer().build_vocab(["hello world"])
>>> model = TransformerLM(vocab_size=tokenizer.get_vocab_size(), d_model=32, num_layers=1,
...                       num_heads=2, d_ff=64, max_seq_len=16)
"""

from importlib.metadata import PackageNotFoundError, version

# lesson 01: attention
from .attention import MultiHeadAttention, scaled_dot_product_attention

# lesson 02: positional encodings
from .positional import LearnedPositionalEncoding, RotaryEmbedding, SinusoidalPositionalEncoding

# lessons 03-04: corpora and tokenizers
from .downloads import download, load_corpus
from .tokenizer import Tokenizer
from .char_tokenizer import CharTokenizer
from .bpe_tokenizer import BPETokenizer

# lesson 05: the transformer
from .model_config import PRESETS, ModelConfig
from .kv_cache import KVCache
from .model import TransformerLM

# lesson 06: training
from .datasets import TextDataset, TokenWindowDataset, collate_fn
from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import plot_metrics
from .settings import RECIPES, TrainingConfig
from .trainer import Trainer

# lesson 07: decoding
from .generation import Generator
from .generation_config import GenerationConfig

# lesson 08: GPT-2's weights
from .gpt2 import load_gpt2

# Part II, one or two names per lesson (the rest from their modules)
# lesson 09: fine-tuning
from .finetune import SequenceClassifier
from .lora import apply_lora, merge_lora

# lesson 10: inside the model
from .interpret import capture_attention, logit_lens

# lesson 11: today's architectures
from .llama import load_llama

# lesson 12: fast inference
from .quantize import quantize_int8

try:
    __version__ = version("tinylm_core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "scaled_dot_product_attention",
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "RotaryEmbedding",
    "download",
    "load_corpus",
    "Tokenizer",
    "CharTokenizer",
    "BPETokenizer",
    "ModelConfig",
    "PRESETS",
    "TransformerLM",
    "KVCache",
    "TokenWindowDataset",
    "TextDataset",
    "collate_fn",
    "TrainingConfig",
    "RECIPES",
    "Trainer",
    "save_checkpoint",
    "load_checkpoint",
    "plot_metrics",
    "GenerationConfig",
    "Generator",
    "load_gpt2",
    "SequenceClassifier",
    "apply_lora",
    "merge_lora",
    "capture_attention",
    "logit_lens",
    "load_llama",
    "quantize_int8",
]
