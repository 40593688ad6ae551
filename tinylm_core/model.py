# This file is generated from notebooks/05_transformer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "ModelConfig",
    "FeedForward",
    "TransformerBlock",
    "LayerKVCache",
    "KVCache",
    "LMOutput",
    "TransformerLM",
    "PRESETS",
]


# cell 6
import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from tinylm_core.attention import Linear, MultiHeadAttention
from tinylm_core.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)


# cell 7
@dataclass
class ModelConfig:
    """Hyper-parameters of a `TransformerLM`. The defaults are the course's "small" preset."""

    vocab_size: int
    d_model: int = 256  # width of the residual stream, C
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 1024  # hidden width of the feed-forward network, usually 4 * d_model
    max_seq_len: int = 128  # longest input (cached positions included) the model accepts
    dropout: float = 0.1
    positional_encoding: str = "sinusoidal"  # "sinusoidal" | "learned" | "rope"
    bias: bool = True  # biases in the Linear layers and LayerNorms, as GPT-2 has
    activation: str = "gelu"  # "gelu" | "gelu_tanh" (GPT-2's approximation) | "relu"
    tie_weights: bool = True  # the LM head reuses the token embedding matrix
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "max_seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"ModelConfig.{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"ModelConfig.{name} must be at least 1, got {value}")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}; "
                "pick a num_heads that divides d_model"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.positional_encoding not in ("sinusoidal", "learned", "rope"):
            raise ValueError(
                f"positional_encoding={self.positional_encoding!r} is unknown; "
                "use 'sinusoidal', 'learned' or 'rope'"
            )
        if self.positional_encoding == "rope" and (self.d_model // self.num_heads) % 2:
            raise ValueError(
                f"rope rotates pairs of dimensions, so head_dim = d_model / num_heads must be even "
                f"(got {self.d_model // self.num_heads}); change d_model or num_heads"
            )
        if self.activation not in ("gelu", "gelu_tanh", "relu"):
            raise ValueError(
                f"activation={self.activation!r} is unknown; use 'gelu', 'gelu_tanh' or 'relu'"
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")

    @classmethod
    def from_preset(cls, name: str, vocab_size: int, **overrides) -> "ModelConfig":
        """A named size from `PRESETS`, e.g. `ModelConfig.from_preset("small", 65, dropout=0.0)`."""
        if name not in PRESETS:  # PRESETS is defined below (notebook 05, section 8)
            raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown ModelConfig fields {unknown}; valid ones are {[f.name for f in fields(cls)]}"
            )
        return cls(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


# cell 18
class FeedForward(nn.Module):
    """Position-wise MLP: widen to d_ff, non-linearity, project back (GPT-2's c_fc and c_proj)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = Linear(config.d_model, config.d_ff, bias=config.bias)
        if config.activation == "relu":
            self.act = nn.ReLU()
        else:
            self.act = nn.GELU(approximate="tanh" if config.activation == "gelu_tanh" else "none")
        self.proj = Linear(config.d_ff, config.d_model, bias=config.bias)
        # With p = 0 (benchmarks, inference) skip the module entirely: one call less per layer.
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        h = self.act(self.fc(x))  # (B, T, d_ff)
        return self.dropout(self.proj(h))  # (B, T, C)


# cell 22
class TransformerBlock(nn.Module):
    """Pre-norm decoder block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        C, eps = config.d_model, config.layer_norm_eps
        # nn.LayerNorm computes what notebook 05's LayerNorm from scratch does, in one fused
        # kernel instead of about ten small ops: that matters when decoding one token at a time.
        self.ln_1 = nn.LayerNorm(C, eps=eps, bias=config.bias)
        self.attn = MultiHeadAttention(
            C, config.num_heads, dropout=config.dropout, bias=config.bias
        )
        self.ln_2 = nn.LayerNorm(C, eps=eps, bias=config.bias)
        self.mlp = FeedForward(config)
        # residual dropout on the attention output (MultiHeadAttention drops attention weights only)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x, attention_mask=None, rotary=None, kv_cache=None):  # x: (B, T, C)
        a = self.attn(self.ln_1(x), attention_mask, rotary=rotary, kv_cache=kv_cache)
        x = x + self.dropout(a)
        x = x + self.mlp(self.ln_2(x))
        return x  # (B, T, C)


# cell 27
def _select_rows(buffer: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    """buffer[index] over positions 0..length-1 of dim 2, in a new buffer as long as the old one."""
    out = buffer.new_empty((len(index), *buffer.shape[1:]))  # (B', H, max_len, head_dim)
    kept, into = buffer.narrow(2, 0, length), out.narrow(2, 0, length)
    # An optimisation detail, safe to skip on a first reading: both branches copy the same rows.
    if torch.is_grad_enabled() and buffer.requires_grad:  # out= cannot record gradients; copy_ can
        into.copy_(kept.index_select(0, index))
    else:
        torch.index_select(kept, 0, index, out=into)  # one copy instead of two
    return out


class LayerKVCache:
    """Keys and values of one attention layer, in buffers allocated once: (B, H, max_len, head_dim)."""

    def __init__(self, batch_size, num_heads, max_len, head_dim, device=None, dtype=None):
        shape = (batch_size, num_heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.seq_len = 0  # positions stored so far

    def update(self, k: torch.Tensor, v: torch.Tensor):
        """Append k, v (B, H, T_new, head_dim); return all stored keys and values (views, no copy)."""
        start, end = self.seq_len, self.seq_len + k.size(2)
        if end > self.k.size(2):
            raise ValueError(
                f"KV cache is full: {start} + {k.size(2)} positions > max_len={self.k.size(2)}; "
                "make a bigger cache with model.new_kv_cache(batch_size, max_len=...) or crop() it"
            )
        # narrow() makes a view in one cheap call; decoding does this 2 x num_layers times a token
        self.k.narrow(2, start, end - start).copy_(k)
        self.v.narrow(2, start, end - start).copy_(v)
        self.seq_len = end
        return self.k.narrow(2, 0, end), self.v.narrow(2, 0, end)  # (B, H, end, head_dim) each

    def reorder(self, index: torch.Tensor) -> None:
        """Row i becomes old row index[i] (index: 1-D long tensor of rows, for beam search).

        Copies only the seq_len positions stored so far, not whole buffers: with GPT-2's
        max_len = 1024 and 40 tokens in the cache, that is 25x less memory to move each step."""
        self.k = _select_rows(self.k, index, self.seq_len)
        self.v = _select_rows(self.v, index, self.seq_len)


class KVCache:
    """A `LayerKVCache` per layer, so decoding feeds only the new tokens through the model."""

    def __init__(
        self, num_layers, batch_size, num_heads, max_len, head_dim, device=None, dtype=None
    ):
        self.layers = [
            LayerKVCache(batch_size, num_heads, max_len, head_dim, device, dtype)
            for _ in range(num_layers)
        ]
        self.max_len = max_len

    @property
    def seq_len(self) -> int:
        return self.layers[0].seq_len

    @property
    def batch_size(self) -> int:
        return self.layers[0].k.size(0)

    def reorder(self, index) -> None:
        """Keep (and repeat or permute) batch rows: row i becomes old row index[i]. For beam search."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.layers[0].k.device)
        if index.dim() != 1:
            raise ValueError(
                f"reorder expects a 1-D index of batch rows, got shape {tuple(index.shape)}"
            )
        for layer in self.layers:
            layer.reorder(index)

    def crop(self, length: int) -> None:
        """Forget every position from `length` on (later writes overwrite them)."""
        if not 0 <= length <= self.seq_len:
            raise ValueError(
                f"crop length must be between 0 and seq_len={self.seq_len}, got {length}"
            )
        for layer in self.layers:
            layer.seq_len = length

    def reset(self) -> None:
        self.crop(0)


# cell 30
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


# cell 31
class TransformerLM(nn.Module):
    """Decoder-only transformer language model (GPT-2 layout, pre-norm, tied embeddings)."""

    def __init__(
        self,
        vocab_size=None,
        d_model=256,
        num_layers=4,
        num_heads=4,
        d_ff=1024,
        max_seq_len=128,
        dropout=0.1,
        positional_encoding="sinusoidal",
        *,
        bias=True,
        activation="gelu",
        tie_weights=True,
        config: ModelConfig | None = None,
    ):
        super().__init__()
        if config is None:
            if vocab_size is None:
                raise ValueError(
                    "TransformerLM needs vocab_size (e.g. tokenizer.get_vocab_size()) or a config"
                )
            config = ModelConfig(
                vocab_size, d_model, num_layers, num_heads, d_ff, max_seq_len, dropout,
                positional_encoding, bias, activation, tie_weights,
            )  # fmt: skip
        elif vocab_size is not None:
            raise ValueError("pass either config=... or the size arguments, not both")
        self.config = config
        C = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, C)
        # Additive encodings live here; rope instead rotates q and k inside every attention layer.
        self.position_encoding = None
        self.rotary = None
        self.embedding_scale = 1.0
        if config.positional_encoding == "sinusoidal":
            self.position_encoding = SinusoidalPositionalEncoding(C, config.max_seq_len)
            # The sines have unit amplitude, the token embeddings std 0.02: unscaled, position
            # would drown the token's identity. Multiply embeddings by sqrt(d_model) as in
            # "Attention is all you need" (section 3.4).
            self.embedding_scale = math.sqrt(C)
        elif config.positional_encoding == "learned":
            self.position_encoding = LearnedPositionalEncoding(config.max_seq_len, C)
        else:
            self.rotary = RotaryEmbedding(C // config.num_heads, config.max_seq_len)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(C, eps=config.layer_norm_eps, bias=config.bias)
        self.lm_head = Linear(C, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one (V, C) tensor, two uses
        self._init_weights()

    @classmethod
    def from_config(cls, config: ModelConfig) -> "TransformerLM":
        return cls(config=config)

    def _init_weights(self) -> None:
        # GPT-2: every weight ~ N(0, 0.02²), i.e. std 0.02, biases 0. As the GPT-2 paper
        # describes, following nanoGPT, the two projections that write into the residual stream
        # get std / sqrt(2 * num_layers), so the sum of 2 * num_layers writes keeps roughly the
        # same scale however deep the model is.
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        residual_std = 0.02 / math.sqrt(2 * self.config.num_layers)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=residual_std)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameter count (a tied matrix counted once). non_embedding: leave out the lookup tables
        (token embedding, learned positions), as scaling-law papers count model size."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.token_embedding.weight.numel()
            if self.position_encoding is not None:
                n -= sum(p.numel() for p in self.position_encoding.parameters())
        return n

    def new_kv_cache(
        self, batch_size: int, max_len: int | None = None, device=None, dtype=None
    ) -> KVCache:
        """An empty cache for incremental decoding; pass it to forward(..., kv_cache=cache)."""
        max_len = self.config.max_seq_len if max_len is None else max_len
        if not 1 <= max_len <= self.config.max_seq_len:
            raise ValueError(
                f"max_len must be between 1 and max_seq_len={self.config.max_seq_len}, got {max_len}"
            )
        weight = self.lm_head.weight
        return KVCache(
            self.config.num_layers, batch_size, self.config.num_heads, max_len,
            self.config.d_model // self.config.num_heads,
            device=weight.device if device is None else device,
            dtype=weight.dtype if dtype is None else dtype,
        )  # fmt: skip

    def forward(
        self, input_ids, targets=None, attention_mask=None, kv_cache=None, last_only=False
    ) -> LMOutput:
        """input_ids (B, T) -> logits (B, T, V). targets (B, T) are aligned with the logits
        (targets[:, t] should follow input_ids[:, t]); -100 marks positions left out of the loss.
        attention_mask (B, past + T): 1 for real tokens, 0 for padding. kv_cache: see new_kv_cache.
        last_only: logits (B, 1, V) for the last position only, all that generation needs; it
        skips the LM head elsewhere (for GPT-2, 38.6M multiply-adds per position)."""
        if input_ids.dim() != 2:
            raise ValueError(
                f"input_ids must be (batch, seq_len), got shape {tuple(input_ids.shape)}; use ids[None] for one sequence"
            )
        if input_ids.is_floating_point():
            raise TypeError(f"input_ids must hold integer token ids, got {input_ids.dtype}")
        B, T = input_ids.shape
        past = 0 if kv_cache is None else kv_cache.seq_len
        if past + T > self.config.max_seq_len:
            raise ValueError(
                f"sequence of {past + T} tokens ({past} cached + {T} new) exceeds max_seq_len="
                f"{self.config.max_seq_len}; crop the input to its last max_seq_len tokens"
            )
        if targets is not None and last_only:
            raise ValueError("the loss needs logits at every position: pass last_only=False")
        if targets is not None and targets.shape != input_ids.shape:
            raise ValueError(
                f"targets must have the shape of input_ids {tuple(input_ids.shape)}, got {tuple(targets.shape)}"
            )
        x = self.token_embedding(input_ids)  # (B, T, C)
        if self.embedding_scale != 1.0:
            x = x * self.embedding_scale
        if self.position_encoding is not None:
            x = self.position_encoding(x, offset=past)
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


# cell 43
# The course's three target sizes. How many parameters they have depends on the vocabulary: see
# the table in notebook 05 (small ~5M with a BPE vocabulary of about 7k tokens, medium ~25M with
# about 12k; large is GPT-2 small's body, 85M parameters without the embeddings).
PRESETS = {
    "small": dict(d_model=256, num_layers=4, num_heads=4, d_ff=1024, max_seq_len=128),
    "medium": dict(d_model=512, num_layers=6, num_heads=8, d_ff=2048, max_seq_len=512),
    "large": dict(d_model=768, num_layers=12, num_heads=12, d_ff=3072, max_seq_len=1024),
}
