"""CharTokenizer: fixed special ids, round trips, unknown characters, JSON save/load, bad input."""

import json
import signal

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.tokenizer import Tokenizer

ALPHABET = "abc xyz\n\t!é語👋\u0301"


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


# ----------------------------------------------------------------------------- the Tokenizer base


def test_the_base_class_picks_the_kind_from_the_file(tok, tmp_path):
    from tinylm_core.bpe_tokenizer import BPETokenizer

    bpe = BPETokenizer().train("aaabdaaabac", 259)
    for original in (tok, bpe):
        original.save(tmp_path / "t.json")
        for loaded in (
            Tokenizer.load(tmp_path / "t.json"),
            Tokenizer.from_dict(original.to_dict()),
        ):
            assert type(loaded) is type(original)
            assert loaded.to_dict() == original.to_dict() and len(loaded) == len(original)
    assert Tokenizer.kinds["char"] is CharTokenizer and Tokenizer.kinds["bpe"] is BPETokenizer
    with pytest.raises(ValueError, match="expected one of \\['bpe', 'char'"):
        Tokenizer.from_dict({"type": "wordpiece"})
    with pytest.raises(ValueError, match="not a tokenizer description"):
        Tokenizer.from_dict([1, 2])


def test_len_is_the_vocabulary_size(tok):
    assert len(tok) == tok.get_vocab_size() == 4 + len(set(ALPHABET))


def test_a_file_from_before_the_registry_still_loads(tmp_path):
    # What the seed's save wrote: raw UTF-8 JSON, not ASCII.
    (tmp_path / "old.json").write_text(
        '{"type": "char", "chars": ["a", "é", "語"], "strict": false}', encoding="utf-8"
    )
    loaded = Tokenizer.load(tmp_path / "old.json")
    assert type(loaded) is CharTokenizer and loaded.encode("é語a") == [5, 6, 4]


def test_a_lone_surrogate_in_the_vocabulary_saves_and_loads(tmp_path):
    # The seed's save wrote UTF-8, which cannot hold a lone surrogate: the file was left empty.
    tok = CharTokenizer().build_vocab("ab\ud800")
    tok.save(tmp_path / "t.json")
    assert CharTokenizer.load(tmp_path / "t.json").itos == tok.itos


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path):
    resource = pytest.importorskip("resource")
    path = tmp_path / "t.json"
    small = CharTokenizer().build_vocab("ab")
    small.save(path)
    before = path.read_bytes()
    big = CharTokenizer().build_vocab("".join(map(chr, range(0x4E00, 0x4E00 + 20_000))))
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 1000, old_limit[1]))
    try:  # the disk "fills up" half way through the big file
        with pytest.raises(OSError):
            big.save(path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.json"]
