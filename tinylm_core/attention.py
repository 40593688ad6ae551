# This file is generated from notebooks/01_attention.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["scaled_dot_product_attention", "Linear", "MultiHeadAttention"]


# cell 28
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


# cell 34
class Linear(nn.Linear):
    """nn.Linear (same parameters, same state_dict) that is faster on a handful of rows.

    For 2..16 rows on the CPU it computes (W x^T)^T + b instead of x W^T + b: the same sums,
    with the big matrix on the left, which MKL runs faster for so few rows (decoding with a
    batch or with beams; about 2x for GPT-2-sized layers). One row or many rows keep F.linear.

    >>> layer = Linear(4, 3)
    >>> x = torch.randn(2, 4)
    >>> torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias), atol=1e-6)
    True
    """

    def forward(self, x):
        rows = x.numel() // self.in_features
        if not 1 < rows <= 16 or x.device.type != "cpu":
            return F.linear(x, self.weight, self.bias)
        columns = x.reshape(rows, self.in_features).T  # (in, rows)
        if self.bias is None:
            y = self.weight @ columns  # (out, rows)
        else:
            y = torch.addmm(self.bias[:, None], self.weight, columns)  # (out, rows)
        return y.T.contiguous().view(*x.shape[:-1], self.out_features)  # (..., out)


# cell 37
class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over (B, T, C), with an optional causal mask.

    One fused `Linear` makes q, k and v (stacked in that order, like GPT-2's c_attn and
    torch.nn.MultiheadAttention's in_proj_weight); the C channels are split into num_heads heads
    of head_dim = C / num_heads, each attends on its own, and `proj` mixes the heads back.
    Dropout acts on the attention weights only; residual dropout belongs to the block around it.
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
        self.qkv = Linear(d_model, 3 * d_model, bias=bias)
        self.proj = Linear(d_model, d_model, bias=bias)

    def forward(self, x, attention_mask=None, need_weights=False, rotary=None, kv_cache=None):
        """x: (B, T, C). attention_mask: (B, Tk), 1/True = real token, 0 = padding, over all keys
        (cached + new). rotary: a RotaryEmbedding for q and k. kv_cache: an object with `seq_len`
        and `update(k, v) -> (k_all, v_all)`. Returns out (B, T, C), or (out, weights (B, H, T, Tk))
        when need_weights=True (explicit math; otherwise PyTorch's fused kernel).
        """
        if x.dim() != 3 or x.size(-1) != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq_len, d_model={self.d_model}), got "
                f"{tuple(x.shape)}; add a batch axis with x.unsqueeze(0) for a single sequence"
            )
        B, T, C = x.shape
        # one matmul for q, k and v, then one view + permute splits them and the heads
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, hd)
        past = 0 if kv_cache is None else kv_cache.seq_len
        if rotary is not None:
            q, k = rotary(q, k, offset=past)  # positions past..past+T-1
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, H, past + T, hd)
        mask, is_causal = self._mask(attention_mask, B, T, k.size(2), x.device)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal
            )
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side again
        out = self.proj(y)
        return (out, weights) if need_weights else out

    def _mask(self, attention_mask, B, T, Tk, device):
        """(boolean mask (B, 1, T, Tk) or None, is_causal) for T new queries against Tk keys.

        The new queries sit at the end: query i is at absolute position Tk - T + i and may see
        keys 0..Tk - T + i (bottom-right aligned). The fused kernel's is_causal is top-left
        aligned, so it is used only when there is no past (T == Tk); a single new query sees
        every key and needs no mask at all (the cheap decode step).
        """
        causal = self.causal and T > 1
        if attention_mask is None:
            if not causal or T == Tk:
                return None, causal
            return _causal_mask(T, Tk, Tk - T, device), False
        if attention_mask.shape != (B, Tk):
            raise ValueError(
                f"attention_mask must have shape (batch, keys) = ({B}, {Tk}) (cached + new "
                f"positions), got {tuple(attention_mask.shape)}"
            )
        keys = attention_mask.bool()  # (B, Tk)
        mask = keys[:, None, None, :]  # (B, 1, 1, Tk)
        if causal:
            mask = mask & _causal_mask(T, Tk, Tk - T, device)  # (B, 1, T, Tk)
        # A query that sees no key (left padding under the causal mask) would be 0/0 = NaN on
        # some backends: let it see every key instead. Its output is junk, but no real token
        # attends to a padding position and the loss ignores it.
        seen = keys.cumsum(dim=-1) > 0  # (B, Tk): a real key at or before position j
        blind = ~(seen[:, Tk - T :] if causal else seen[:, -1:])  # (B, T) or (B, 1)
        return mask | blind[:, None, :, None], False
