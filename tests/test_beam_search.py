"""tinylm_core.beam_search (notebook 07): reordering the KV cache for beam search (against plain
indexing and a forward without a cache, gradients included)."""

import pytest
import torch
from conftest import TINY, tiny_model

from tinylm_core.beam_search import reorder_kv_cache


def random_ids(batch, length, seed=0):
    torch.manual_seed(seed)
    return torch.randint(0, TINY["vocab_size"], (batch, length))


def test_reorder_matches_indexing_and_the_uncached_forward():
    model = tiny_model(positional_encoding="rope")
    ids = random_ids(2, 14)
    with torch.no_grad():
        cache = model.new_kv_cache(2)
        model(ids[:, :10], kv_cache=cache)
        # rows [1, 0, 1]: beam search keeps, swaps and repeats hypotheses
        index = torch.tensor([1, 0, 1])
        before = [
            (layer.k[:, :, :10].clone(), layer.v[:, :, :10].clone()) for layer in cache.layers
        ]
        reorder_kv_cache(cache, index)
        assert cache.batch_size == 3 and cache.seq_len == 10
        for layer, (k, v) in zip(cache.layers, before):  # stored rows, against plain indexing
            assert layer.k.shape[2] == model.config.max_seq_len  # still room to append
            assert torch.equal(layer.k[:, :, :10], k[index])
            assert torch.equal(layer.v[:, :, :10], v[index])
        step = model(ids[index, 10:12], kv_cache=cache).logits
        torch.testing.assert_close(step, model(ids[index, :12]).logits[:, 10:], atol=1e-5, rtol=0)
        reorder_kv_cache(cache, [2, 0])  # a plain list works too
        assert cache.batch_size == 2 and cache.seq_len == 12
    with pytest.raises(ValueError, match="1-D"):
        reorder_kv_cache(cache, torch.zeros(2, 2, dtype=torch.long))


def test_reorder_keeps_gradients():
    # With autograd on, reorder must still let gradients reach the layers that wrote the cache,
    # exactly as indexing the full forward's keys would.
    model = tiny_model().to(torch.float64)
    ids = random_ids(2, 6)
    index = torch.tensor([1, 1, 0])
    cache = model.new_kv_cache(2)
    model(ids, kv_cache=cache)
    reorder_kv_cache(cache, index)
    assert cache.layers[0].k.requires_grad
    cache.layers[0].k[:, :, :6].square().sum().backward()
    via_cache = model.blocks[0].attn.qkv.weight.grad.clone()
    model.zero_grad()
    # reference: recompute layer 0's keys directly and index the batch rows by hand
    block = model.blocks[0]
    x = model.token_embedding(ids) * model.embedding_scale
    x = model.position_encoding(x)
    C, H = model.config.d_model, model.config.num_heads
    k = block.attn.qkv(block.ln_1(x))[..., C : 2 * C].view(2, 6, H, C // H).transpose(1, 2)
    k[index].square().sum().backward()
    torch.testing.assert_close(via_cache, model.blocks[0].attn.qkv.weight.grad)
