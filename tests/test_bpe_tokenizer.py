"""BPETokenizer: the fast trainer against the naive reference, GPT-2 exactness against an
independent re-implementation of GPT-2's original encoder.py and Hugging Face's tokenizer, encoding
in O(n log n), tiktoken's special-token rules, safe split patterns, round trips, JSON, bad input."""

import json
import random

import pytest
import regex
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinylm_core.bpe_tokenizer import BPETokenizer
from tinylm_core.bpe_training import train_bpe, train_bpe_reference
from tinylm_core.pretokenize import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN
from tinylm_core.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def gpt2(gpt2_files):
    return BPETokenizer.from_gpt2_files(*gpt2_files)


@pytest.fixture(scope="module")
def small(shakespeare):
    """A tokenizer trained on Shakespeare with 200 merges and two special tokens."""
    return BPETokenizer(special_tokens=["<|endoftext|>", "<|pad|>"]).train(
        shakespeare[:50_000], 456
    )


class GPT2Reference:
    """GPT-2's original encoder.py (openai/gpt-2, src/encoder.py), compactly: string tokens made of
    printable stand-ins for bytes, merged by the rank of their pair in vocab.bpe."""

    def __init__(self, encoder_json, vocab_bpe):
        self.encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
        merges = [
            tuple(line.split()) for line in vocab_bpe.read_text(encoding="utf-8").split("\n")[1:-1]
        ]
        self.ranks = dict(zip(merges, range(len(merges))))
        bs = (
            list(range(ord("!"), ord("~") + 1))
            + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1))
        )
        cs = bs[:]
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + len(cs) - 188)  # 188 printable bytes come first
        self.byte_encoder = dict(zip(bs, map(chr, cs)))
        self.pat = regex.compile(
            r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
        )
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = word
        return word

    def encode(self, text):
        out = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            out.extend(self.encoder[t] for t in self.bpe(token))
        return out


@pytest.fixture(scope="module")
def gpt2_reference(gpt2_files):
    vocab_bpe, encoder_json = gpt2_files
    return GPT2Reference(encoder_json, vocab_bpe)


# Text that stresses tokenizers: emoji (with ZWJ and skin tones), combining marks, CJK, control
# characters, long whitespace runs, contractions, digits, and anything else hypothesis finds.
TRICKY = st.sampled_from(
    [
        "👋",
        "👨‍👩‍👧",
        "👍🏽",
        "e\u0301",
        "ñ",
        "語",
        "中文",
        "\x00",
        "\x1b",
        "\r\n",
        "\t",
        " " * 7,
        "\n\n\n",
        "'s",
        "'ll",
        "'S",
        "123456",
        "<|endoftext|>",
        "<|pad|>",
        "\u200b",
        "\ufeff",
        "Ġ",
        "A",
    ]
)
TEXT = st.one_of(
    st.text(max_size=40), st.lists(st.one_of(TRICKY, st.text(max_size=5))).map("".join)
)


# ----------------------------------------------------------------------------- training


def test_textbook_example():
    # Wikipedia's example: aa -> Z, ab -> Y, ZY -> X turns "aaabdaaabac" into "XdXac".
    expected = {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert train_bpe_reference("aaabdaaabac", 259) == expected
    assert train_bpe("aaabdaaabac", 259) == expected
    tok = BPETokenizer().train("aaabdaaabac", 259)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


@pytest.mark.parametrize(
    "corpus, pattern, vocab_size",
    [
        ("shakespeare[:3000]", None, 320),
        ("shakespeare[100_000:108_000]", GPT2_SPLIT_PATTERN, 380),
        ("pydoc[:8_000]", GPT4_SPLIT_PATTERN, 380),
        ("multilingual", GPT2_SPLIT_PATTERN, 300),
    ],
)
def test_fast_trainer_equals_reference(shakespeare, corpus, pattern, vocab_size):
    from pydoc_data.topics import topics

    pydoc = "\n".join(topics[k] for k in sorted(topics))
    multilingual = "naïve café 東京 東京都 😀😀😀 Ünïcödé mañana " * 20 + "ab" * 50
    text = eval(corpus, {"shakespeare": shakespeare, "pydoc": pydoc, "multilingual": multilingual})
    fast = train_bpe(text, vocab_size, pattern)
    assert list(fast.items()) == list(train_bpe_reference(text, vocab_size, pattern).items())


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="ab c\n", max_size=60),
    st.integers(256, 280),
    st.sampled_from([None, GPT2_SPLIT_PATTERN]),
)
def test_fast_trainer_equals_reference_on_random_text(text, vocab_size, pattern):
    try:
        expected = train_bpe_reference(text, vocab_size, pattern)
    except ValueError:  # more tokens than the text allows: the fast trainer must refuse too
        with pytest.raises(ValueError, match="allows at most"):
            train_bpe(text, vocab_size, pattern)
        return
    assert list(train_bpe(text, vocab_size, pattern).items()) == list(expected.items())


def test_train_bad_input():
    with pytest.raises(ValueError, match=">= 256"):
        BPETokenizer().train("hello", 255)
    with pytest.raises(ValueError, match=">= 256"):
        BPETokenizer().train("hello", 300.0)
    with pytest.raises(ValueError, match="allows at most 260 tokens"):
        BPETokenizer().train("hello", 300)  # "hello" has 4 distinct pairs: 4 merges
    with pytest.raises(TypeError):
        BPETokenizer().train(b"hello", 300)
    with pytest.raises(TypeError):
        BPETokenizer(special_tokens="<|endoftext|>")
    with pytest.raises(ValueError, match="non-empty strings"):
        BPETokenizer(special_tokens=["<|endoftext|>", ""])


def test_special_tokens_never_enter_training(shakespeare):
    # Documents joined by <|endoftext|>: training must cut it out, as encode does, or it learns
    # tokens such as "<|", "|>", "endoftext" and ".<|" that cross from a document into it.
    docs = shakespeare[:50_000].split("\n\n")
    text = "<|endoftext|>".join(docs)
    tok = BPETokenizer().train(text, 456)
    learned = tok.vocab[256 : 256 + len(tok.merges)]
    assert not [t for t in learned if b"<|" in t or b"|>" in t or b"endoftext" in t]
    assert tok.merges == train_bpe(docs, 456, GPT2_SPLIT_PATTERN)  # each document on its own
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(tok.eos_token_id) == len(docs) - 1 and tok.decode(ids) == text


def test_build_vocab_seed_api(shakespeare):
    texts = shakespeare[:20_000].split("\n\n")
    tok = BPETokenizer().build_vocab(texts, 300)
    assert tok.get_vocab_size() == 301 and tok.merges == train_bpe(
        "\n".join(texts), 300, GPT2_SPLIT_PATTERN
    )


# ----------------------------------------------------------------------------- encode / decode


@settings(max_examples=2000, deadline=None)
@given(TEXT)
def test_round_trip_and_gpt2_matches_reference_encoder(small, gpt2, gpt2_reference, s):
    assert small.decode(small.encode(s, allowed_special="all")) == s
    assert small.decode(small.encode_ordinary(s)) == s
    ids = gpt2.encode_ordinary(s)
    assert ids == gpt2_reference.encode(s)
    assert gpt2.decode(ids) == s


def test_gpt2_known_ids(gpt2, gpt2_reference):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert gpt2.encode_ordinary("<|endoftext|>") == gpt2_reference.encode("<|endoftext|>")
    assert len(gpt2.encode_ordinary("<|endoftext|>")) > 1
    assert gpt2.encode("a<|endoftext|>b", allowed_special={"<|endoftext|>"}) == [64, 50256, 65]
    assert gpt2.get_vocab_size() == len(gpt2) == 50257
    assert gpt2.bos_token_id == gpt2.eos_token_id == 50256
    assert gpt2.pad_token_id is None


def test_gpt2_whole_tinyshakespeare(gpt2, gpt2_reference, shakespeare):
    ids = gpt2.encode(shakespeare)
    assert len(ids) == 338_025
    assert (
        ids[:20_000]
        == gpt2_reference.encode(shakespeare[: len(gpt2.decode(ids[:20_000]))])[:20_000]
    )
    assert gpt2.decode(ids) == shakespeare


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 50256), max_size=20))
def test_decode_any_valid_ids_never_raises(gpt2, ids):
    raw = gpt2.decode_bytes(ids)
    assert gpt2.decode(ids) == raw.decode("utf-8", errors="replace")


def test_decode_partial_character_and_bad_ids(gpt2, small):
    ids = gpt2.encode("🤗")
    assert len(ids) > 1 and gpt2.decode(ids[:1]) == "\ufffd" and gpt2.decode(ids) == "🤗"
    assert gpt2.decode(torch.tensor(ids)) == "🤗"
    for tok in (gpt2, small):
        with pytest.raises(ValueError, match="token ids in 0.."):
            tok.decode([tok.get_vocab_size()])
        with pytest.raises(ValueError, match="token ids in 0.."):
            tok.decode([-1])  # never wraps around to the last token
        with pytest.raises(TypeError):
            tok.encode(None)
        with pytest.raises(TypeError):
            tok.encode_ordinary(["list"])


def test_gpt4_pattern(shakespeare):
    tok = BPETokenizer(pattern="gpt4").train(shakespeare[:20_000], 300)
    assert tok.pattern == GPT4_SPLIT_PATTERN
    s = "It'S 1234567 ok\r\n\r\n  x"
    assert tok.decode(tok.encode(s)) == s
    assert regex.findall(tok.pattern, "1234567") == ["123", "456", "7"]


# ----------------------------------------------------------------------------- save / load


def test_special_tokens_and_save_load(small, tmp_path):
    base = 456
    assert small.special_tokens == {"<|endoftext|>": base, "<|pad|>": base + 1}
    assert small.get_vocab_size() == base + 2 and small.eos_token_id == base
    s = "Hello<|pad|> there<|endoftext|><|endoftext|>"
    ids = small.encode(s, allowed_special="all")
    assert ids.count(base) == 2 and ids.count(base + 1) == 1 and small.decode(ids) == s
    assert base not in small.encode_ordinary(s)

    small.save(tmp_path / "bpe.json")
    d = json.loads((tmp_path / "bpe.json").read_text(encoding="utf-8"))
    assert d["type"] == "bpe" and d == json.loads(json.dumps(small.to_dict()))
    for loaded in (BPETokenizer.load(tmp_path / "bpe.json"), BPETokenizer.from_dict(d)):
        assert loaded.merges == small.merges and loaded.special_tokens == small.special_tokens
        assert loaded.encode(s, allowed_special="all") == ids and loaded.pattern == small.pattern


def test_gpt2_survives_to_dict(gpt2):
    again = BPETokenizer.from_dict(json.loads(json.dumps(gpt2.to_dict())))
    s = "Hello world, it's 2024! 👋 <|endoftext|>"
    assert again.encode(s, allowed_special="all") == gpt2.encode(s, allowed_special="all")
    assert again.byte_ids == gpt2.byte_ids


def _corrupt(d, **changes):
    return {**d, **changes}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: "{not json", "not a tokenizer JSON"),
        (lambda d: json.dumps({"type": "char", "chars": ["a"]}), "expected 'bpe'"),
        (lambda d: json.dumps([1, 2]), "not a BPETokenizer"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "merges"}), "corrupted"),
        (lambda d: json.dumps(_corrupt(d, byte_ids=d["byte_ids"][:-1] + [0])), "permutation"),
        (lambda d: json.dumps(_corrupt(d, merges=d["merges"][1:])), "256 \\+ k"),
        (lambda d: json.dumps(_corrupt(d, merges=[[300, 1, 256]])), "smaller ids"),
        (lambda d: json.dumps(_corrupt(d, merges=[["a", 1]])), "corrupted"),
        (lambda d: json.dumps(_corrupt(d, special_tokens=[7])), "corrupted"),
        (lambda d: json.dumps(_corrupt(d, pattern="(unclosed")), "trust_pattern=True"),
        (lambda d: json.dumps(_corrupt(d, pattern=["a"])), "trust_pattern=True"),
    ],
)
def test_load_rejects_corrupted_or_foreign_files(small, tmp_path, make, match):
    (tmp_path / "bad.json").write_text(make(small.to_dict()), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        BPETokenizer.load(tmp_path / "bad.json")


def test_from_gpt2_files_rejects_mismatched_files(tmp_path, gpt2_files):
    (tmp_path / "encoder.json").write_text(json.dumps({"a": 0}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a matching pair"):
        BPETokenizer.from_gpt2_files(gpt2_files[0], tmp_path / "encoder.json")


# ----------------------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def hf_gpt2(gpt2_files):
    """GPT-2's tokenizer in Hugging Face's `tokenizers` (Rust): an independent implementation."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab_bpe, encoder_json = gpt2_files
    hf = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(str(encoder_json), str(vocab_bpe)))
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    return hf


def test_gpt2_matches_hugging_face_on_all_of_shakespeare(gpt2, hf_gpt2, shakespeare):
    ids = gpt2.encode(shakespeare)
    assert len(ids) == 338_025 and ids == hf_gpt2.encode(shakespeare).ids


@pytest.mark.parametrize(
    "text",
    [
        "a" * 20_000,
        "ab" * 7_000 + "c",
        " " * 10_000 + "x",
        "https://example.com/" + "x1y2" * 3_000,
        "".join(random.Random(0).choices("ACGT", k=20_000)),  # DNA: one long chunk
        "".join(random.Random(1).choices("aeiou lmnrst", k=20_000)),
    ],
)
def test_long_chunks_match_hugging_face(gpt2, hf_gpt2, text):
    assert gpt2.encode_ordinary(text) == hf_gpt2.encode(text).ids


def test_long_chunks_match_the_reference_encoder(gpt2, gpt2_reference):
    for text in ("a" * 1_500, "ab" * 600, "".join(random.Random(2).choices("ACGT", k=1_500))):
        assert gpt2.encode_ordinary(text) == gpt2_reference.encode(text)


class CountingMerges(dict):
    """The merge table, counting rank lookups, and failing fast past `budget` of them."""

    def __init__(self, merges, budget):
        super().__init__(merges)
        self.lookups, self.budget = 0, budget

    def get(self, *args):
        self.lookups += 1
        if self.lookups > self.budget:
            raise AssertionError(f"more than {self.budget} rank lookups: quadratic encoding")
        return super().get(*args)


def test_encoding_a_long_chunk_is_not_quadratic(gpt2_files):
    # Timing-free: count the merge-table lookups. The seed rescanned the whole chunk after every
    # merge: about n * n / 2 lookups, 2 billion for 64,000 characters. O(n log n) stays near n.
    lookups = {}
    for n in (4_000, 64_000):
        tok = BPETokenizer.from_gpt2_files(*gpt2_files)
        tok.merges = CountingMerges(tok.merges, budget=10 * n)
        ids = tok.encode_ordinary("a" * n)
        assert tok.decode(ids) == "a" * n
        lookups[n] = tok.merges.lookups
    assert lookups[64_000] / lookups[4_000] < 16 * 2  # 16x the text: linear would be 16x


# ----------------------------------------------------------------------------- special tokens


def test_special_tokens_follow_tiktoken(gpt2):
    # tiktoken's documented examples for GPT-2's encoding (tiktoken/core.py, Encoding.encode).
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [50256]
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    with pytest.raises(ValueError, match="special token '<\\|endoftext\\|>'"):
        gpt2.encode("<|endoftext|>")  # the seed turned it into 50256 without asking
    assert gpt2.encode("<|endoftext|>", disallowed_special=()) == [27, 91, 437, 1659, 5239, 91, 29]


def test_special_tokens_neither_allowed_nor_disallowed_are_text(small):
    s = "a<|pad|>b<|endoftext|>c"
    pad, eot = small.special_tokens["<|pad|>"], small.special_tokens["<|endoftext|>"]
    ids = small.encode(s, allowed_special={"<|pad|>"}, disallowed_special=())
    assert pad in ids and eot not in ids and small.decode(ids) == s
    with pytest.raises(ValueError, match="<\\|endoftext\\|>"):
        small.encode(s, allowed_special={"<|pad|>"})  # "all" = every special not allowed
    ids = small.encode(s, disallowed_special={"<|pad|>"} - {"<|pad|>"})
    assert ids == small.encode_ordinary(s)
    with pytest.raises(ValueError, match="'b'"):  # any string may be disallowed, as in tiktoken
        small.encode("abc", disallowed_special={"b"})
    with pytest.raises(TypeError, match="set of strings"):
        small.encode(s, allowed_special="<|pad|>")  # a str would be a set of characters


def test_decode_skips_special_tokens_when_asked(small, gpt2):
    ids = small.encode("<|pad|>hi<|endoftext|>", allowed_special="all")
    assert small.decode(ids) == "<|pad|>hi<|endoftext|>"
    assert small.decode(ids, skip_special_tokens=True) == "hi"
    assert gpt2.decode(torch.tensor([50256, 31373]), skip_special_tokens=True) == "hello"


# ----------------------------------------------------------------------------- split patterns


@pytest.mark.parametrize(
    "pattern, match",
    [
        ("a", "skips text"),  # the seed: BPETokenizer(pattern="a").encode("abc") == [97]
        (r"(\w+)|\s+|[^\w\s]+", "capture groups"),  # the seed crashed in encode
        (r"\w*|\s*", "empty string"),
        ("(unclosed", "not a valid regex"),
    ],
)
def test_unsafe_patterns_are_refused_at_construction(pattern, match):
    with pytest.raises(ValueError, match=match):
        BPETokenizer(pattern=pattern)


def test_a_pattern_that_skips_text_is_refused_at_encode():
    tok = BPETokenizer(pattern=r"[^§]+")  # covers the probe text, not "§"
    assert tok.decode(tok.encode("abc def")) == "abc def"
    with pytest.raises(ValueError, match="skips text \\(first at position 1: '§b'"):
        tok.encode("a§b")


def test_a_file_may_carry_only_a_named_pattern_unless_trusted(small, tmp_path):
    d = {**small.to_dict(), "pattern": r"(?:a|aa)+$|\s+|\S+"}  # backtracks exponentially
    (tmp_path / "t.json").write_text(json.dumps(d), encoding="utf-8")
    for load in (BPETokenizer.load, Tokenizer.load):
        with pytest.raises(ValueError, match="trust_pattern=True"):
            load(tmp_path / "t.json")
        assert load(tmp_path / "t.json", trust_pattern=True).pattern == d["pattern"]
    for named in ("gpt2", "gpt4", GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN):
        assert BPETokenizer.from_dict({**small.to_dict(), "pattern": named}).merges == small.merges


def test_a_lone_surrogate_is_a_clear_error(gpt2, small):
    for tok in (gpt2, small):
        with pytest.raises(ValueError, match=r"lone surrogate \('\\ud800' at position 3\)") as info:
            tok.encode("ok \ud800!")
        assert type(info.value) is ValueError  # the seed raised a raw UnicodeEncodeError
