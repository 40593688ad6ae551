# This file is generated from notebooks/04_bpe_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["train_bpe_reference", "train_bpe"]


# cell 7
import heapq
from collections import Counter, defaultdict

import regex


# cell 14
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


# cell 17
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


# cell 30
def _pair_index(words: list[list[int]], freqs: list[int]) -> tuple[dict, dict]:
    """How often each adjacent pair occurs (each word weighted by its frequency), and which
    words hold it: ({pair: count}, {pair: set of word indices})."""
    counts = defaultdict(int)
    where = defaultdict(set)
    for w, (ids, freq) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += freq
            where[pair].add(w)
    return counts, where


def _merge_words(pair, new_id, words, freqs, where) -> dict[tuple[int, int], int]:
    """Merge `pair` in the words that hold it (in place); returns the change of each pair's count."""
    delta = defaultdict(int)
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
    return delta


# cell 31
def train_bpe(
    text: str | list[str], vocab_size: int, pattern: str | None = None, verbose: bool = False
) -> dict[tuple[int, int], int]:
    """Learn vocab_size - 256 merges on `text`; same result as `train_bpe_reference`, much faster.

    `text` may also be a list of texts (the pieces between special tokens): their chunks are
    counted together, and no merge crosses from one text to the next. Distinct chunks ("words")
    are processed once, weighted by their frequency; each merge rewrites only the words that
    hold the pair and updates only the counts it changes; a heap of (-count, pair) gives the
    most frequent pair, ties to the smallest, skipping stale entries (whose count changed).
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
    counts, where = _pair_index(words, freqs)
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
        for p, d in _merge_words(pair, new_id, words, freqs, where).items():
            if d:
                c = counts[p] = counts[p] + d
                if c > 0:
                    heapq.heappush(heap, (-c, p))
        del counts[pair]
        if verbose:
            print(f"merge {new_id - 255}/{vocab_size - 256}: {pair} -> {new_id} ({-neg} times)")
    return merges
