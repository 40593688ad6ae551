# This file is generated from notebooks/04_bpe_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["BPETokenizer", "apply_merges"]


# cell 8
import heapq
import json
from collections.abc import Iterable
from pathlib import Path

from tinylm_core.bpe_training import train_bpe
from tinylm_core.downloads import gpt2_vocab_files
from tinylm_core.pretokenize import (
    ENDOFTEXT,
    GPT2_SPLIT_PATTERN,
    SPLIT_PATTERNS,
    compile_pattern,
    pretokenize,
    special_token_regex,
    split_special_tokens,
)
from tinylm_core.tokenizer import Tokenizer


# cell 43
class BPETokenizer(Tokenizer, kind="bpe"):
    """Byte-level BPE: text -> UTF-8 bytes -> merged tokens, the way GPT-2 tokenizes.

    The vocabulary is 256 byte tokens, then one token per merge (in the order learned), then the
    special tokens (`<|endoftext|>` by default, which serves as both bos and eos; there is no pad
    token). `pattern` is the pre-tokenizer: "gpt2" (default), "gpt4", or your own regex.

    >>> BPETokenizer().train("aaabdaaabac", 259).encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    """

    def __init__(self, pattern: str = "gpt2", special_tokens: Iterable[str] = (ENDOFTEXT,)):
        if not isinstance(pattern, str):
            raise TypeError("pattern must be 'gpt2', 'gpt4' or a regex string")
        if isinstance(special_tokens, str):
            raise TypeError(f"special_tokens must be a list of strings, e.g. [{special_tokens!r}]")
        self.pattern = SPLIT_PATTERNS.get(pattern, pattern)
        self._split = compile_pattern(self.pattern)
        self._special_names = list(dict.fromkeys(special_tokens))
        if not all(isinstance(s, str) and s for s in self._special_names):
            raise ValueError("special_tokens must be non-empty strings, e.g. ['<|endoftext|>']")
        self._build(list(range(256)), {})  # an untrained tokenizer: bytes only

    def get_vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.get_vocab_size()}, merges={len(self.merges)})"

    # cell 44
    def _build(self, byte_ids: list[int], merges: dict[tuple[int, int], int]) -> None:
        """Set the vocabulary from the id of each byte value and the merges {(a, b): new id}."""
        self.byte_ids = byte_ids  # byte value -> token id (GPT-2 does not use the identity)
        self.merges = merges  # (a, b) -> new id; new ids grow with merge order, so id = rank
        self._byte_table = bytes(byte_ids)  # for bytes.translate: byte ids are 0..255 too
        vocab = [b""] * (256 + len(merges))
        for byte, i in enumerate(byte_ids):
            vocab[i] = bytes([byte])
        for (a, b), i in merges.items():
            vocab[i] = vocab[a] + vocab[b]
        base = len(vocab)
        self.special_tokens = {s: base + i for i, s in enumerate(self._special_names)}
        self.vocab = vocab + [s.encode("utf-8") for s in self._special_names]  # id -> bytes
        self.bos_token_id = self.eos_token_id = self.special_tokens.get(ENDOFTEXT)  # as GPT-2
        self.pad_token_id = None
        self._cache: dict[str, list[int]] = {}  # chunk -> ids; text repeats its words a lot

    # cell 46
    def train(self, text: str, vocab_size: int, verbose: bool = False) -> "BPETokenizer":
        """Learn merges until there are `vocab_size` tokens (special tokens come on top).

        Special-token strings are cut out of `text` first: no merge learns their characters, and
        none crosses them.
        """
        if self.special_tokens and isinstance(text, str):
            text = special_token_regex(frozenset(self.special_tokens)).split(text)[::2]
        self._build(list(range(256)), train_bpe(text, vocab_size, self.pattern, verbose))
        return self

    # cell 46
    def build_vocab(self, texts: str | Iterable[str], vocab_size: int) -> "BPETokenizer":
        """The same build_vocab API as CharTokenizer in lesson 03; texts are joined by newlines."""
        return self.train(texts if isinstance(texts, str) else "\n".join(texts), vocab_size)

    # cell 56
    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token strings such as "<|endoftext|>" as plain text."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        cache, out = self._cache, []
        if len(cache) > 100_000:  # bound memory on endless streams of new words
            cache.clear()
        for chunk in pretokenize(text, self._split):
            ids = cache.get(chunk)
            if ids is None:
                ids = apply_merges(chunk.encode("utf-8").translate(self._byte_table), self.merges)
                if len(chunk) <= 256:  # long chunks are rare: caching them would only cost memory
                    cache[chunk] = ids
            out += ids
        return out

    # cell 59
    def encode(
        self,
        text: str,
        *,
        allowed_special: str | Iterable[str] = frozenset(),
        disallowed_special: str | Iterable[str] = "all",
    ) -> list[int]:
        """Encode `text`; special-token strings in it follow tiktoken's rules (`split_special_tokens`):
        by default they raise ValueError. E.g. for your own training data:
        `tok.encode(document + "<|endoftext|>", allowed_special={"<|endoftext|>"})`.
        """
        parts = split_special_tokens(text, self.special_tokens, allowed_special, disallowed_special)
        out = []
        for i, part in enumerate(parts):  # text, special token, text, ...
            out += [self.special_tokens[part]] if i % 2 else self.encode_ordinary(part)
        return out

    # cell 63
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of `ids` (a token may hold only part of a UTF-8 character)."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # also tensors and arrays
        vocab = self.vocab
        try:
            if ids and min(ids) < 0:  # vocab[-1] would quietly pick the last token
                raise IndexError("negative id")
            return b"".join([vocab[i] for i in ids])
        except IndexError as e:
            raise ValueError(
                f"decode expects token ids in 0..{len(vocab) - 1} ({e}); were these ids made by "
                "another tokenizer?"
            ) from e

    # cell 63
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Inverse of `encode`; bytes that are not valid UTF-8 become U+FFFD (`�`)."""
        if skip_special_tokens:  # the special tokens have the last ids
            n = 256 + len(self.merges)
            ids = [i for i in (ids.tolist() if hasattr(ids, "tolist") else ids) if i < n]
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # cell 71
    def to_dict(self) -> dict:
        """A JSON-serialisable description: split pattern, byte ids, merges, special tokens."""
        return {
            "type": "bpe",
            "pattern": self.pattern,
            "byte_ids": self.byte_ids,
            "merges": [[a, b, i] for (a, b), i in self.merges.items()],
            "special_tokens": self._special_names,
        }

    # cell 71
    @classmethod
    def from_dict(cls, d: dict, trust_pattern: bool = False) -> "BPETokenizer":
        """The tokenizer `d` describes, checked. A split pattern other than GPT-2's or GPT-4's is
        refused unless `trust_pattern=True`: a crafted regex can take exponential time on some text."""
        pattern, special_tokens, byte_ids, merges = _parse_description(d, trust_pattern)
        tok = cls(pattern, special_tokens)
        tok._build(byte_ids, merges)
        return tok

    # cell 78
    @classmethod
    def from_gpt2_files(cls, vocab_bpe_path=None, encoder_json_path=None) -> "BPETokenizer":
        """GPT-2's own tokenizer from its `vocab.bpe` and `encoder.json` (default: data/gpt2/)."""
        if vocab_bpe_path is None or encoder_json_path is None:
            vocab_bpe_path, encoder_json_path = gpt2_vocab_files()
        return cls.from_dict(_gpt2_description(vocab_bpe_path, encoder_json_path))


# cell 52
def apply_merges(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Merge adjacent pairs of `ids` by `merges`: the lowest rank first, leftmost first.

    A pair's rank is the id it merges into (smaller = learned earlier). A heap holds (rank,
    position) for each adjacent pair that is a merge; the tokens form a linked list, so a merge
    is O(1) and creates at most two new pairs to push: O(n log n) in all. An entry whose pair
    changed since it was pushed is stale: popped and skipped.
    """
    ids = list(ids)
    rank = merges.get
    heap = [(r, i) for i, r in enumerate(map(rank, zip(ids, ids[1:]))) if r is not None]
    if not heap:  # nothing to merge (a single byte, or no known pair)
        return ids
    heapq.heapify(heap)
    n = len(ids)
    after = list(range(1, n + 1))  # position of the next live token (n: none)
    before = list(range(-1, n - 1))  # position of the previous live token (-1: none)
    while heap:
        r, i = heapq.heappop(heap)
        j = after[i]
        if j == n or rank((ids[i], ids[j])) != r:  # stale (a dead token's id is -1)
            continue
        ids[i], ids[j] = r, -1  # the pair becomes token r at position i; j dies
        k = after[i] = after[j]
        if k < n:
            before[k] = i
            if (right := rank((r, ids[k]))) is not None:
                heapq.heappush(heap, (right, i))
        h = before[i]
        if h >= 0 and (left := rank((ids[h], r))) is not None:
            heapq.heappush(heap, (left, h))
    return [t for t in ids if t >= 0]


# cell 69
def _parse_description(d: dict, trust_pattern: bool) -> tuple[str, list, list[int], dict]:
    """(pattern, special tokens, byte ids, merges) of a BPE description, all checked."""
    if not isinstance(d, dict) or d.get("type") != "bpe":
        kind = d.get("type") if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"not a BPETokenizer description (type={kind!r}, expected 'bpe')")
    pattern = d.get("pattern")
    pattern = SPLIT_PATTERNS.get(pattern, pattern) if isinstance(pattern, str) else pattern
    if pattern not in SPLIT_PATTERNS.values() and not trust_pattern:
        raise ValueError(
            f"the description's split pattern {str(pattern)[:60]!r} is not GPT-2's or GPT-4's; "
            "load it only if you trust its source, with trust_pattern=True"
        )
    try:
        compile_pattern(pattern)
        special_tokens = d["special_tokens"]
        if not all(isinstance(s, str) and s for s in special_tokens) or isinstance(
            special_tokens, str
        ):
            raise ValueError(
                f"special_tokens must be a list of non-empty strings: {special_tokens!r}"
            )
        byte_ids = [int(i) for i in d["byte_ids"]]
        merges = {(int(a), int(b)): int(i) for a, b, i in d["merges"]}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"corrupted BPETokenizer description ({e!r})") from e
    # Bytes take ids 0..255 in some order; merge k makes id 256 + k from two earlier ids.
    ok = sorted(byte_ids) == list(range(256)) and len(merges) == len(d["merges"])
    ok = ok and all(
        i == 256 + k and a < i and b < i for k, ((a, b), i) in enumerate(merges.items())
    )
    if not ok:
        raise ValueError(
            "corrupted BPETokenizer description: byte_ids must be a permutation of 0..255 and "
            "merge k must make id 256 + k from two smaller ids"
        )
    return pattern, special_tokens, byte_ids, merges


# cell 75
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, as used in its vocabulary files.

    Printable Latin-1 bytes stand for themselves; the others (control characters, space, ...) are
    shifted to 256 + n so that every token of vocab.bpe is a visible, whitespace-free string.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    shifted = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + n) for n, b in enumerate(shifted)}}


# cell 77
def _gpt2_description(vocab_bpe_path, encoder_json_path) -> dict:
    """GPT-2's vocabulary files as a `to_dict()` description of the same tokenizer."""
    # encoder.json maps GPT-2's printable stand-ins (_bytes_to_unicode) to ids; vocab.bpe
    # lists the merges in the order they were learned, as pairs of stand-in strings.
    encoder = json.loads(Path(encoder_json_path).read_text(encoding="utf-8"))  # str -> id
    lines = Path(vocab_bpe_path).read_text(encoding="utf-8").split("\n")
    merge_lines = [line.split() for line in lines[1:] if line]  # line 0 is "#version: 0.2"
    try:
        byte_ids = [encoder[ch] for _, ch in sorted(_bytes_to_unicode().items())]
        merges = [[encoder[a], encoder[b], encoder[a + b]] for a, b in merge_lines]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{vocab_bpe_path} and {encoder_json_path} are not a matching pair of GPT-2 "
            f"vocabulary files ({e!r})"
        ) from e
    if encoder.get(ENDOFTEXT) != 256 + len(merges):
        raise ValueError(f"{encoder_json_path}: <|endoftext|> should come right after the merges")
    return {
        "type": "bpe",
        "pattern": GPT2_SPLIT_PATTERN,
        "byte_ids": byte_ids,
        "merges": merges,
        "special_tokens": [ENDOFTEXT],
    }
