"""CharTokenizer: fixed special ids, round trips, unknown characters, JSON save/load, bad input."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.data import cache_dir, load_corpus

ALPHABET = "abc xyz\n\t!é語👋\u0301"


@pytest.fixture(scope="module")
def shakespeare():
    return load_corpus(cache_dir() / "tinyshakespeare.txt")


@pytest.fixture(scope="module")
def tok():
    return CharTokenizer().build_vocab(["abc xyz\n", "\t!é語👋\u0301"])


def test_vocabulary_layout(tok):
    # Brute-force reference: specials at 0..3, then the distinct characters in sorted order.
    expected = ["<pad>", "<unk>", "<bos>", "<eos>"] + sorted(set(ALPHABET))
    assert tok.itos == expected and tok.get_vocab_size() == len(expected)
    assert (tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2, 3)
    assert tok.encode("cab") == [expected.index(c) for c in "cab"]


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=50))
def test_round_trip(tok, s):
    ids = tok.encode(s)
    assert len(ids) == len(s) and tok.decode(ids) == s


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_unknown_characters_become_unk(tok, s):
    ids = tok.encode(s)
    assert [i == tok.unk_token_id for i in ids] == [c not in ALPHABET for c in s]
    assert tok.decode(ids) == "".join(c if c in ALPHABET else "<unk>" for c in s)


def test_strict_mode_raises_on_unknown_characters():
    strict = CharTokenizer("abc", strict=True)
    assert strict.encode("cab") == [6, 4, 5]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        strict.encode("abd")


def test_special_tokens_in_decode(tok):
    ids = [tok.bos_token_id, *tok.encode("ab"), tok.eos_token_id, tok.pad_token_id]
    assert tok.decode(ids) == "<bos>ab<eos><pad>"
    assert tok.decode(ids, skip_special_tokens=True) == "ab"
    assert tok.decode(torch.tensor(ids)) == "<bos>ab<eos><pad>"  # tensors from a model work too


def test_whole_corpus(shakespeare):
    tok = CharTokenizer().build_vocab(shakespeare)
    assert tok.get_vocab_size() == 4 + 65
    ids = tok.encode(shakespeare)
    assert min(ids) >= 4 and tok.decode(ids) == shakespeare


def test_save_load_and_dict(tok, tmp_path):
    tok.save(tmp_path / "t.json")
    d = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert d["type"] == "char" and d == tok.to_dict()
    for other in (CharTokenizer.load(tmp_path / "t.json"), CharTokenizer.from_dict(d)):
        assert other.itos == tok.itos and other.encode(ALPHABET) == tok.encode(ALPHABET)


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not a tokenizer JSON"),
        ('{"type": "bpe", "merges": []}', "expected 'char'"),
        ("[1, 2, 3]", "not a CharTokenizer"),
        ('{"type": "char", "chars": ["a", "a"]}', "distinct"),
        ('{"type": "char", "chars": ["ab"]}', "single characters"),
        ('{"type": "char"}', "needs 'chars'"),
    ],
)
def test_load_rejects_corrupted_or_foreign_files(tmp_path, content, match):
    (tmp_path / "bad.json").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        CharTokenizer.load(tmp_path / "bad.json")


def test_bad_input(tok):
    with pytest.raises(TypeError):
        tok.encode(123)
    with pytest.raises(TypeError):
        tok.encode(b"bytes")
    with pytest.raises(TypeError):
        CharTokenizer().build_vocab(["ok", 5])
    with pytest.raises(ValueError, match="token ids in 0.."):
        tok.decode([tok.get_vocab_size()])
    with pytest.raises(ValueError, match="token ids in 0.."):
        tok.decode([-1])  # never wraps around to the last character
