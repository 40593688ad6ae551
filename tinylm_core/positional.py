# This file is generated from notebooks/02_positional_encodings.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["SinusoidalPositionalEncoding", "LearnedPositionalEncoding", "RotaryEmbedding"]


# cell 9
import math

import torch
import torch.nn as nn


def _check_x(x, d_model):
    if x.dim() != 3 or x.size(-1) != d_model:
        raise ValueError(
            f"x must have shape (batch, seq_len, d_model={d_model}), got {tuple(x.shape)}"
        )


def _check_offset(offset):
    if offset < 0:
        raise ValueError(
            f"offset is the position of the first token and cannot be negative: {offset}"
        )


# cell 11
def _sinusoidal(positions, d_model):
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)) for positions (T,)."""
    inv_freq = torch.exp(
        torch.arange(0, d_model, 2, device=positions.device) * (-math.log(10000.0) / d_model)
    )  # (C/2,)
    angles = positions.float()[:, None] * inv_freq  # (T, C/2)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (T, C/2, 2): sin, cos interleaved
    return pe.flatten(-2)  # (T, C)


# cell 13
class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encodings of "Attention is all you need" (no parameters).

    The table is precomputed for max_seq_len positions; the closed form is defined for every
    position, so positions beyond it are computed on the fly rather than refused.
    """

    def __init__(self, d_model, max_seq_len):
        super().__init__()
        if d_model % 2 != 0:
            raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
        self.d_model = d_model
        self.max_seq_len = max_seq_len
        # not persistent: it is a function of the config, so checkpoints need not carry it
        self.register_buffer(
            "pe", _sinusoidal(torch.arange(max_seq_len), d_model), persistent=False
        )

    # cell 15
    def forward(self, x, offset=0):
        """x: (B, T, C) -> x + PE[offset : offset + T]."""
        _check_x(x, self.d_model)
        _check_offset(offset)
        T = x.size(1)
        if offset + T <= self.max_seq_len:
            pe = self.pe[offset : offset + T]  # (T, C)
        else:
            pe = _sinusoidal(torch.arange(offset, offset + T, device=x.device), self.d_model)
        return x + pe.to(x.dtype)


# cell 25
class LearnedPositionalEncoding(nn.Module):
    """Adds a trained vector per position (GPT-2's wpe). Defined only for positions < max_seq_len."""

    def __init__(self, max_seq_len, d_model):
        super().__init__()
        self.max_seq_len = max_seq_len
        self.d_model = d_model
        # std 0.02: the initializer_range of Hugging Face's GPT-2 and of nanoGPT (OpenAI's
        # original GPT-2 code used 0.01 for wpe)
        self.weight = nn.Parameter(torch.randn(max_seq_len, d_model) * 0.02)

    # cell 27
    def forward(self, x, offset=0):
        """x: (B, T, C) -> x + weight[offset : offset + T]."""
        _check_x(x, self.d_model)
        _check_offset(offset)
        T = x.size(1)
        if offset + T > self.max_seq_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} go beyond max_seq_len={self.max_seq_len}: "
                f"learned encodings exist only for positions 0..{self.max_seq_len - 1}; use a "
                f"shorter input or build the model with a larger max_seq_len"
            )
        return x + self.weight[offset : offset + T]  # (B, T, C)


# cell 30
def _rotate_half(x):
    """(x1, x2) -> (-x2, x1) on the two halves of the last axis: a 90 degree turn of each pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021), applied to queries and keys.

    Channel j is paired with channel j + head_dim/2 (the "rotate_half" layout of GPT-NeoX and of
    LLaMA in Hugging Face), and pair j is turned by the angle position * base^(-2j/head_dim).
    Turning q by angle a and k by angle b makes q.k depend on b - a only: attention sees the
    distance between tokens, never their absolute positions.
    """

    def __init__(self, head_dim, max_seq_len=2048, base=10000.0):
        super().__init__()
        if head_dim % 2 != 0:
            raise ValueError(
                f"head_dim must be even (RoPE turns pairs of channels), got {head_dim}"
            )
        self.head_dim = head_dim
        self.max_seq_len = max_seq_len
        self.base = base
        inv_freq = base ** (-torch.arange(0, head_dim, 2).float() / head_dim)  # (hd/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        cos, sin = self._cos_sin(torch.arange(max_seq_len))
        self.register_buffer("cos", cos, persistent=False)  # (max_seq_len, hd)
        self.register_buffer("sin", sin, persistent=False)

    def _cos_sin(self, positions):
        angles = positions.float()[:, None] * self.inv_freq  # (T, hd/2)
        angles = torch.cat((angles, angles), dim=-1)  # (T, hd): both halves of a pair share it
        return angles.cos(), angles.sin()

    # cell 32
    def _rotate(self, x, offset):
        T = x.size(-2)
        if offset + T <= self.max_seq_len:
            cos, sin = self.cos[offset : offset + T], self.sin[offset : offset + T]  # (T, hd)
        else:  # the rotation is defined for any position; compute what the table lacks
            cos, sin = self._cos_sin(torch.arange(offset, offset + T, device=x.device))
        return x * cos.to(x.dtype) + _rotate_half(x) * sin.to(x.dtype)

    # cell 32
    def forward(self, q, k, offset=0):
        """q, k: (B, H, T, head_dim) at positions offset..offset+T-1 -> (q_rot, k_rot)."""
        if q.size(-1) != self.head_dim or k.size(-1) != self.head_dim:
            raise ValueError(
                f"q and k must end in head_dim={self.head_dim}, got {tuple(q.shape)} and "
                f"{tuple(k.shape)}"
            )
        _check_offset(offset)
        return self._rotate(q, offset), self._rotate(k, offset)
