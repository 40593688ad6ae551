# This file is generated from notebooks/05_transformer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["make_norm", "FeedForward", "DecoderAttention"]


# cell 27
import torch
import torch.nn as nn
import torch.nn.functional as F

from tinylm_core.attention import MultiHeadAttention
from tinylm_core.model_config import ModelConfig


def make_norm(config: ModelConfig, dim: int | None = None) -> nn.Module:
    """The normalisation over `dim` channels (default d_model): nn.LayerNorm, as GPT-2, or
    nn.RMSNorm (no mean, no bias) when config.norm == "rmsnorm"."""
    dim = config.d_model if dim is None else dim
    if config.norm == "rmsnorm":
        return nn.RMSNorm(dim, eps=config.layer_norm_eps)
    return nn.LayerNorm(dim, eps=config.layer_norm_eps, bias=config.bias)


# cell 32
def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "silu":  # x * sigmoid(x), the "Swish" of SwiGLU
        return nn.SiLU()
    return nn.GELU(approximate="tanh" if name == "gelu_tanh" else "none")


# cell 33
class FeedForward(nn.Module):
    """Position-wise MLP: widen to d_ff, non-linearity, project back (GPT-2's c_fc and c_proj).
    Gated (config.mlp == "gated"): proj(act(gate(x)) * fc(x)), Llama's SwiGLU with silu."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        gated = config.mlp == "gated"
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=config.bias) if gated else None
        self.act = _activation(config.activation)
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        # With p = 0 (benchmarks, inference) skip the module entirely: one call less per layer.
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        h = self.fc(x)  # (B, T, d_ff)
        h = self.act(h) if self.gate is None else self.act(self.gate(x)) * h
        return self.dropout(self.proj(h))  # (B, T, C)


# cell 43
class DecoderAttention(MultiHeadAttention):
    """Lesson 01's MultiHeadAttention plus what a decoder needs, between `project_qkv` and
    `attend`: rotary positions for q and k (lesson 02) and a KV cache (lesson 05).

    With a cache, `attention_mask` covers every key: (B, past + T), cached positions first.
    num_kv_heads < num_heads: grouped-query attention (lesson 11); qk_norm: RMSNorm on q and k.
    """

    def __init__(
        self, d_model, num_heads, dropout=0.0, bias=True, causal=True, num_kv_heads=None,
        qk_norm=False, eps=1e-5,
    ):  # fmt: skip
        super().__init__(d_model, num_heads, dropout, bias, causal)
        self.num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if not 1 <= self.num_kv_heads <= num_heads or num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide num_heads={num_heads}; use a divisor"
            )
        if self.num_kv_heads != num_heads:  # k and v narrower than q: a new projection
            kv_width = self.num_kv_heads * self.head_dim
            self.qkv = nn.Linear(d_model, d_model + 2 * kv_width, bias=bias)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=eps) if qk_norm else None
        self.k_norm = nn.RMSNorm(self.head_dim, eps=eps) if qk_norm else None

    # cell 45
    def forward(self, x, attention_mask=None, need_weights=False, rotary=None, kv_cache=None):
        """x: (B, T, C), the new positions. rotary: a RotaryEmbedding, or None when positions are
        added to the embeddings. kv_cache: a LayerKVCache (anything with `seq_len` and
        `update(k, v) -> (all keys, all values)`), or None."""
        q, k, v = self.project_qkv(x)  # (B, H, T, hd), k and v (B, H_kv, T, hd)
        past = 0 if kv_cache is None else kv_cache.seq_len
        if rotary is not None:
            q, k = rotary(q, k, offset=past)  # the new tokens sit at positions past..past+T-1
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, H_kv, past + T, hd): cached keys, then the new
        return self.attend(q, k, v, attention_mask, need_weights)

    # cell 47
    def project_qkv(self, x):
        """x (B, T, C) -> q (B, H, T, hd), k and v (B, H_kv, T, hd)."""
        if self.num_kv_heads == self.num_heads:
            q, k, v = MultiHeadAttention.project_qkv(self, x)  # lesson 01's
        else:
            if x.dim() != 3 or x.size(-1) != self.d_model:
                raise ValueError(
                    f"x must have shape (batch, seq_len, {self.d_model}), got {tuple(x.shape)}"
                )
            B, T, _ = x.shape
            kv_width = self.num_kv_heads * self.head_dim
            q, k, v = self.qkv(x).split([self.d_model, kv_width, kv_width], dim=-1)
            q = q.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
            k = k.view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, H_kv, T, hd)
            v = v.view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v

    # cell 49
    def attend(self, q, k, v, attention_mask=None, need_weights=False):
        """q (B, H, T, hd) against k, v (B, H_kv, Tk, hd), H_kv dividing H -> out (B, T, C), or
        (out, weights (B, H, T, Tk)) with need_weights=True."""
        H, H_kv = q.size(1), k.size(1)
        if H_kv == H:
            return MultiHeadAttention.attend(self, q, k, v, attention_mask, need_weights)
        if H % H_kv or v.size(1) != H_kv:
            raise ValueError(f"{H} query heads cannot share {H_kv} key and {v.size(1)} value heads")
        if need_weights:  # k/v head j serves query heads j * H / H_kv .. (j + 1) * H / H_kv - 1
            k, v = k.repeat_interleave(H // H_kv, dim=1), v.repeat_interleave(H // H_kv, dim=1)
            return MultiHeadAttention.attend(self, q, k, v, attention_mask, need_weights)
        B, _, T, hd = q.shape
        mask, is_causal = self._mask(attention_mask, B, T, k.size(2), q.device)
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal, enable_gqa=True
        )  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, H * hd))  # (B, T, C)
