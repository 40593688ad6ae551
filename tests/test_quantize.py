"""Lesson 12's int8 quantization: weights, the quantized model, the int8 KV cache."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import tiny_model

from tinylm_core.generation import Generator
from tinylm_core.kv_cache import KVCache, LayerKVCache
from tinylm_core.quantize import (
    Int8KVCache,
    Int8LayerKVCache,
    Int8Linear,
    QuantizedLM,
    dequantize,
    quantize_absmax,
    quantize_int8,
)
from tinylm_core.roofline import model_bytes


def test_scales_recover_the_weights_within_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(64, 48) * torch.logspace(-3, 1, 64)[:, None]  # rows of very different sizes
    w[5] = 0.0
    q, scale = quantize_absmax(w)
    assert q.dtype == torch.int8 and scale.shape == (64, 1)
    error = (dequantize(q, scale) - w).abs()
    assert (error <= scale / 2 * (1 + 1e-5)).all()
    nonzero = torch.arange(64) != 5
    assert (q[nonzero].abs().amax(dim=1) == 127).all()  # each row's largest weight uses the range
    assert (q[5] == 0).all() and scale[5] == 1  # a zero row stays zero


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_is_dequantized_weights_times_input(bias):
    torch.manual_seed(0)
    linear = nn.Linear(48, 40, bias=bias)
    layer = Int8Linear(linear, kernel="reference")
    x = torch.randn(3, 7, 48)
    weight = dequantize(layer.weight_int8, layer.scale)
    expected = F.linear(x, weight, linear.bias)
    assert (layer(x) - expected).abs().max() <= 1e-5
    # and close to the float layer: the weights moved by at most half a step
    assert (layer(x) - linear(x)).abs().max() < 0.05 * linear(x).abs().max()


def test_fbgemm_kernel_matches_the_reference_within_activation_rounding():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    fast, slow = Int8Linear(linear), Int8Linear(linear, kernel="reference")
    assert torch.equal(fast.weight_int8, slow.weight_int8)
    for rows in (1, 5):
        x = torch.randn(rows, 64)
        y, reference = fast(x), slow(x)
        assert y.shape == reference.shape
        # the kernel also rounds x to 7-8 bits per call: about 1% of the output's size
        assert (y - reference).abs().max() < 0.02 * reference.abs().max()


def test_quantized_model_generates_and_is_four_times_smaller():
    model = tiny_model(d_model=64, d_ff=256, vocab_size=50)
    quantized = quantize_int8(model)
    assert isinstance(quantized, QuantizedLM) and type(model) is not QuantizedLM  # a copy
    assert not any(type(m) is nn.Linear for m in quantized.modules())
    # the tied head and embedding share one int8 table
    assert quantized.token_embedding.weight_int8 is quantized.lm_head.weight_int8
    ratio = model_bytes(model) / model_bytes(quantized)
    assert 3.2 < ratio < 4.0, ratio  # 4x, less the scales and the fp32 layer norms
    ids = torch.randint(0, 50, (2, 10))
    with torch.no_grad():
        a, b = model(ids).logits, quantized(ids).logits
    assert (a - b).abs().max() < 0.05 * a.abs().max()
    out = Generator(quantized).generate(ids, 30)  # past max_seq_len=24: crops work too
    assert out.shape == (2, 40)


def test_quantize_int8_refuses_bad_input():
    model = tiny_model()
    with pytest.raises(ValueError, match="kernel"):
        quantize_int8(model, kernel="gpu")
    with pytest.raises(ValueError, match="quantized already"):
        quantize_int8(quantize_int8(model))
    with pytest.raises(TypeError):
        quantize_int8(nn.Linear(3, 4))


def test_int8_kv_cache_equals_the_fp32_cache_within_quantization_error():
    torch.manual_seed(0)
    exact, int8 = LayerKVCache(2, 4, 16, 8), Int8LayerKVCache(2, 4, 16, 8)
    for new in (5, 1, 1, 3):
        k, v = torch.randn(2, 4, new, 8), torch.randn(2, 4, new, 8) * 3
        (k1, v1), (k2, v2) = exact.update(k, v), int8.update(k, v)
        assert k2.shape == k1.shape and int8.seq_len == exact.seq_len
        assert ((k2 - k1).abs() <= int8.k_scale[:, :, : int8.seq_len] / 2 + 1e-6).all()
        assert ((v2 - v1).abs() <= int8.v_scale[:, :, : int8.seq_len] / 2 + 1e-6).all()
    assert int8.k.element_size() == 1
    with pytest.raises(ValueError, match="full"):
        int8.update(torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8))


def test_int8_kv_cache_in_a_model():
    model = tiny_model()
    quantized = quantize_int8(model, kernel="reference", kv_cache=True)
    cache = quantized.new_kv_cache(1)
    assert isinstance(cache, Int8KVCache) and isinstance(cache, KVCache)
    ids = torch.randint(0, 37, (1, 12))
    with torch.no_grad():
        full = quantized(ids).logits[0, -1]
        quantized(ids[:, :11], kv_cache=cache)
        step = quantized(ids[:, 11:], kv_cache=cache).logits[0, -1]
        cache.crop(4)  # lesson 05's crop works on it
    assert cache.seq_len == 4
    assert (full - step).abs().max() < 0.05 * full.abs().max()
    assert Generator(quantized).generate(ids, 20).shape == (1, 32)
