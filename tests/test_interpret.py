"""Tests for tinylm_core.interpret and tinylm_core.induction (notebook 10): attention capture, head
ablation, the logit lens, the attention-only model, prefix matching and the hand-built induction head.

References are independent of the modules: attention recomputed from each layer's own weights with
torch.nn.functional, forward hooks that read the residual stream, loops over every query.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model

from tinylm_core.induction import (
    AttentionOnlyBlock,
    attention_only,
    induction_head_by_hand,
    per_position_loss,
    prefix_matching_score,
    repeated_random_tokens,
)
from tinylm_core.interpret import (
    _recompute_weights,
    ablate_heads,
    attention_to,
    attention_weights,
    capture_attention,
    head_means,
    logit_lens,
    previous_token_score,
)

POSITIONAL = ["sinusoidal", "learned", "rope"]


def random_ids(B=3, T=10, vocab_size=37, seed=1):
    return torch.randint(0, vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


def block_inputs(model, ids, attention_mask=None):
    """The residual stream entering each block, read with plain forward pre-hooks."""
    seen = []
    hooks = [b.register_forward_pre_hook(lambda m, a: seen.append(a[0])) for b in model.blocks]
    with torch.no_grad():
        model(ids, attention_mask=attention_mask)
    for hook in hooks:
        hook.remove()
    return seen


def manual_weights(model, block, x, key_mask=None):
    """softmax(q k^T / sqrt(hd)) from the block's own qkv weights, causal (and padding) mask."""
    attn = block.attn
    B, T, C = x.shape
    H, hd = attn.num_heads, C // attn.num_heads
    qkv = F.linear(block.ln_1(x), attn.qkv.weight, attn.qkv.bias)  # (B, T, 3C)
    q, k, _ = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(C, dim=-1))
    if model.rotary is not None:
        q, k = model.rotary(q, k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hd)  # (B, H, T, T)
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    if key_mask is not None:
        allowed = allowed & key_mask.bool()[:, None, None, :]
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1)


# ---------------------------------------------------------------------------- capture


@pytest.mark.parametrize("positional", POSITIONAL)
def test_captured_attention_equals_a_manual_recompute(positional):
    model = tiny_model(positional_encoding=positional)
    ids = random_ids()
    logits, weights = attention_weights(model, ids)
    assert weights.shape == (2, 3, 4, 10, 10)
    for layer, (block, x) in enumerate(zip(model.blocks, block_inputs(model, ids))):
        with torch.no_grad():
            expected = manual_weights(model, block, x)
        torch.testing.assert_close(weights[layer], expected, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4, 10))
    assert (weights.triu(diagonal=1) == 0).all()  # masked positions get exactly 0


def test_captured_attention_respects_padding():
    model = tiny_model()
    ids = random_ids(B=2, T=8)
    mask = torch.tensor([[1] * 8, [0, 0, 0] + [1] * 5])  # the second sequence is left-padded
    with torch.no_grad(), capture_attention(model) as weights:
        model(ids, attention_mask=mask)
    x = block_inputs(model, ids, mask)[1]
    with torch.no_grad():
        expected = manual_weights(model, model.blocks[1], x, mask)
    torch.testing.assert_close(weights[1][1, :, 3:], expected[1, :, 3:], atol=1e-6, rtol=1e-5)
    assert (weights[1][1, :, 3:, :3] == 0).all()  # real tokens give padding no weight


@pytest.mark.parametrize("positional", POSITIONAL)
def test_capturing_changes_no_logits_and_leaves_no_trace(positional):
    model = tiny_model(positional_encoding=positional)
    ids = random_ids()
    with torch.no_grad():
        plain = model(ids).logits
        with capture_attention(model) as weights:
            captured = model(ids).logits
    assert torch.equal(captured, plain)
    assert all(w is not None for w in weights)
    assert all("attend" not in b.attn.__dict__ for b in model.blocks)


def test_capture_removes_its_wrappers_after_an_error():
    model = tiny_model()
    with pytest.raises(ValueError), capture_attention(model):
        model(torch.full((1, 4), 999))  # an id outside the vocabulary
    assert all("attend" not in b.attn.__dict__ for b in model.blocks)


def test_recomputed_weights_expand_fewer_key_heads_for_grouped_query_attention():
    attn = tiny_model().blocks[0].attn
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8)  # 4 query heads share 2 key heads
    weights = _recompute_weights(attn, q, k, None)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    for h in range(4):  # query head h reads key head h // 2
        scores = q[:, h] @ k[:, h // 2].transpose(-2, -1) / math.sqrt(8)
        expected = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        torch.testing.assert_close(weights[:, h], expected)


# ---------------------------------------------------------------------------- scores


def test_attention_to_and_previous_token_score_against_loops():
    torch.manual_seed(0)
    weights = torch.rand(2, 3, 4, 6, 6).softmax(-1)  # (L, B, H, T, T)
    keys = torch.randint(-1, 6, (3, 6))
    expected, count = torch.zeros(2, 4), 0
    for b in range(3):
        for t in range(6):
            if keys[b, t] >= 0:
                expected += weights[:, b, :, t, keys[b, t]]
                count += 1
    torch.testing.assert_close(attention_to(weights, keys), expected / count)
    prev = sum(weights[:, b, :, t, t - 1] for b in range(3) for t in range(1, 6)) / 15
    torch.testing.assert_close(previous_token_score(weights), prev)


def test_prefix_matching_score_against_a_loop():
    torch.manual_seed(0)
    ids = torch.randint(4, (2, 9))  # a small vocabulary: many repeats
    weights = torch.rand(2, 3, 9, 9).softmax(-1)  # (B, H, T, T)
    expected, count = torch.zeros(3), 0
    for b in range(2):
        for t in range(9):
            keys = [s + 1 for s in range(t) if ids[b, s] == ids[b, t]]  # after earlier copies
            if keys:
                expected += weights[b, :, t, keys].sum(-1)
                count += 1
    torch.testing.assert_close(prefix_matching_score(weights, ids), expected / count)


# ---------------------------------------------------------------------------- ablation


def test_ablating_no_head_changes_nothing():
    model = tiny_model()
    ids = random_ids()
    with torch.no_grad():
        plain = model(ids).logits
        with ablate_heads(model, []):
            assert torch.equal(model(ids).logits, plain)
        with ablate_heads(model, [(1, 2)]):
            assert not torch.equal(model(ids).logits, plain)
        assert torch.equal(model(ids).logits, plain)  # the hook is gone afterwards


@pytest.mark.parametrize("means", [False, True])
def test_ablating_a_head_changes_only_what_flows_through_it(means):
    model = tiny_model()
    ids = random_ids()
    mean = head_means(model, ids) if means else None
    hd = model.config.d_model // model.config.num_heads
    seen = {}
    proj = model.blocks[1].attn.proj
    hook = proj.register_forward_hook(lambda m, a, out: seen.update(y=a[0].clone(), out=out))
    with torch.no_grad():
        model(ids)
        y_plain = seen["y"]
        lens_plain = logit_lens(model, ids)
        with ablate_heads(model, [(1, 2)], means=mean):
            model(ids)
            lens_ablated = logit_lens(model, ids)
    hook.remove()
    y = seen["y"]
    replaced = y_plain.clone()
    replaced[..., 2 * hd : 3 * hd] = 0.0 if mean is None else mean[1, 2 * hd : 3 * hd]
    assert torch.equal(y, replaced)  # only head 2's channels changed
    torch.testing.assert_close(seen["out"], F.linear(y, proj.weight, proj.bias))
    assert torch.equal(lens_ablated[:2], lens_plain[:2])  # embeddings and block 0: untouched
    assert not torch.allclose(lens_ablated[2], lens_plain[2])


def test_head_means_are_the_mean_proj_input():
    model = tiny_model()
    ids = random_ids()
    seen = []
    hook = model.blocks[0].attn.proj.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    means = head_means(model, ids)
    hook.remove()
    assert means.shape == (2, 32)
    torch.testing.assert_close(means[0], seen[0].mean(dim=(0, 1)))


@pytest.mark.parametrize("bad", [(2, 0), (-1, 0), (0, 4), (0, -1)])
def test_bad_layer_or_head_indices_raise_value_error(bad):
    model = tiny_model()
    with pytest.raises(ValueError, match="layer|head"), ablate_heads(model, [bad]):
        pass


@pytest.mark.parametrize("bad", [[(0.5, 0)], [(0, "1")], [0], [(0, 1, 2)]])
def test_badly_typed_heads_raise_type_error(bad):
    with pytest.raises(TypeError), ablate_heads(tiny_model(), bad):
        pass


# ---------------------------------------------------------------------------- logit lens


@pytest.mark.parametrize("positional", POSITIONAL)
def test_logit_lens_last_layer_equals_the_logits(positional):
    model = tiny_model(positional_encoding=positional)
    ids = random_ids()
    lens = logit_lens(model, ids)
    with torch.no_grad():
        logits = model(ids).logits
        stream = block_inputs(model, ids)
        first = model.lm_head(model.ln_f(stream[1]))  # after block 0, read by hand
    assert lens.shape == (3, 3, 10, 37)
    torch.testing.assert_close(lens[-1], logits)
    torch.testing.assert_close(lens[1], first)


# ---------------------------------------------------------------------------- induction


def test_attention_only_blocks_skip_the_mlp():
    model = attention_only(tiny_model())
    assert all(isinstance(b, AttentionOnlyBlock) for b in model.blocks)
    assert not any("mlp" in name for name, _ in model.named_parameters())
    ids = random_ids()
    x = block_inputs(model, ids)[0]
    block = model.blocks[0]
    with torch.no_grad():
        expected = x + block.attn(block.ln_1(x), rotary=model.rotary)
        torch.testing.assert_close(block(x, rotary=model.rotary), expected)


def test_repeated_random_tokens():
    gen = torch.Generator().manual_seed(0)
    ids = repeated_random_tokens(5, 7, 10, generator=gen)
    assert ids.shape == (5, 14) and torch.equal(ids[:, :7], ids[:, 7:])
    vocab = torch.tensor([3, 5, 11, 13, 17, 19, 23, 29])
    ids = repeated_random_tokens(50, 8, vocab, generator=gen, distinct=True)
    assert torch.isin(ids, vocab).all()
    assert all(len(set(row[:8].tolist())) == 8 for row in ids)  # distinct within a block
    with pytest.raises(ValueError, match="distinct"):
        repeated_random_tokens(2, 9, vocab, distinct=True)
    with pytest.raises(ValueError):
        repeated_random_tokens(0, 4, 10)


def test_hand_built_induction_head_scores_one_and_solves_the_task():
    V, n = 20, 12
    model = induction_head_by_hand(V, 2 * n)
    ids = repeated_random_tokens(40, n, V, torch.Generator().manual_seed(0), distinct=True)
    _, weights = attention_weights(model, ids)
    assert previous_token_score(weights)[0, 0] > 0.99  # layer 0: the previous-token head
    assert prefix_matching_score(weights, ids)[1, 0] > 0.99  # layer 1: the induction head
    loss = per_position_loss(model, ids)  # (2n - 1,)
    assert loss[n:].max() < 1e-3  # the repeated half is predicted
    assert loss[: n - 1].mean() > math.log(V) / 2  # the first half cannot be
    with ablate_heads(model, [(0, 0)]):  # without the previous-token head, nothing to match
        assert per_position_loss(model, ids)[n:].mean() > math.log(V) / 2


def test_per_position_loss_matches_cross_entropy():
    model = tiny_model()
    ids = random_ids(B=4, T=9)
    with torch.no_grad():
        logits = model(ids[:, :-1]).logits
    expected = torch.stack([F.cross_entropy(logits[:, t], ids[:, t + 1]) for t in range(8)])
    torch.testing.assert_close(per_position_loss(model, ids), expected)
