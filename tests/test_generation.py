"""Tests for the decoding modules of notebook 07 (sampling, generation_config, prompts, generation):
filters against hand-computed cases and Hugging Face's logits processors, cached vs uncached
decoding, beam search against brute force, seeded sampling, streaming, batches of prompts of
different lengths, input validation (issue 14 item 8)."""

import itertools
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_model as shared_tiny_model

from tinylm_core.beam_search import beam_search
from tinylm_core.context_window import ContextWindow
from tinylm_core.generation import Generator
from tinylm_core.generation_config import GenerationConfig
from tinylm_core.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    sample_next_token,
    top_k_filter,
    top_p_filter,
)

INF = float("-inf")


def tiny_model(vocab_size=11, positional_encoding="sinusoidal", max_seq_len=16, seed=0):
    return shared_tiny_model(
        seed=seed, vocab_size=vocab_size, num_heads=2, max_seq_len=max_seq_len,
        positional_encoding=positional_encoding,
    )  # fmt: skip


# ---- filters, against hand-computed cases ----
def test_temperature_scales_and_zero_is_greedy():
    logits = torch.tensor([[1.0, 3.0, 2.0]])
    # the largest logit is subtracted first: the same softmax, and no overflow for a tiny t
    torch.testing.assert_close(apply_temperature(logits, 2.0), torch.tensor([[-1.0, 0.0, -0.5]]))
    torch.testing.assert_close(
        apply_temperature(logits, 2.0).softmax(-1), (logits / 2.0).softmax(-1)
    )
    assert apply_temperature(logits, 0).tolist() == [[INF, 3.0, INF]]
    assert apply_temperature(logits, 1e-45).softmax(-1).tolist() == [[0.0, 1.0, 0.0]]
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            apply_temperature(logits, bad)


def test_top_k_keeps_ties_at_the_boundary():
    logits = torch.tensor([[1.0, 4.0, 2.0, 2.0, 0.0]])
    assert top_k_filter(logits, 2).tolist() == [[INF, 4.0, 2.0, 2.0, INF]]  # both 2.0s tie for 2nd
    assert top_k_filter(logits, 1).tolist() == [[INF, 4.0, INF, INF, INF]]
    assert top_k_filter(logits, 100).tolist() == logits.tolist()  # k > vocabulary is fine
    assert top_k_filter(logits, None) is logits
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(logits, -1)
    with pytest.raises(TypeError, match="top_k"):
        top_k_filter(logits, 2.5)


def test_top_p_keeps_smallest_set_reaching_p():
    probs = torch.tensor([[0.1, 0.5, 0.3, 0.1]])
    logits = probs.log()
    # sorted: 0.5, 0.3, 0.1, 0.1 -> cumulative 0.5, 0.8, 0.9, 1.0
    kept = lambda p: (top_p_filter(logits, p) > INF).tolist()[0]
    assert kept(0.4) == [False, True, False, False]
    assert kept(0.75) == [False, True, True, False]
    assert kept(0.85) in ([True, True, True, False], [False, True, True, True])  # a tie at 0.1
    assert kept(1.0) == [True] * 4
    assert kept(1e-9) == [False, True, False, False]  # always at least one token
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="top_p"):
            top_p_filter(logits, bad)


def test_repetition_penalty_divides_positive_multiplies_negative():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # repeated ids are penalised once
    assert apply_repetition_penalty(logits, torch.tensor([[0]]), 1.0).tolist() == logits.tolist()
    with pytest.raises(ValueError, match="repetition_penalty"):
        apply_repetition_penalty(logits, torch.tensor([[0]]), 0.0)


# ---- cached vs uncached ----
class Recorder(torch.nn.Module):
    """Wraps a model and records the last-position logits of every forward call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.seen = model, model.config, []

    def new_kv_cache(self, *args, **kwargs):
        return self.model.new_kv_cache(*args, **kwargs)

    def forward(self, input_ids, **kwargs):
        out = self.model(input_ids, **kwargs)
        self.seen.append(out.logits[:, -1].clone())
        return out


@pytest.mark.parametrize("positional_encoding", ["sinusoidal", "learned", "rope"])
@pytest.mark.parametrize("context_drop", [1, 5])
def test_cache_gives_same_logits_and_tokens_past_the_context(positional_encoding, context_drop):
    model = tiny_model(positional_encoding=positional_encoding, max_seq_len=16)
    runs = {}
    for use_cache in (True, False):
        recorder = Recorder(model)
        generator = Generator(recorder, context_drop=context_drop)
        ids = generator.generate([[1, 2, 3], [4, 5, 6]], 40, use_cache=use_cache)  # 43 > 16
        runs[use_cache] = ids, torch.stack(recorder.seen)
    assert runs[True][0].shape == (2, 43)
    assert torch.equal(runs[True][0], runs[False][0])
    torch.testing.assert_close(runs[True][1], runs[False][1], atol=1e-5, rtol=0)


def test_sampling_with_cache_matches_without():
    generator = Generator(tiny_model(positional_encoding="rope"))
    options = dict(do_sample=True, temperature=0.8, top_k=6, top_p=0.9, repetition_penalty=1.2)
    a = generator.generate([3, 1], 30, seed=7, use_cache=True, **options)
    b = generator.generate([3, 1], 30, seed=7, use_cache=False, **options)
    assert torch.equal(a, b)


# ---- beam search ----
def sequence_logprob(model, prompt, new):
    ids = torch.tensor([prompt + list(new)])
    logprobs = model(ids).logits[0].log_softmax(-1)
    return sum(logprobs[len(prompt) - 1 + i, t].item() for i, t in enumerate(new))


@pytest.mark.parametrize("positional_encoding", ["sinusoidal", "rope"])
def test_beam_search_with_enough_beams_finds_the_exhaustive_best(positional_encoding):
    vocab, steps, prompt = 4, 3, [1, 2]
    model = tiny_model(vocab_size=vocab, positional_encoding=positional_encoding, seed=3)
    with torch.no_grad():
        scored = {
            new: sequence_logprob(model, prompt, new)
            for new in itertools.product(range(vocab), repeat=steps)
        }
    best = max(scored, key=scored.get)
    generator = Generator(model)
    out = generator.generate(prompt, steps, num_beams=vocab ** (steps - 1), return_dict=True)
    assert tuple(out.sequences[0, len(prompt) :].tolist()) == best
    assert out.scores[0] == pytest.approx(scored[best] / steps, abs=1e-4)
    top3 = sorted(scored, key=scored.get, reverse=True)[:3]
    out3 = generator.generate(prompt, steps, num_beams=16, num_return_sequences=3)
    assert [tuple(row[len(prompt) :]) for row in out3.tolist()] == top3


def test_one_beam_is_greedy():
    generator = Generator(tiny_model())
    greedy = generator.generate([1, 2, 3], 12)
    assert torch.equal(generator.generate([1, 2, 3], 12, num_beams=1), greedy)
    assert torch.equal(generator.generate([1, 2, 3], 12, num_beams=1, use_cache=False), greedy)
    # generate() routes num_beams=1 to the greedy loop; the beam search algorithm itself, run with
    # a single beam, must agree with it too.
    config = GenerationConfig(max_new_tokens=12, num_beams=1)
    for use_cache in (True, False):
        window = ContextWindow(generator.model, 1, use_cache, generator.context_drop)
        [(_, new)] = beam_search(window, torch.tensor([[1, 2, 3]]), config, eos=[])
        assert new == greedy[0, 3:].tolist()


def test_beam_search_stops_at_eos_and_reports_it():
    script = [5, 6, 7, 0, 8, 9]  # token 0 is the eos; a scripted model is sure of each step
    generator = Generator(ScriptedLM([9, 9] + script, vocab_size=10))
    out = generator.generate([1, 2, 3], 10, num_beams=3, eos_token_id=0, return_dict=True)
    assert out.finish_reason == "eos"
    assert out.sequences[0].tolist() == [1, 2, 3, 5, 6, 7, 0]
    assert out.new_tokens == [4]


def test_greedy_stops_at_eos_and_reports_it():
    generator = Generator(tiny_model())
    greedy = generator.generate([1, 2, 3], 12)[0].tolist()
    eos = greedy[6]
    first = greedy.index(eos, 3)
    out = generator.generate([1, 2, 3], 12, eos_token_id=eos, return_dict=True)
    assert out.finish_reason == "eos"
    assert out.sequences[0].tolist() == greedy[: first + 1]
    assert generator.last_output is out


def test_batch_rows_finish_independently_and_are_padded():
    generator = Generator(tiny_model())
    rows = generator.generate([[1, 2, 3], [4, 5, 6]], 10)
    eos = rows[0, 4].item()
    out = generator.generate([[1, 2, 3], [4, 5, 6]], 10, eos_token_id=eos, return_dict=True)
    assert out.finish_reasons[0] == "eos"
    for row, n in zip(range(2), out.new_tokens):
        assert out.sequences[row, : 3 + n].tolist() == rows[row, : 3 + n].tolist()


# ---- sampling ----
def test_seeded_sampling_is_reproducible_and_seeds_differ():
    generator = Generator(tiny_model(vocab_size=50))
    sample = lambda seed: generator.generate([1], 30, do_sample=True, seed=seed).tolist()
    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    # temperature 0 is greedy, and top_k=1 too
    greedy = generator.generate([1], 30)
    assert torch.equal(generator.generate([1], 30, do_sample=True, temperature=0), greedy)
    assert torch.equal(generator.generate([1], 30, do_sample=True, top_k=1, seed=5), greedy)


def test_sampling_follows_the_filtered_distribution():
    """Empirical frequencies of the first sampled token match top-k filtered softmax."""
    model = tiny_model(vocab_size=8)
    generator = Generator(model)
    with torch.no_grad():
        logits = model(torch.tensor([[2, 3]])).logits[0, -1]
    expected = top_k_filter(apply_temperature(logits, 1.5), 3).softmax(-1)
    ids = generator.generate([[2, 3]] * 4000, 1, do_sample=True, temperature=1.5, top_k=3, seed=0)[
        :, -1
    ]
    counts = torch.bincount(ids, minlength=8).float() / len(ids)
    assert torch.allclose(counts, expected, atol=0.03)
    assert (counts[expected == 0] == 0).all()


# ---- text, streaming, tokenizers ----
class ByteTokenizer:
    """One token per UTF-8 byte: every multi-byte character is split across tokens."""

    bos_token_id = eos_token_id = pad_token_id = None

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode_bytes(self, ids):
        return bytes(ids)

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")

    def get_vocab_size(self):
        return 256


class ScriptedLM(torch.nn.Module):
    """A 'model' that always predicts the next token of a fixed script, by absolute position."""

    def __init__(self, script, vocab_size=256):
        super().__init__()
        self.script = script
        self.config = SimpleNamespace(vocab_size=vocab_size, max_seq_len=512)

    def new_kv_cache(self, batch_size, **_):
        return SimpleNamespace(seq_len=0, reset=lambda: None, layers=[])

    def forward(self, input_ids, kv_cache=None, **_):
        past = kv_cache.seq_len if kv_cache is not None else 0
        B, T = input_ids.shape
        if kv_cache is not None:
            kv_cache.seq_len += T
        logits = torch.zeros(B, T, self.config.vocab_size)
        for t in range(T):
            logits[:, t, self.script[min(past + t, len(self.script) - 1)]] = 10.0
        return SimpleNamespace(logits=logits)


def test_stream_never_splits_a_character_and_joins_to_the_returned_text():
    text = "naïve café 🙂 — ok"
    prompt = "ab"
    script = list(prompt.encode()) + list(text.encode("utf-8"))
    model = ScriptedLM(script[1:])  # position i predicts token i + 1 of prompt + text
    generator = Generator(model, ByteTokenizer())
    n = len(text.encode("utf-8"))
    pieces = list(generator.stream(prompt, n))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)
    assert generator.generate_greedy(prompt, n) == prompt + text
    # with stop strings: stops after the stop text and says so
    out = generator.generate_greedy(prompt, n, stop=["🙂"])
    assert out == prompt + "naïve café 🙂"
    assert generator.last_output.finish_reason == "stop"
    assert "".join(generator.stream(prompt, n, stop="café")) == "naïve café"


@pytest.mark.parametrize("seed", range(3))
def test_stream_of_random_bytes_equals_decode(seed):
    """Random byte tokens are mostly invalid UTF-8: the stream must still equal decode()."""
    generator = Generator(tiny_model(vocab_size=256), ByteTokenizer())
    pieces = list(generator.stream("é", 40, do_sample=True, seed=seed))
    ids = generator.last_output.sequences[0].tolist()
    assert "".join(pieces) == ByteTokenizer().decode(ids[2:])
    text = generator.generate_sampling("é", 40, seed=seed)
    assert text == ByteTokenizer().decode(ids)


def test_stream_with_a_bpe_tokenizer_splitting_characters():
    from tinylm_core.bpe_tokenizer import BPETokenizer

    tokenizer = BPETokenizer().train("hello world, hello there. " * 20, 260)
    text = " hello wörld 🙂 — 日本"  # unseen characters: several byte tokens each
    script = tokenizer.encode("ab" + text)
    assert len(script) > len("ab" + text)  # some character does span several tokens
    generator = Generator(ScriptedLM(script[1:], vocab_size=tokenizer.get_vocab_size()), tokenizer)
    n = len(script) - len(tokenizer.encode("ab"))
    pieces = list(generator.stream("ab", n))
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)
    assert generator.generate_greedy("ab", n) == "ab" + text
    # random tokens: the stream still joins to exactly the decoded text
    torch.manual_seed(0)
    generator = Generator(tiny_model(vocab_size=tokenizer.get_vocab_size()), tokenizer)
    pieces = list(generator.stream("ab", 30, do_sample=True, seed=1, eos_token_id=[]))
    new = generator.last_output.sequences[0, len(tokenizer.encode("ab")) :].tolist()
    assert "".join(pieces) == tokenizer.decode(new)


def test_stop_strings_stop_each_row_of_a_batch():
    text = "abc;def;ghi"
    script = list(text.encode())
    generator = Generator(ScriptedLM(script[1:], vocab_size=256), ByteTokenizer())
    out = generator.generate([[script[0]], [script[0]]], 10, stop=[";g", "xyz"], return_dict=True)
    assert out.finish_reasons == ["stop", "stop"]
    assert bytes(out.sequences[0].tolist()).decode() == "abc;def;g"
    assert generator.generate_greedy([script[0]], 10, stop="zzz") == text
    assert generator.last_output.finish_reason == "length"


def test_text_methods_accept_strings_and_ids():
    from tinylm_core.char_tokenizer import CharTokenizer

    tokenizer = CharTokenizer()
    tokenizer.build_vocab(["hello world, how are you?"])
    model = tiny_model(vocab_size=tokenizer.get_vocab_size())
    generator = Generator(model, tokenizer)
    text = generator.generate_greedy("hello", 20)
    ids = generator.generate_greedy(tokenizer.encode("hello"), 20, return_ids=True)
    assert text.startswith("hello") and tokenizer.decode(ids) == text
    assert "".join(generator.stream("hello", 20)) == text[len("hello") :]
    sampled = generator.generate_sampling("hello", 20, temperature=0.9, top_p=0.9, seed=1)
    assert sampled == generator.generate_sampling("hello", 20, temperature=0.9, top_p=0.9, seed=1)
    beams = generator.generate_beam_search("hello", 10, num_beams=3, num_return_sequences=2)
    assert len(beams) == 2 and all(b.startswith("hello") for b in beams)


# ---- edge cases ----
def test_bad_arguments_raise_value_errors_naming_them():
    generator = Generator(tiny_model())
    for kwargs, name in [
        (dict(do_sample=True, top_p=0.0), "top_p"),
        (dict(do_sample=True, top_p=1.2), "top_p"),
        (dict(do_sample=True, temperature=-1.0), "temperature"),
        (dict(num_beams=0), "num_beams"),
        (dict(repetition_penalty=0.0), "repetition_penalty"),
        (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    ]:
        with pytest.raises(ValueError, match=name):
            generator.generate([1, 2], 5, **kwargs)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generator.generate([1, 2], -1)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        generator.generate([1, 11], 5)
    with pytest.raises(ValueError, match="empty"):
        generator.generate([], 5)
    with pytest.raises(ValueError, match="tokenizer"):
        generator.generate("text needs a tokenizer", 5)
    assert generator.generate([1, 2], 0).tolist() == [[1, 2]]
    assert generator.generate([1, 2], 3, do_sample=True, top_k=1000, seed=0).shape == (1, 5)


def test_long_prompt_is_cropped_not_rejected():
    generator = Generator(tiny_model(max_seq_len=16))
    prompt = [i % 11 for i in range(40)]
    assert generator.generate(prompt, 5).shape == (1, 45)
    assert torch.equal(
        generator.generate(prompt, 5), generator.generate(prompt, 5, use_cache=False)
    )


# ---- command line ----
@pytest.mark.parametrize("strategy", ["greedy", "top-p", "beam"])
def test_cli_streams_a_checkpoint_continuation(tmp_path, capsys, strategy):
    from tinylm_core import save_checkpoint
    from tinylm_core.__main__ import main
    from tinylm_core.char_tokenizer import CharTokenizer

    tokenizer = CharTokenizer().build_vocab("ROMEO: to be or not to be")
    model = tiny_model(vocab_size=tokenizer.get_vocab_size())
    save_checkpoint(tmp_path / "model.pt", model, tokenizer)
    argv = ["generate", "--checkpoint", str(tmp_path / "model.pt"), "--prompt", "ROMEO:"]
    argv += ["--strategy", strategy, "--max-new-tokens", "12", "--seed", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    expected = Generator(model, tokenizer).generate(
        tokenizer.encode("ROMEO:"),
        12,
        do_sample=strategy == "top-p",
        temperature=0.8,
        top_p=0.9 if strategy == "top-p" else None,
        num_beams=4 if strategy == "beam" else 1,
        seed=1,
        return_dict=True,
    )
    text = tokenizer.decode(expected.sequences[0, : 6 + expected.new_tokens[0]].tolist())
    if expected.finish_reason == "eos":
        text = text[: -len("<eos>")]
    assert printed == text + "\n"


def test_cli_reports_a_missing_checkpoint(tmp_path, capsys):
    from tinylm_core.__main__ import main

    assert main(["generate", "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


# ---- filters against Hugging Face's logits processors (an independent reference) ----
def test_filters_match_hugging_face_processors():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    logits = torch.randn(4, 50) * 3
    previous = torch.randint(50, (4, 12))
    hf = {
        "temperature": transformers.TemperatureLogitsWarper(0.7),
        "top_k": transformers.TopKLogitsWarper(7),
        "top_p": transformers.TopPLogitsWarper(0.8),
        "penalty": transformers.RepetitionPenaltyLogitsProcessor(1.3),
    }
    ours = {
        "temperature": apply_temperature(logits, 0.7),
        "top_k": top_k_filter(logits, 7),
        "top_p": top_p_filter(logits, 0.8),
        "penalty": apply_repetition_penalty(logits, previous, 1.3),
    }
    for name, processor in hf.items():
        expected = processor(previous, logits.clone())
        # same kept tokens, same distribution over them (temperature differs by a constant shift)
        assert torch.equal(ours[name] > INF, expected > INF), name
        torch.testing.assert_close(ours[name].softmax(-1), expected.softmax(-1), msg=name)


def test_sample_next_token_is_argmax_unless_sampling():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    greedy = GenerationConfig()
    assert sample_next_token(logits, None, greedy).tolist() == [1, 0]
    cold = GenerationConfig(do_sample=True, temperature=0)
    assert sample_next_token(logits, None, cold).tolist() == [1, 0]
    top1 = GenerationConfig(do_sample=True, top_k=1)
    assert sample_next_token(logits, torch.Generator().manual_seed(0), top1).tolist() == [1, 0]


# ---- one GenerationConfig, and the validation holes of issue 14 item 8 ----
@pytest.mark.parametrize(
    "options, error, name",
    [
        (dict(temperature=float("nan")), ValueError, "temperature"),
        (dict(temperature=float("inf")), ValueError, "temperature"),
        (dict(repetition_penalty=float("nan")), ValueError, "repetition_penalty"),
        (dict(length_penalty=float("nan")), ValueError, "length_penalty"),
        (dict(num_beams=2.5), TypeError, "num_beams"),
        (dict(num_return_sequences=2.5), TypeError, "num_return_sequences"),
        (dict(max_new_tokens=3.0), TypeError, "max_new_tokens"),
        (dict(seed=2**70), ValueError, "seed"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(stop=""), ValueError, "stop"),
        (dict(stop=["ok", ""]), ValueError, "stop"),
        (dict(top_p=float("nan")), ValueError, "top_p"),
        (dict(top_k=True), TypeError, "top_k"),
        (dict(do_sample="yes"), TypeError, "do_sample"),
        (dict(eos_token_id=1.5), TypeError, "eos_token_id"),
    ],
)
def test_bad_settings_are_clear_errors(options, error, name):
    with pytest.raises(error, match=name):
        GenerationConfig(**options)
    generator = Generator(tiny_model())
    with pytest.raises(error, match=name):
        generator.generate([1, 2], 3, do_sample=True, **options)


def test_tiny_temperature_and_numpy_integers_work():
    import numpy as np

    generator = Generator(tiny_model())
    greedy = generator.generate([1, 2], 8)
    # 1e-45 used to overflow the logits to inf and make softmax NaN (multinomial raised)
    assert torch.equal(generator.generate([1, 2], 8, do_sample=True, temperature=1e-45), greedy)
    # numpy integers are integers (top_k=np.int64(3) used to be a TypeError)
    a = generator.generate([1, 2], 8, do_sample=True, top_k=np.int64(3), seed=np.int64(4))
    assert torch.equal(a, generator.generate([1, 2], 8, do_sample=True, top_k=3, seed=4))
    assert torch.equal(generator.generate([np.int64(1), np.int64(2)], 8), greedy)


def test_prompt_of_floats_is_a_type_error():
    generator = Generator(tiny_model())
    for prompt in ([1.7, 2.2], [1, 2.0], torch.tensor([1.0, 2.0]), [True, False]):
        with pytest.raises(TypeError, match="integer"):
            generator.generate(prompt, 3)  # floats used to be truncated to ints silently


def test_config_object_and_keywords_agree_and_unknown_keywords_are_named():
    generator = Generator(tiny_model(vocab_size=30))
    config = GenerationConfig(max_new_tokens=9, do_sample=True, top_p=0.8, seed=3)
    by_config = generator.generate([1, 2], config=config)
    assert torch.equal(by_config, generator.generate([1, 2], 9, do_sample=True, top_p=0.8, seed=3))
    assert torch.equal(generator.generate([1, 2], config=config, seed=3, top_p=0.8), by_config)
    assert generator.generate([1, 2], config=config, max_new_tokens=2).shape == (1, 4)
    with pytest.raises(TypeError, match="top_q"):
        generator.generate([1, 2], 3, top_q=0.9)


# ---- several prompts (issue 13) ----
def test_prompts_of_different_lengths_give_what_each_gets_alone():
    from tinylm_core import CharTokenizer

    tokenizer = CharTokenizer().build_vocab("ROMEO: JULIET, to be or not to be")
    for encoding in ("learned", "sinusoidal", "rope"):
        generator = Generator(
            tiny_model(tokenizer.get_vocab_size(), positional_encoding=encoding), tokenizer
        )
        prompts = ["ROMEO:", "JULIET, to", "to be", "ROMEO,"]
        alone = [generator.generate_greedy(p, 6) for p in prompts]
        assert generator.generate_greedy(prompts, 6) == alone
        sampled = generator.generate_sampling(prompts, 6, seed=1, num_return_sequences=2)
        assert len(sampled) == 8 and all(s.startswith(p) for s, p in zip(sampled[::2], prompts))
        assert generator.generate_beam_search(prompts[:2], 6, num_beams=2) == [
            generator.generate_beam_search(p, 6, num_beams=2) for p in prompts[:2]
        ]
    # ids: one left-padded tensor, every row's new tokens in the same columns
    out = generator.generate([[3, 4], [5, 6, 7, 8]], 3, eos_token_id=[], return_dict=True)
    pad = tokenizer.pad_token_id
    assert out.sequences.shape == (2, 7) and out.prompt_lengths == [2, 4]
    assert out.sequences[0, :2].tolist() == [pad, pad] and out.sequences[0, 2:4].tolist() == [3, 4]
    assert out.rows()[1][:4] == [5, 6, 7, 8] and [len(r) for r in out.rows()] == [5, 7]


def test_unknown_characters_warn_and_name_them():
    from tinylm_core import CharTokenizer

    tokenizer = CharTokenizer().build_vocab("abc ")
    generator = Generator(tiny_model(tokenizer.get_vocab_size()), tokenizer)
    with pytest.warns(UserWarning, match=r"\['é', 'ü'\]"):
        generator.generate_greedy("abc éü é", 2)


def test_from_checkpoint_loads_model_and_tokenizer(tmp_path):
    from tinylm_core import CharTokenizer, save_checkpoint

    tokenizer = CharTokenizer().build_vocab("to be or not to be")
    model = tiny_model(tokenizer.get_vocab_size())
    save_checkpoint(tmp_path / "model.pt", model, tokenizer)
    generator = Generator.from_checkpoint(tmp_path / "model.pt", device="auto")
    assert generator.generate_greedy("to be", 8) == Generator(model, tokenizer).generate_greedy(
        "to be", 8
    )
