"""Lesson 12's speculative decoding: exact greedy output, the target's sampling distribution."""

import pytest
import torch
from conftest import tiny_model

from tinylm_core.generation import Generator
from tinylm_core.generation_config import GenerationConfig
from tinylm_core.speculative import accept_greedy, accept_sampled, speculative_decode


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_speculation_returns_the_targets_greedy_tokens(k, use_cache):
    target = tiny_model(seed=0)
    drafts = [
        tiny_model(seed=1, num_layers=1),  # a random draft: mostly wrong
        tiny_model(seed=0),  # the target itself: always right
        tiny_model(seed=2, d_model=16, num_heads=2, max_seq_len=10),  # another shape and window
    ]
    generator = Generator(target)
    prompt = torch.randint(0, 37, (1, 5), generator=torch.Generator().manual_seed(k))
    expected = generator.generate(prompt, 50, use_cache=use_cache)  # 55 tokens > max_seq_len 24
    for draft in drafts:
        out = generator.generate(
            prompt, 50, use_cache=use_cache, draft_model=draft, num_speculative_tokens=k
        )
        assert torch.equal(out, expected)


def test_greedy_speculation_with_a_sliding_window_batches_and_eos():
    target, draft = tiny_model(seed=3), tiny_model(seed=4, num_layers=1)
    sliding = Generator(target, context_drop=1)  # every step past the limit re-fills
    prompt = [3, 1, 4, 1, 5]
    assert torch.equal(
        sliding.generate(prompt, 40, draft_model=draft), sliding.generate(prompt, 40)
    )
    generator = Generator(target)
    prompts = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    plain = generator.generate(prompts, 12, return_dict=True)
    fast = generator.generate(prompts, 12, return_dict=True, draft_model=draft)
    assert torch.equal(fast.sequences, plain.sequences)
    eos = plain.rows()[0][6]  # a token greedy decoding writes: it must stop there
    plain = generator.generate(prompts, 12, return_dict=True, eos_token_id=eos)
    fast = generator.generate(prompts, 12, return_dict=True, eos_token_id=eos, draft_model=draft)
    assert fast.rows() == plain.rows() and fast.finish_reasons == plain.finish_reasons
    assert fast.finish_reasons[0] == "eos"


def test_accept_greedy():
    logits = torch.zeros(4, 5)
    logits[[0, 1, 2, 3], [2, 4, 1, 0]] = 1.0  # the target's choices: 2, 4, 1, then 0
    assert accept_greedy(logits, torch.tensor([2, 4, 3])).tolist() == [2, 4, 1]
    assert accept_greedy(logits, torch.tensor([2, 4, 1])).tolist() == [2, 4, 1, 0]  # + a bonus
    assert accept_greedy(logits, torch.tensor([0, 4, 1])).tolist() == [2]
    assert accept_greedy(logits[:1], torch.tensor([], dtype=torch.long)).tolist() == [2]


def total_variation(samples, probs):
    counts = torch.bincount(torch.tensor(samples), minlength=len(probs)).double()
    return 0.5 * (counts / counts.sum() - probs.double()).abs().sum().item()


def test_speculative_sampling_keeps_the_targets_distribution():
    rng = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]])
    q = torch.tensor([[0.1, 0.1, 0.4, 0.4], [0.7, 0.1, 0.1, 0.1]])  # a poor draft
    first, second = [], []
    for _ in range(8000):
        drafts = torch.multinomial(q, 1, generator=rng).flatten()  # (2,) one per position
        out = accept_sampled(p, q, drafts, rng)
        first.append(out[0].item())
        if len(out) > 1:  # the first draft was kept: the second token follows p[1]
            second.append(out[1].item())
    # TV of 8,000 draws from the right distribution is ~0.01; the draft's own (q) is 0.6 away
    assert total_variation(first, p[0]) < 0.025
    assert total_variation(second, p[1]) < 0.03
    assert total_variation(first, q[0]) > 0.3


def test_generator_samples_from_the_target_with_any_draft():
    target = tiny_model(seed=5, vocab_size=5)
    draft = tiny_model(seed=6, vocab_size=5, num_layers=1)
    prompt = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        probs = target(prompt).logits[0, -1].softmax(-1)  # the target's next-token distribution
    config = GenerationConfig(max_new_tokens=3, do_sample=True)
    rng = torch.Generator().manual_seed(0)
    first = [
        speculative_decode(target, draft, prompt, config, 2, 6, rng=rng)[0].sequences[0, 3].item()
        for _ in range(1500)
    ]
    assert total_variation(first, probs) < 0.05  # ~0.03 expected from 1,500 draws
    generator = Generator(target)
    a = generator.generate(prompt, 20, do_sample=True, seed=1, draft_model=draft)
    b = generator.generate(prompt, 20, do_sample=True, seed=1, draft_model=draft)
    assert torch.equal(a, b)  # seeded: reproducible
    rows = generator.generate(prompt, 8, do_sample=True, num_return_sequences=3, draft_model=draft)
    assert rows.shape == (3, 11)


def test_bad_arguments():
    target, generator = tiny_model(), Generator(tiny_model())
    for k in (0, -2):
        with pytest.raises(ValueError, match="num_speculative_tokens"):
            generator.generate([1, 2], 5, draft_model=target, num_speculative_tokens=k)
    with pytest.raises(TypeError, match="num_speculative_tokens"):
        generator.generate([1, 2], 5, draft_model=target, num_speculative_tokens=2.5)
    with pytest.raises(ValueError, match="vocabulary"):
        generator.generate([1, 2], 5, draft_model=tiny_model(vocab_size=40))
    with pytest.raises(ValueError, match="num_beams"):
        generator.generate([1, 2], 5, draft_model=target, num_beams=2)
    with pytest.raises(TypeError, match="draft_model"):
        generator.generate([1, 2], 5, draft_model="small")
    with pytest.raises(ValueError, match="draft_model"):
        generator.generate([1, 2], 5, num_speculative_tokens=3)
    # draft_model=None is plain decoding
    assert torch.equal(
        generator.generate([1, 2], 5, draft_model=None), generator.generate([1, 2], 5)
    )
