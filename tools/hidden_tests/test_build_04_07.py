"""Hidden checks of the build edition, lessons 04-07 (the teacher's copy only; never shipped)."""

import math
from collections import Counter

import torch

from tinylm_core import bpe_tokenizer, bpe_training, model, model_config, optim, sampling


def test_merge_replaces_every_occurrence_left_to_right():
    assert bpe_training._merge([1, 2, 1, 2, 2, 1, 2], (1, 2), 9) == [9, 9, 2, 9]
    assert bpe_training._merge([1, 1, 1], (1, 1), 5) == [5, 1]


def _brute_force_merges(text, vocab_size):
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = Counter(zip(ids, ids[1:]))
        if not counts:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges[pair] = new_id
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    return merges


def test_training_merges_the_most_frequent_pair_each_time():
    text = "aaabdaaabac low lower lowest newest widest " * 3
    assert bpe_training.train_bpe_reference(text, 256 + 12) == _brute_force_merges(text, 268)


def test_encoding_applies_merges_in_rank_order():
    merges = {(97, 97): 256, (256, 97): 257, (98, 99): 258}
    assert bpe_tokenizer.apply_merges(list(b"aaabc"), merges) == [257, 258]
    assert bpe_tokenizer.apply_merges(list(b"aaaa"), merges) == [256, 256]


def test_block_is_pre_norm_with_two_residuals():
    torch.manual_seed(0)
    config = model_config.ModelConfig(vocab_size=11, d_model=16, num_layers=1, num_heads=2,
                                      d_ff=32, max_seq_len=8, dropout=0.0)  # fmt: skip
    block = model.TransformerBlock(config).eval()
    x = torch.randn(2, 5, 16)
    h = x + block.attn(block.ln_1(x))
    torch.testing.assert_close(block(x), h + block.mlp(block.ln_2(h)))


def test_schedule_warms_up_then_follows_a_cosine():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = optim.get_cosine_schedule_with_warmup(optimizer, 4, 14, min_lr_ratio=0.1)
    lrs = []
    for _ in range(16):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert [round(x, 6) for x in lrs[:4]] == [0.2, 0.4, 0.6, 0.8]
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(11)]
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(lrs[4:15], expected))
    assert math.isclose(lrs[15], 0.1, abs_tol=1e-6)


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0, 0.0]])
    kept = sampling.top_k_filter(logits, 2)
    assert torch.equal(torch.isfinite(kept), torch.tensor([[False, True, False, True, False]]))
    assert torch.equal(kept[torch.isfinite(kept)], torch.tensor([4.0, 3.0]))


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([[0.05, 0.5, 0.3, 0.15]])
    kept = torch.isfinite(sampling.top_p_filter(probs.log(), 0.75))
    assert torch.equal(kept, torch.tensor([[False, True, True, False]]))
    tiny = torch.isfinite(sampling.top_p_filter(probs.log(), 0.01))
    assert torch.equal(tiny, torch.tensor([[False, True, False, False]])), "keep the top token"
