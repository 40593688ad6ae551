# This file is generated from notebooks/01_attention.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["scaled_dot_product_attention", "MultiHeadAttention"]


# cell 30
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _causal_mask(Tq, Tk, offset, device):
    """(Tq, Tk) boolean: query i sits at position offset + i and may see keys 0..offset + i."""
    return (
        torch.arange(Tk, device=device) <= torch.arange(offset, offset + Tq, device=device)[:, None]
    )


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0, is_causal=False):
    """softmax(q k^T / sqrt(D)) v, written out. Returns (out, weights).

    q: (..., Tq, D), k: (..., Tk, D), v: (..., Tk, Dv). `mask` is boolean, True = may attend
    (PyTorch's convention), broadcastable to (..., Tq, Tk). `is_causal` lets query i see keys
    0..i (top-left aligned, like torch.nn.functional.scaled_dot_product_attention); it may be
    combined with `mask`. A query that may see no key at all gets zero weights and a zero output
    (PyTorch does the same), not NaN. `weights` are the ones applied to v, so after dropout.
    """
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            f"q, k and v need at least 2 dimensions (..., T, D); got ranks {q.dim()}, {k.dim()}, "
            f"{v.dim()}; add a leading axis with x.unsqueeze(0)"
        )
    if q.size(-1) != k.size(-1):
        raise ValueError(
            f"q and k must have the same last dimension to be compared; got {q.size(-1)} and "
            f"{k.size(-1)}"
        )
    if k.size(-2) != v.size(-2):
        raise ValueError(
            f"k and v must hold the same number of positions; got {k.size(-2)} and {v.size(-2)}"
        )
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be boolean (True = may attend), got {mask.dtype}; pass mask.bool()"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if is_causal:
        causal = _causal_mask(q.size(-2), k.size(-2), 0, q.device)  # (Tq, Tk)
        mask = causal if mask is None else mask & causal
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., Tq, Tk)
    if mask is not None:
        # a row of only -inf gives 0/0 = NaN; such a query sees nothing, so it gets nothing
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., Tq, Dv), (..., Tq, Tk)


# cell 36
class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over (B, T, C), with an optional causal mask.

    One fused nn.Linear makes q, k and v (stacked in that order, like GPT-2's c_attn and
    torch.nn.MultiheadAttention's in_proj_weight); the C channels are split into num_heads heads
    of head_dim = C / num_heads, each attends on its own, and `proj` mixes the heads back.
    Dropout acts on the attention weights only; residual dropout belongs to the block around it.

    >>> mha = MultiHeadAttention(d_model=32, num_heads=4)
    >>> mha(torch.randn(2, 6, 32)).shape  # (B, T, C) in, (B, T, C) out
    torch.Size([2, 6, 32])
    """

    def __init__(self, d_model, num_heads, dropout=0.0, bias=True, causal=True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by num_heads ({num_heads}) so every head "
                f"gets d_model // num_heads channels; change one of them"
            )
        self.d_model = d_model
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # q, k and v in one matmul
        self.proj = nn.Linear(d_model, d_model, bias=bias)  # mixes what the heads found

    # cell 40
    def project_qkv(self, x):
        """x (B, T, C) -> q, k, v, each (B, H, T, head_dim): one matmul, then one view and permute."""
        if x.dim() != 3 or x.size(-1) != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq_len, d_model={self.d_model}), got "
                f"{tuple(x.shape)}; add a batch axis with x.unsqueeze(0) for a single sequence"
            )
        B, T, _ = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, hd)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, hd)

    # cell 44
    def _mask(self, attention_mask, B, T, Tk, device):
        """(boolean mask (B, 1, T, Tk) or None, is_causal) for T queries against Tk keys.

        The queries are the last T positions: query i is at position Tk - T + i and may see keys
        0..Tk - T + i (bottom-right aligned). The fused kernel's is_causal is top-left aligned, so
        it is used only when T == Tk; a single query sees every key and needs no mask at all.
        """
        causal = self.causal and T > 1
        if attention_mask is None:
            if not causal or T == Tk:
                return None, causal
            return _causal_mask(T, Tk, Tk - T, device), False
        if attention_mask.shape != (B, Tk):
            raise ValueError(
                f"attention_mask must have shape (batch, keys) = ({B}, {Tk}), got "
                f"{tuple(attention_mask.shape)}; 1 marks a real token, 0 padding"
            )
        keys = attention_mask.bool()  # (B, Tk)
        mask = keys[:, None, None, :]  # (B, 1, 1, Tk)
        if causal:
            mask = mask & _causal_mask(T, Tk, Tk - T, device)  # (B, 1, T, Tk)
        # a query that sees no key would be 0/0 = NaN on some backends: let it see every key
        seen = keys.cumsum(dim=-1) > 0  # (B, Tk): a real key at or before position j
        blind = ~(seen[:, Tk - T :] if causal else seen[:, -1:])  # (B, T) or (B, 1)
        return mask | blind[:, None, :, None], False

    # cell 48
    def attend(self, q, k, v, attention_mask=None, need_weights=False):
        """q (B, H, T, hd) against k, v (B, H, Tk, hd) -> out (B, T, C), or (out, weights
        (B, H, T, Tk)) when need_weights=True (explicit math; otherwise PyTorch's fused kernel)."""
        B, H, T, hd = q.shape
        mask, is_causal = self._mask(attention_mask, B, T, k.size(2), q.device)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
            )  # (B, H, T, hd)
        out = self.proj(y.transpose(1, 2).reshape(B, T, H * hd))  # (B, T, C): heads side by side
        return (out, weights) if need_weights else out

    # cell 50
    def forward(self, x, attention_mask=None, need_weights=False):
        """x: (B, T, C); attention_mask: (B, T), 1/True = real token, 0 = padding. Returns out
        (B, T, C), or (out, weights (B, H, T, T)) when need_weights=True."""
        q, k, v = self.project_qkv(x)  # 3 x (B, H, T, hd)
        return self.attend(q, k, v, attention_mask, need_weights)
