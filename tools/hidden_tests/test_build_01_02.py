"""Hidden checks of the build edition, lessons 01-02 (the teacher's copy only; never shipped).

Each test compares a student's piece with an independent reference (PyTorch's fused attention, the
formula written out, complex-number rotation); tools/build_edition.json gives each its points.
"""

import math

import torch
import torch.nn.functional as F

from tinylm_core import attention, positional


def _qkv(seed=0, B=2, H=3, T=5, D=8):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, T, D, generator=g) for _ in range(3)]


def test_attention_matches_pytorch_without_a_mask():
    q, k, v = _qkv()
    out, weights = attention.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))


def test_attention_applies_a_boolean_mask():
    q, k, v = _qkv(1)
    mask = torch.rand(5, 5, generator=torch.Generator().manual_seed(2)) > 0.3
    mask[:, 0] = True  # every query sees at least one key
    out, weights = attention.scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert bool((weights[..., ~mask] == 0).all()), "masked keys must get zero weight"


def test_attention_is_causal_when_asked():
    q, k, v = _qkv(3)
    out, weights = attention.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert bool((weights.triu(1) == 0).all()), "with is_causal, a query must not see later keys"
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_causal_mask_is_lower_triangular():
    mask = attention._causal_mask(4, 4, 0, "cpu")
    assert mask.dtype == torch.bool
    assert torch.equal(mask, torch.ones(4, 4, dtype=torch.bool).tril())


def test_causal_mask_with_an_offset_sees_the_cache():
    mask = attention._causal_mask(2, 5, 3, "cpu")  # queries at positions 3 and 4, 5 keys
    assert torch.equal(mask, torch.tensor([[True] * 4 + [False], [True] * 5]))


def test_sinusoidal_matches_the_formula():
    pe = positional._sinusoidal(torch.arange(7), 6)
    for p in range(7):
        for i in range(3):
            angle = p / 10000 ** (2 * i / 6)
            assert math.isclose(pe[p, 2 * i].item(), math.sin(angle), abs_tol=1e-5), (
                f"PE[{p}, {2 * i}] is {pe[p, 2 * i].item():.4f}, sin({angle:.4f}) expected"
            )
            assert math.isclose(pe[p, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5), (
                f"PE[{p}, {2 * i + 1}] is {pe[p, 2 * i + 1].item():.4f}, cos({angle:.4f}) expected"
            )


def test_rotary_matches_complex_rotation():
    rope = positional.RotaryEmbedding(head_dim=8, max_seq_len=16)
    q, k, _ = _qkv(4, D=8)
    q_rot, k_rot = rope(q, k, offset=2)
    half = 4
    angles = torch.arange(2, 7).float()[:, None] * 10000 ** (-torch.arange(0, 8, 2).float() / 8)
    z = torch.complex(q[..., :half], q[..., half:]) * torch.polar(torch.ones_like(angles), angles)
    torch.testing.assert_close(q_rot, torch.cat([z.real, z.imag], dim=-1), atol=1e-5, rtol=1e-5)
    assert k_rot.shape == k.shape


def test_rotary_scores_depend_on_distance_only():
    rope = positional.RotaryEmbedding(head_dim=8, max_seq_len=64)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    scores = []
    for start in (0, 9, 30):
        q_rot, _ = rope(q, q, offset=start + 3)
        _, k_rot = rope(k, k, offset=start)
        scores.append((q_rot * k_rot).sum().item())
    assert max(scores) - min(scores) < 1e-4, f"q.k changed with absolute position: {scores}"
