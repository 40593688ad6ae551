# This file is generated from notebooks/05_transformer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["TransformerBlock", "LMOutput", "TransformerLM"]


# cell 7
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from tinylm_core.kv_cache import KVCache
from tinylm_core.layers import DecoderAttention, FeedForward, make_norm
from tinylm_core.model_config import ModelConfig
from tinylm_core.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)


# cell 53
class TransformerBlock(nn.Module):
    """Pre-norm decoder block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        # nn.LayerNorm computes what section 2's LayerNorm from scratch does, in one fused
        # kernel instead of about ten small ops: that matters when decoding one token at a time.
        self.ln_1 = make_norm(config)
        self.attn = DecoderAttention(
            config.d_model, config.num_heads, dropout=config.dropout, bias=config.bias,
            num_kv_heads=config.num_kv_heads, qk_norm=config.qk_norm, eps=config.layer_norm_eps,
        )  # fmt: skip
        self.ln_2 = make_norm(config)
        self.mlp = FeedForward(config)
        # residual dropout on the attention output (the attention layer drops its weights only)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x, attention_mask=None, rotary=None, kv_cache=None):  # x: (B, T, C)
        a = self.attn(self.ln_1(x), attention_mask, rotary=rotary, kv_cache=kv_cache)
        x = x + self.dropout(a)
        x = x + self.mlp(self.ln_2(x))
        return x  # (B, T, C)


# cell 58
@dataclass
class LMOutput:
    """What `TransformerLM.forward` returns. `out["logits"]` works too, as with the original
    project's dict."""

    logits: torch.Tensor  # (B, T, vocab_size)
    loss: torch.Tensor | None = None  # mean cross-entropy over targets != -100, when targets given

    def __getitem__(self, key: str):
        if key not in ("logits", "loss"):
            raise KeyError(f"LMOutput has 'logits' and 'loss', not {key!r}")
        return getattr(self, key)


# cell 59
def _as_config(args, config, kwargs) -> ModelConfig:
    """TransformerLM's arguments -> one ModelConfig: a config, or ModelConfig's fields."""
    if args and isinstance(args[0], ModelConfig):
        config, args = args[0], args[1:]  # TransformerLM(config)
    if config is None:
        if not args and "vocab_size" not in kwargs:
            raise ValueError(
                "TransformerLM needs vocab_size (e.g. tokenizer.get_vocab_size()) or a config"
            )
        return ModelConfig(*args, **kwargs)
    if args or kwargs:
        raise ValueError("pass either config=... or the size arguments, not both")
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    return config


class TransformerLM(nn.Module):
    """Decoder-only transformer language model (GPT-2 layout, pre-norm, tied embeddings).

    TransformerLM(config), or ModelConfig's fields as arguments:
    TransformerLM(65, d_model=64, num_layers=2) == TransformerLM(ModelConfig(65, 64, 2)).
    """

    def __init__(self, *args, config: ModelConfig | None = None, **kwargs):
        super().__init__()
        self.config = config = _as_config(args, config, kwargs)
        C = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, C)
        self._add_positions()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.ln_f = make_norm(config)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, C) tensor, two uses
        self._init_weights()

    @classmethod
    def from_config(cls, config: ModelConfig) -> "TransformerLM":
        return cls(config=config)

    # cell 61
    def _add_positions(self):
        config, C = self.config, self.config.d_model
        self.position_encoding = None  # added to the embeddings: sinusoidal or learned
        self.rotary = None  # rope: turns q and k inside every attention layer
        self.embedding_scale = 1.0
        if config.positional_encoding == "sinusoidal":
            self.position_encoding = SinusoidalPositionalEncoding(C, config.max_seq_len)
            # The sines have unit amplitude, the token embeddings std 0.02: unscaled, position
            # would drown the token's identity. Multiply embeddings by sqrt(d_model) as in
            # "Attention is all you need" (section 3.4); they stay smaller (notebook 05, section 9).
            self.embedding_scale = math.sqrt(C)
        elif config.positional_encoding == "learned":
            self.position_encoding = LearnedPositionalEncoding(config.max_seq_len, C)
        else:
            head_dim = C // config.num_heads
            self.rotary = RotaryEmbedding(head_dim, config.max_seq_len, base=config.rope_theta)

    # cell 63
    def _init_weights(self) -> None:
        # GPT-2: every weight ~ N(0, 0.02²), i.e. std 0.02, biases 0. As the GPT-2 paper describes,
        # following nanoGPT, the two projections that write into the residual stream get
        # std / sqrt(2 * num_layers), so the sum of 2 * num_layers writes keeps roughly the same
        # scale however deep the model is.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=residual_std)

    # cell 63
    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count (a tied matrix counted once). non_embedding: leave out the lookup tables
        (token embedding, learned positions), as scaling-law papers count model size."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.token_embedding.weight.numel()
            if self.position_encoding is not None:
                n -= sum(p.numel() for p in self.position_encoding.parameters())
        return n

    # cell 67
    def forward(
        self, input_ids, targets=None, attention_mask=None, kv_cache=None, last_only=False
    ) -> LMOutput:
        """input_ids (B, T) -> logits (B, T, V). targets (B, T) are aligned with the logits
        (targets[:, t] should follow input_ids[:, t]); -100 marks positions left out of the loss.
        attention_mask (B, past + T): 1 for real tokens, 0 for padding. kv_cache: see new_kv_cache.
        last_only: logits (B, 1, V) for the last position only, all that generation needs; it
        skips the LM head elsewhere (for GPT-2, 38.6M multiply-adds per position)."""
        past = _check_inputs(self.config, input_ids, targets, kv_cache, last_only)
        x = self.token_embedding(input_ids)  # (B, T, C)
        if self.embedding_scale != 1.0:
            x = x * self.embedding_scale
        if self.position_encoding is not None:
            x = self.position_encoding(x, offset=past)  # positions past..past+T-1
        x = self.dropout(x)
        layer_caches = [None] * len(self.blocks) if kv_cache is None else kv_cache.layers
        for block, layer_cache in zip(self.blocks, layer_caches):
            x = block(x, attention_mask, self.rotary, layer_cache)  # (B, T, C)
        if last_only:
            x = x[:, -1:]  # (B, 1, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V), or (B, 1, V) with last_only
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return LMOutput(logits, loss)

    # cell 73
    @classmethod
    def from_checkpoint(cls, path, device="cpu") -> "TransformerLM":
        """The model saved in a lesson-06 checkpoint (a file, or a run folder holding one), in eval
        mode on `device`; e.g. TransformerLM.from_checkpoint("runs/train")."""
        # imported here, not at the top: lesson 06's module imports this one
        from tinylm_core.checkpoint import load_checkpoint

        model, _tokenizer, _info = load_checkpoint(path, device=device)
        return model

    # cell 77
    def new_kv_cache(
        self, batch_size: int, max_len: int | None = None, device=None, dtype=None
    ) -> KVCache:
        """An empty cache for incremental decoding; pass it to forward(..., kv_cache=cache). It holds
        config.kv_heads heads per layer: fewer than num_heads with grouped-query attention."""
        max_len = self.config.max_seq_len if max_len is None else max_len
        if not 1 <= max_len <= self.config.max_seq_len:
            raise ValueError(
                f"max_len must be between 1 and max_seq_len={self.config.max_seq_len}, got {max_len}"
            )
        weight = self.lm_head.weight
        return KVCache(
            self.config.num_layers, batch_size, self.config.kv_heads, max_len,
            self.config.d_model // self.config.num_heads,
            device=weight.device if device is None else device,
            dtype=weight.dtype if dtype is None else dtype,
        )  # fmt: skip


# cell 65
def _check_inputs(config, input_ids, targets, kv_cache, last_only) -> int:
    """Refuse inputs a model of this config cannot take, naming the fix; return the number of
    cached positions."""
    if input_ids.dim() != 2:
        raise ValueError(
            f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}; "
            "use ids[None] for one sequence"
        )
    if input_ids.is_floating_point():
        raise TypeError(f"input_ids must hold integer token ids, got {input_ids.dtype}")
    V = config.vocab_size
    if input_ids.numel() > 0:
        low, high = torch.aminmax(input_ids)
        if low < 0 or high >= V:
            raise ValueError(
                f"token ids must be in 0..{V - 1} (vocab_size={V}), got ids from {int(low)} to "
                f"{int(high)}; encode the text with this model's tokenizer"
            )
    past = 0 if kv_cache is None else kv_cache.seq_len
    if past + input_ids.size(1) > config.max_seq_len:
        raise ValueError(
            f"sequence of {past + input_ids.size(1)} tokens ({past} cached + "
            f"{input_ids.size(1)} new) exceeds max_seq_len={config.max_seq_len}; crop the "
            "input to its last max_seq_len tokens"
        )
    if targets is not None and last_only:
        raise ValueError("the loss needs logits at every position: pass last_only=False")
    if targets is not None and targets.shape != input_ids.shape:
        raise ValueError(
            f"targets must have the shape of input_ids {tuple(input_ids.shape)}, got "
            f"{tuple(targets.shape)}"
        )
    return past
