# This file is generated from notebooks/04_bpe_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "train_bpe_reference",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "SPLIT_PATTERNS",
    "ENDOFTEXT",
    "train_bpe",
    "BPETokenizer",
]


# cell 5
import heapq
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import repeat
from pathlib import Path

import regex

from tinylm_core.downloads import gpt2_vocab_files
from tinylm_core.tokenizer import Tokenizer


# cell 11
def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair` in `ids` (left to right) by `new_id`."""
    a, b = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# cell 14
def train_bpe_reference(
    text: str, vocab_size: int, pattern: str | None = None
) -> dict[tuple[int, int], int]:
    """The slow, obviously-correct trainer, kept as the reference the fast one is checked against.

    Every step recounts all pairs in the whole text, takes the most frequent pair (ties:
    the smallest (left id, right id)) and rewrites every chunk. Returns the merges, in order, as
    {(left id, right id): new id}. Time grows like (number of merges) x (length of the text).
    """
    # Pre-tokenization (section 4) cuts the text into chunks that merges may not cross;
    # without a pattern the whole text is one chunk.
    chunks = [
        list(c.encode("utf-8")) for c in (regex.findall(pattern, text) if pattern else [text])
    ]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = Counter()
        for ids in chunks:
            counts.update(zip(ids, ids[1:]))
        if not counts:
            raise ValueError(
                f"the text allows at most {new_id} tokens, not vocab_size={vocab_size}"
            )
        pair = min(counts, key=lambda p: (-counts[p], p))  # most frequent, then smallest ids
        chunks = [_merge(ids, pair, new_id) for ids in chunks]
        merges[pair] = new_id
    return merges


# cell 19
# GPT-2's pre-tokenizer: contractions, runs of letters, of digits, of other symbols, each with one
# optional leading space, and whitespace. Merges never cross these chunk boundaries.
GPT2_SPLIT_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)
# GPT-4's (tiktoken cl100k_base): case-insensitive contractions, digits in groups of at most 3.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)
SPLIT_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}


# cell 24
ENDOFTEXT = "<|endoftext|>"  # GPT-2's document separator, also used as bos/eos


# cell 27
def train_bpe(
    text: str | list[str], vocab_size: int, pattern: str | None = None, verbose: bool = False
) -> dict[tuple[int, int], int]:
    """Learn vocab_size - 256 merges on `text`; same result as `train_bpe_reference`, much faster.

    `text` may also be a list of texts (the pieces between special tokens): their chunks are
    counted together, and no merge crosses from one text to the next.

    1. Pre-tokenize and count unique chunks: " the" may occur 5,000 times but is processed once,
       with weight 5,000.
    2. Count pairs once, and remember which chunks contain each pair.
    3. Each merge rewrites only the chunks that contain the pair, and updates only the counts that
       those rewrites change. A heap of (-count, pair) finds the most frequent pair; an entry whose
       count has changed since it was pushed is stale and skipped (the fresh one was pushed too).
    Ties between equally frequent pairs go to the smallest (left id, right id), as in the reference.
    """
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"train expects a str or a list of str, got {type(text).__name__}")
    if not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(
            f"vocab_size must be an int >= 256 (the 256 byte tokens come first), got {vocab_size!r}"
        )
    chunk_counts = Counter()
    for t in texts:
        chunk_counts.update(regex.findall(pattern, t) if pattern else [t])
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    counts = defaultdict(int)  # pair -> number of occurrences in the text
    where = defaultdict(set)  # pair -> indices of the words that contain it
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += freq
            where[pair].add(w)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)

    merges = {}
    for new_id in range(256, vocab_size):
        while heap:
            neg, pair = heapq.heappop(heap)
            if counts.get(pair, 0) == -neg:  # fresh entry (stale ones are skipped)
                break
        else:
            raise ValueError(
                f"the text allows at most {new_id} tokens, not vocab_size={vocab_size}; "
                "use a smaller vocab_size or more text"
            )
        merges[pair] = new_id
        delta = defaultdict(int)  # pair -> change of its count caused by this merge
        for w in where.pop(pair):
            old = words[w]
            new = _merge(old, pair, new_id)
            if len(new) == len(old):  # the word lost this pair in an earlier merge
                continue
            words[w], freq = new, freqs[w]
            for p in zip(old, old[1:]):
                delta[p] -= freq
            for p in zip(new, new[1:]):
                delta[p] += freq
                if new_id in p:  # a brand-new pair: index the word under it
                    where[p].add(w)
        for p, d in delta.items():
            if d:
                c = counts[p] = counts[p] + d
                if c > 0:
                    heapq.heappush(heap, (-c, p))
        del counts[pair]
        if verbose:
            print(f"merge {new_id - 255}/{vocab_size - 256}: {pair} -> {new_id} ({-neg} times)")
    return merges


# cell 34
_NO_MERGE = 1 << 62  # the "rank" of a pair that is not a merge: larger than any id


class BPETokenizer(Tokenizer, kind="bpe"):
    """Byte-level BPE: text -> UTF-8 bytes -> merged tokens, the way GPT-2 tokenizes.

    The vocabulary is 256 byte tokens, then one token per merge (in the order learned), then the
    special tokens (`<|endoftext|>` by default, which serves as both bos and eos; there is no pad
    token). `pattern` is the pre-tokenizer: "gpt2" (default), "gpt4", or your own regex.
    Training breaks ties between equally frequent pairs by the smallest (left id, right id).
    """

    def __init__(self, pattern: str = "gpt2", special_tokens: Iterable[str] = (ENDOFTEXT,)):
        if not isinstance(pattern, str):
            raise TypeError("pattern must be 'gpt2', 'gpt4' or a regex string")
        if isinstance(special_tokens, str):
            raise TypeError(f"special_tokens must be a list of strings, e.g. [{special_tokens!r}]")
        self.pattern = SPLIT_PATTERNS.get(pattern, pattern)
        self._special_names = list(dict.fromkeys(special_tokens))
        if not all(isinstance(s, str) and s for s in self._special_names):
            raise ValueError("special_tokens must be non-empty strings, e.g. ['<|endoftext|>']")
        self._build(list(range(256)), {})  # an untrained tokenizer: bytes only

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
        eot = self.special_tokens.get(ENDOFTEXT)
        self.bos_token_id = self.eos_token_id = eot  # GPT-2 uses <|endoftext|> for both
        self.pad_token_id = None
        self._split = regex.compile(self.pattern)
        # Longest first, so that a special token containing another one wins.
        specials = sorted(self.special_tokens, key=len, reverse=True)
        self._special_split = (
            regex.compile("(" + "|".join(map(regex.escape, specials)) + ")") if specials else None
        )
        self._cache: dict[str, list[int]] = {}  # chunk -> ids; text repeats its words a lot

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> "BPETokenizer":
        """Learn merges until there are `vocab_size` tokens (special tokens come on top).

        As in `encode`, special-token strings are cut out of `text` first: no merge learns their
        characters, and none crosses them.
        """
        if self._special_split is not None and isinstance(text, str):
            text = self._special_split.split(text)[::2]  # the pieces between special tokens
        self._build(list(range(256)), train_bpe(text, vocab_size, self.pattern, verbose))
        return self

    def build_vocab(self, texts: str | Iterable[str], vocab_size: int) -> "BPETokenizer":
        """The same build_vocab API as CharTokenizer in lesson 03; texts are joined by newlines."""
        return self.train(texts if isinstance(texts, str) else "\n".join(texts), vocab_size)

    def _encode_chunk(self, chunk: str) -> list[int]:
        """Apply the merges to one chunk, earliest-learned first (the lowest new id = rank)."""
        ids = list(chunk.encode("utf-8").translate(self._byte_table))  # byte values -> byte ids
        rank = self.merges.get
        while len(ids) >= 2:
            # The rank of every adjacent pair (_NO_MERGE for pairs that never merge).
            ranks = list(map(rank, zip(ids, ids[1:]), repeat(_NO_MERGE)))
            new_id = min(ranks)
            if new_id == _NO_MERGE:
                break
            # Merge the leftmost occurrence. Other occurrences of the same pair are merged by the
            # next iterations, left to right: pairs made with new_id only have larger ranks.
            i = ranks.index(new_id)
            ids[i : i + 2] = [new_id]
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode `text`, treating special-token strings such as "<|endoftext|>" as plain text."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        cache, out = self._cache, []
        if len(cache) > 100_000:  # bound memory on endless streams of new words
            cache.clear()
        for chunk in self._split.findall(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = cache[chunk] = self._encode_chunk(chunk)
            out += ids
        return out

    def encode(self, text: str) -> list[int]:
        """Encode `text`; special-token strings in it become their special ids."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if self._special_split is None:
            return self.encode_ordinary(text)
        out = []
        for i, part in enumerate(self._special_split.split(text)):
            # split() with a capture group alternates text, special, text, special, ...
            out += [self.special_tokens[part]] if i % 2 else self.encode_ordinary(part)
        return out

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

    def decode(self, ids: Iterable[int]) -> str:
        """Inverse of `encode`; byte sequences that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def get_vocab_size(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.get_vocab_size()}, merges={len(self.merges)})"

    def to_dict(self) -> dict:
        """A JSON-serialisable description: split pattern, byte ids, merges, special tokens."""
        return {
            "type": "bpe",
            "pattern": self.pattern,
            "byte_ids": self.byte_ids,
            "merges": [[a, b, i] for (a, b), i in self.merges.items()],
            "special_tokens": self._special_names,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        if not isinstance(d, dict) or d.get("type") != "bpe":
            kind = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a BPETokenizer description (type={kind!r}, expected 'bpe')")
        try:
            tok = cls(d["pattern"], d["special_tokens"])
            byte_ids = [int(i) for i in d["byte_ids"]]
            merges = {(int(a), int(b)): int(i) for a, b, i in d["merges"]}
        except (KeyError, TypeError, ValueError, regex.error) as e:
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
        tok._build(byte_ids, merges)
        return tok

    @classmethod
    def from_gpt2_files(cls, vocab_bpe_path=None, encoder_json_path=None) -> "BPETokenizer":
        """GPT-2's own tokenizer from its `vocab.bpe` and `encoder.json` (downloaded if not given)."""
        # encoder.json maps GPT-2's printable stand-ins (see _bytes_to_unicode) to ids; vocab.bpe
        # lists the merges in the order they were learned, as pairs of stand-in strings.
        if vocab_bpe_path is None or encoder_json_path is None:
            vocab_bpe_path, encoder_json_path = gpt2_vocab_files()
        encoder = json.loads(Path(encoder_json_path).read_text(encoding="utf-8"))  # str -> id
        lines = Path(vocab_bpe_path).read_text(encoding="utf-8").split("\n")
        merge_lines = [line.split() for line in lines[1:] if line]  # line 0 is "#version: 0.2"
        try:
            byte_ids = [encoder[ch] for _, ch in sorted(_bytes_to_unicode().items())]
            merges = {(encoder[a], encoder[b]): encoder[a + b] for a, b in merge_lines}
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"{vocab_bpe_path} and {encoder_json_path} are not a matching pair of GPT-2 "
                f"vocabulary files ({e!r})"
            ) from e
        tok = cls.from_dict(
            {
                "type": "bpe",
                "pattern": GPT2_SPLIT_PATTERN,
                "byte_ids": byte_ids,
                "merges": [[a, b, i] for (a, b), i in merges.items()],
                "special_tokens": [ENDOFTEXT],
            }
        )
        if tok.special_tokens[ENDOFTEXT] != encoder.get(ENDOFTEXT):
            raise ValueError(
                f"{encoder_json_path}: <|endoftext|> should come right after the merges"
            )
        return tok


# cell 45
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, as used in its vocabulary files.

    Printable Latin-1 bytes stand for themselves; the others (control characters, space, ...) are
    shifted to 256 + n so that every token of vocab.bpe is a visible, whitespace-free string.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    shifted = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + n) for n, b in enumerate(shifted)}}
