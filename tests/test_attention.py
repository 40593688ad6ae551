"""tinylm_core.attention against PyTorch's own attention (F.scaled_dot_product_attention and
torch.nn.MultiheadAttention) and against a brute-force loop."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_core.attention import MultiHeadAttention, scaled_dot_product_attention

ATOL = 1e-5


def padding_mask(lengths, T, left=False):
    """(B, T) long mask, 1 = real token; padding on the right (or left)."""
    pos = torch.arange(T)
    lengths = torch.tensor(lengths)[:, None]
    real = pos >= T - lengths if left else pos < lengths
    return real.long()


# ---- the explicit function ----------------------------------------------------------------------


def test_sdpa_matches_brute_force_loop():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 4, 8), torch.randn(5, 8), torch.randn(5, 6)
    out, weights = scaled_dot_product_attention(q, k, v)
    for b in range(3):
        for i in range(4):
            scores = [sum(q[b, i, d] * k[j, d] for d in range(8)) / math.sqrt(8) for j in range(5)]
            w = torch.softmax(torch.stack(scores), dim=0)
            assert torch.allclose(weights[b, i], w, atol=ATOL)
            assert torch.allclose(out[b, i], (w[:, None] * v).sum(0), atol=ATOL)


@pytest.mark.parametrize("case", ["none", "causal", "bool_mask", "causal_rect"])
def test_sdpa_matches_pytorch(case):
    torch.manual_seed(1)
    Tq = 5
    Tk = 7 if case == "causal_rect" else 5
    q, k, v = torch.randn(2, 3, Tq, 8), torch.randn(2, 3, Tk, 8), torch.randn(2, 3, Tk, 8)
    mask = torch.rand(2, 1, Tq, Tk) > 0.3 if case == "bool_mask" else None
    is_causal = case.startswith("causal")
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    assert torch.allclose(out, ref, atol=ATOL)
    assert torch.allclose(weights.sum(-1)[weights.sum(-1) > 0], torch.tensor(1.0), atol=ATOL)


def test_sdpa_fully_masked_row_is_zero_not_nan():
    q, k, v = torch.randn(1, 3, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, True]])
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert torch.equal(out[0, 0], torch.zeros(4)) and torch.equal(weights[0, 0], torch.zeros(3))
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL)


def test_sdpa_dropout_zeroes_and_rescales_weights():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 16, 8), torch.randn(2, 16, 8), torch.randn(2, 16, 8)
    _, clean = scaled_dot_product_attention(q, k, v)
    torch.manual_seed(3)
    out, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    kept = dropped != 0
    assert 0.3 < kept.float().mean() < 0.7
    assert torch.allclose(dropped[kept], clean[kept] * 2, atol=ATOL)
    assert torch.allclose(out, dropped @ v, atol=ATOL)


def test_sdpa_bad_inputs():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(torch.randn(8), x, x)
    with pytest.raises(ValueError, match="same last dimension"):
        scaled_dot_product_attention(torch.randn(4, 6), x, x)
    with pytest.raises(ValueError, match="same number of positions"):
        scaled_dot_product_attention(x, x, torch.randn(3, 8))
    with pytest.raises(TypeError, match="boolean"):
        scaled_dot_product_attention(x, x, x, mask=torch.ones(4, 4))


# ---- MultiHeadAttention against torch.nn.MultiheadAttention -------------------------------------


def pair(d_model=32, num_heads=4, causal=True, bias=True):
    """Our module and torch's, holding the same weights (both stack q, k, v in one matrix)."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(d_model, num_heads, causal=causal, bias=bias).eval()
    ref = nn.MultiheadAttention(d_model, num_heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.out_proj.weight.copy_(ours.proj.weight)
        if bias:
            ref.in_proj_bias.copy_(ours.qkv.bias)
            ref.out_proj.bias.copy_(ours.proj.bias)
    return ours, ref


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padding", [None, "right", "left"])
@pytest.mark.parametrize("need_weights", [False, True])
def test_mha_matches_torch_multihead_attention(causal, padding, need_weights):
    ours, ref = pair(causal=causal)
    B, T = 3, 6
    x = torch.randn(B, T, 32)
    mask = None if padding is None else padding_mask([6, 4, 2], T, left=padding == "left")
    real = torch.ones(B, T, dtype=torch.bool) if mask is None else mask.bool()
    if causal and padding == "left":  # a left-padding query sees no key: torch gives NaN there
        real_q = real
    else:
        real_q = torch.ones(B, T, dtype=torch.bool)
    got = ours(x, attention_mask=mask, need_weights=need_weights)
    out = got[0] if need_weights else got
    expected, ref_w = ref(
        x,
        x,
        x,
        attn_mask=torch.ones(T, T, dtype=torch.bool).triu(1) if causal else None,  # True = blocked
        key_padding_mask=None if mask is None else ~mask.bool(),  # True = padding
        need_weights=True,
        average_attn_weights=False,
    )
    assert torch.allclose(out[real_q], expected[real_q], atol=ATOL)
    if need_weights:
        assert got[1].shape == (B, 4, T, T)
        rows = real_q[:, None, :].expand(B, 4, T)
        assert torch.allclose(got[1][rows], ref_w[rows], atol=ATOL)


def test_mha_without_bias_matches_torch():
    ours, ref = pair(bias=False)
    x = torch.randn(2, 5, 32)
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    expected = ref(x, x, x, attn_mask=causal, need_weights=False)[0]
    assert torch.allclose(ours(x), expected, atol=ATOL)


def test_fully_masked_queries_give_no_nan_forward_or_backward():
    ours, _ = pair()
    x = torch.randn(2, 5, 32, requires_grad=True)
    mask = padding_mask([5, 2], 5, left=True)  # row 1: queries 0..2 see no real key
    for need_weights in (False, True):
        out = ours(x, attention_mask=mask, need_weights=need_weights)
        out = out[0] if need_weights else out
        assert not out.isnan().any()
        out[mask.bool()].sum().backward()
        assert not x.grad.isnan().any()
        x.grad = None


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padded", [False, True])
def test_explicit_path_equals_fast_path(causal, padded):
    ours, _ = pair(causal=causal)
    x = torch.randn(3, 7, 32)
    mask = padding_mask([7, 5, 3], 7) if padded else None
    fast = ours(x, attention_mask=mask)
    explicit, weights = ours(x, attention_mask=mask, need_weights=True)
    assert torch.allclose(fast, explicit, atol=ATOL)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4, 7), atol=ATOL)


def test_causality():
    """Changing the tokens after position t never changes the outputs at positions <= t."""
    ours, _ = pair()
    torch.manual_seed(1)
    x = torch.randn(2, 8, 32)
    base = ours(x)
    for t in range(8):
        y = x.clone()
        y[:, t + 1 :] = torch.randn_like(y[:, t + 1 :])
        changed = ours(y)
        assert torch.allclose(changed[:, : t + 1], base[:, : t + 1], atol=ATOL)
        if t < 7:
            assert not torch.allclose(changed[:, t + 1 :], base[:, t + 1 :], atol=1e-3)
    _, weights = ours(x, need_weights=True)
    assert torch.all(weights.triu(1) == 0)


def test_non_causal_sees_the_future():
    ours, _ = pair(causal=False)
    x = torch.randn(1, 6, 32)
    y = x.clone()
    y[:, -1] += 1.0
    assert not torch.allclose(ours(x)[:, 0], ours(y)[:, 0], atol=1e-4)


def test_gradients_flow_to_every_parameter_and_the_input():
    ours, _ = pair()
    ours.train()
    ours.dropout = 0.1
    x = torch.randn(2, 6, 32, requires_grad=True)
    for need_weights in (False, True):
        out = ours(x, attention_mask=padding_mask([6, 4], 6), need_weights=need_weights)
        (out[0] if need_weights else out).pow(2).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        for name, p in ours.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        ours.zero_grad()
        x.grad = None


def test_dropout_only_in_training():
    ours = MultiHeadAttention(32, 4, dropout=0.5)
    x = torch.randn(2, 6, 32)
    ours.eval()
    assert torch.equal(ours(x), ours(x))
    ours.train()
    torch.manual_seed(0)
    a = ours(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, ours(x))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by num_heads \(4\)"):
        MultiHeadAttention(30, 4)
    mha = MultiHeadAttention(32, 4)
    with pytest.raises(ValueError, match=r"\(batch, seq_len, d_model=32\)"):
        mha(torch.randn(6, 32))  # missing batch axis
    with pytest.raises(ValueError, match=r"\(batch, seq_len, d_model=32\)"):
        mha(torch.randn(1, 2, 6, 32))
    with pytest.raises(ValueError, match=r"\(batch, seq_len, d_model=32\)"):
        mha(torch.randn(2, 6, 16))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        mha(torch.randn(2, 6, 32), attention_mask=torch.ones(2, 5))


# ---- the mask helper and the two halves of forward ---------------------------------------------


def test_no_mask_is_built_when_none_is_needed():
    """The fast path's cheap cases: full causal self-attention uses the kernel's is_causal flag,
    a single query against several keys needs no mask; only T < Tk queries (the last T
    positions) get an explicit, bottom-right aligned mask."""
    mha = MultiHeadAttention(32, 4)
    assert mha._mask(None, 2, 7, 7, "cpu") == (None, True)
    assert mha._mask(None, 2, 1, 9, "cpu") == (None, False)
    mask, is_causal = mha._mask(None, 2, 2, 5, "cpu")
    assert not is_causal and torch.equal(mask, torch.ones(5, 5, dtype=torch.bool).tril()[3:])


def test_forward_is_project_then_attend():
    """forward = attend(*project_qkv(x)): the seam where lesson 02 rotates q and k, and where
    project_qkv's q is x W_q^T + b_q split into heads."""
    ours, _ = pair()
    x = torch.randn(2, 5, 32)
    q, k, v = ours.project_qkv(x)
    assert q.shape == k.shape == v.shape == (2, 4, 5, 8)
    w_q, b_q = ours.qkv.weight[:32], ours.qkv.bias[:32]
    expected_q = (x @ w_q.T + b_q).view(2, 5, 4, 8).transpose(1, 2)  # (B, H, T, hd)
    assert torch.allclose(q, expected_q, atol=ATOL)
    assert torch.equal(ours.attend(q, k, v), ours(x))


@given(
    batch=st.integers(1, 3),
    tq=st.integers(1, 6),
    tk=st.integers(1, 6),
    d=st.integers(1, 8),
    masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=40, deadline=None)
def test_sdpa_matches_pytorch_on_random_shapes(batch, tq, tk, d, masked, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, n, d, generator=g) for n in (tq, tk, tk))
    mask = torch.rand(batch, tq, tk, generator=g) > 0.4 if masked else None
    out, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=ATOL)


def test_lesson_01_attention_is_plain():
    """Lesson 01 teaches plain attention: no hooks for later lessons' rotary positions or KV
    cache, and no speed tricks (lesson 05's DecoderAttention and lesson 07 add those)."""
    import inspect

    from tinylm_core import attention

    parameters = list(inspect.signature(MultiHeadAttention.forward).parameters)
    assert parameters == ["self", "x", "attention_mask", "need_weights"]
    assert not hasattr(attention, "Linear")
    layer = MultiHeadAttention(32, 4)
    assert type(layer.qkv) is nn.Linear and type(layer.proj) is nn.Linear
