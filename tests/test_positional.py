"""tinylm_core.positional against closed forms computed with Python's math module."""

import math

import pytest
import torch

from tinylm_core.positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)

ATOL = 1e-5


def closed_form(p, i, d):
    """Vaswani et al.: PE(p, 2j) = sin(p / 10000^(2j/d)), PE(p, 2j+1) = cos(p / 10000^(2j/d))."""
    angle = p / 10000 ** (2 * (i // 2) / d)
    return math.sin(angle) if i % 2 == 0 else math.cos(angle)


# ---- sinusoidal ----------------------------------------------------------------------------------


def test_sinusoidal_equals_closed_form():
    d, T = 16, 50
    pe = SinusoidalPositionalEncoding(d, max_seq_len=T)(torch.zeros(1, T, d))[0]
    expected = torch.tensor([[closed_form(p, i, d) for i in range(d)] for p in range(T)])
    assert torch.allclose(pe, expected, atol=ATOL)


def test_sinusoidal_adds_to_the_input():
    enc = SinusoidalPositionalEncoding(8, 10)
    x = torch.randn(3, 10, 8)
    assert torch.allclose(enc(x) - x, enc(torch.zeros(1, 10, 8)).expand(3, -1, -1), atol=ATOL)
    assert list(enc.parameters()) == [] and "pe" not in enc.state_dict()


@pytest.mark.parametrize("k", [1, 5, 17])
def test_sinusoidal_shift_is_a_fixed_linear_map(k):
    """PE(p + k) = M_k PE(p) with one matrix M_k (a rotation per sin/cos pair) for every p."""
    d, T = 16, 64
    pe = SinusoidalPositionalEncoding(d, max_seq_len=T + k).pe
    m = torch.zeros(d, d)
    for j in range(d // 2):
        w = 1 / 10000 ** (2 * j / d)
        c, s = math.cos(w * k), math.sin(w * k)
        m[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = torch.tensor([[c, s], [-s, c]])
    assert torch.allclose(pe[:T] @ m.T, pe[k : T + k], atol=1e-4)


@pytest.mark.parametrize("cls", ["sinusoidal", "learned"])
def test_offset_is_consistent_with_a_longer_sequence(cls):
    torch.manual_seed(0)
    d, T = 8, 20
    enc = (
        SinusoidalPositionalEncoding(d, T)
        if cls == "sinusoidal"
        else LearnedPositionalEncoding(T, d)
    )
    x = torch.randn(2, T, d)
    full = enc(x)
    for offset, n in [(0, 3), (3, 1), (4, 16), (19, 1)]:
        assert torch.allclose(
            enc(x[:, offset : offset + n], offset=offset), full[:, offset : offset + n]
        )


def test_sinusoidal_beyond_its_table_uses_the_closed_form():
    d = 8
    enc = SinusoidalPositionalEncoding(d, max_seq_len=4)
    pe = enc(torch.zeros(1, 3, d), offset=10)[0]  # positions 10, 11, 12
    expected = torch.tensor([[closed_form(p, i, d) for i in range(d)] for p in (10, 11, 12)])
    assert torch.allclose(pe, expected, atol=ATOL)
    assert torch.allclose(
        enc(torch.zeros(1, 9, d))[0], SinusoidalPositionalEncoding(d, 9).pe, atol=ATOL
    )


# ---- learned -------------------------------------------------------------------------------------


def test_learned_adds_one_trained_vector_per_position():
    enc = LearnedPositionalEncoding(max_seq_len=10, d_model=4)
    x = torch.randn(2, 6, 4)
    assert torch.equal(enc(x) - x, (enc.weight[:6] + x) - x)
    enc(x).sum().backward()
    assert torch.equal(enc.weight.grad[:6], torch.full((6, 4), 2.0))  # 2 sequences
    assert torch.equal(enc.weight.grad[6:], torch.zeros(4, 4))  # unseen positions learn nothing


def test_learned_beyond_max_seq_len_raises_a_clear_error():
    enc = LearnedPositionalEncoding(max_seq_len=8, d_model=4)
    enc(torch.zeros(1, 8, 4))
    with pytest.raises(ValueError, match="max_seq_len=8"):
        enc(torch.zeros(1, 9, 4))
    with pytest.raises(ValueError, match="max_seq_len=8"):
        enc(torch.zeros(1, 1, 4), offset=8)


@pytest.mark.parametrize(
    "enc", [SinusoidalPositionalEncoding(8, 10), LearnedPositionalEncoding(10, 8)]
)
def test_bad_inputs(enc):
    with pytest.raises(ValueError, match=r"\(batch, seq_len, d_model=8\)"):
        enc(torch.zeros(10, 8))
    with pytest.raises(ValueError, match=r"\(batch, seq_len, d_model=8\)"):
        enc(torch.zeros(1, 10, 6))
    with pytest.raises(ValueError, match="negative"):
        enc(torch.zeros(1, 2, 8), offset=-1)


def test_odd_sizes_are_refused():
    with pytest.raises(ValueError, match="d_model must be even"):
        SinusoidalPositionalEncoding(7, 10)
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(7)


# ---- rotary --------------------------------------------------------------------------------------


def rope_reference(x, positions, base=10000.0):
    """Rotate pair (j, j + D/2) of each vector by angle p * base^(-2j/D), one 2x2 matrix at a time."""
    D = x.size(-1)
    out = x.clone()
    for t, p in enumerate(positions):
        for j in range(D // 2):
            a = p * base ** (-2 * j / D)
            rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            pair = x[..., t, [j, j + D // 2]]  # (..., 2)
            out[..., t, [j, j + D // 2]] = pair @ rot.T
    return out


def test_rope_equals_a_rotation_of_each_pair():
    torch.manual_seed(0)
    rope = RotaryEmbedding(8, max_seq_len=32)
    q, k = torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8)
    q_rot, k_rot = rope(q, k, offset=4)
    assert torch.allclose(q_rot, rope_reference(q, range(4, 10)), atol=ATOL)
    assert torch.allclose(k_rot, rope_reference(k, range(4, 10)), atol=ATOL)
    assert torch.allclose(q_rot.norm(dim=-1), q.norm(dim=-1), atol=ATOL)  # rotations keep lengths


def test_rope_dot_product_depends_only_on_distance():
    """Place the same q and k at positions (m, n): q_rot . k_rot is a function of n - m."""
    torch.manual_seed(0)
    D = 16
    rope = RotaryEmbedding(D, max_seq_len=256)
    q, k = torch.randn(D), torch.randn(D)

    def score(m, n):
        qm = rope(q.view(1, 1, 1, D), q.view(1, 1, 1, D), offset=m)[0]
        kn = rope(k.view(1, 1, 1, D), k.view(1, 1, 1, D), offset=n)[1]
        return (qm * kn).sum().item()

    for distance in (-5, 0, 3, 40):
        scores = [score(m, m + distance) for m in (0, 1, 10, 100, 200) if m + distance >= 0]
        assert max(scores) - min(scores) < 1e-4, (distance, scores)
    assert abs(score(0, 3) - score(0, 4)) > 1e-3  # ...but it does depend on the distance


def test_rope_offset_is_consistent_with_a_longer_sequence_and_beyond_the_table():
    torch.manual_seed(0)
    rope, short = RotaryEmbedding(8, max_seq_len=64), RotaryEmbedding(8, max_seq_len=4)
    q, k = torch.randn(1, 2, 40, 8), torch.randn(1, 2, 40, 8)
    q_full, k_full = rope(q, k)
    for offset, n in [(0, 5), (5, 1), (6, 34), (39, 1)]:
        part = slice(offset, offset + n)
        for r in (rope, short):  # `short` computes positions >= 4 on the fly
            q_part, k_part = r(q[:, :, part], k[:, :, part], offset=offset)
            assert torch.allclose(q_part, q_full[:, :, part], atol=ATOL)
            assert torch.allclose(k_part, k_full[:, :, part], atol=ATOL)


def test_rope_position_zero_is_the_identity_and_checks_head_dim():
    rope = RotaryEmbedding(8)
    q = torch.randn(1, 1, 1, 8)
    assert torch.allclose(rope(q, q)[0], q)
    with pytest.raises(ValueError, match="head_dim=8"):
        rope(torch.randn(1, 1, 3, 6), torch.randn(1, 1, 3, 6))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_outputs_keep_the_input_dtype(dtype):
    x = torch.randn(1, 4, 8, dtype=dtype)
    assert SinusoidalPositionalEncoding(8, 4)(x).dtype == dtype
    assert SinusoidalPositionalEncoding(8, 2)(x).dtype == dtype  # beyond the table too
    learned = LearnedPositionalEncoding(4, 8).to(dtype)
    assert learned(x).dtype == dtype
    q = torch.randn(1, 2, 4, 8, dtype=dtype)
    for rope in (RotaryEmbedding(8, max_seq_len=4), RotaryEmbedding(8, max_seq_len=2)):
        assert all(t.dtype == dtype for t in rope(q, q))
    reference = RotaryEmbedding(8)(q.double(), q.double())[0]
    assert torch.allclose(RotaryEmbedding(8)(q, q)[0].double(), reference, atol=0.05)
