# This file is generated from notebooks/04_bpe_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "SPLIT_PATTERNS",
    "ENDOFTEXT",
    "special_token_regex",
    "pretokenize",
    "compile_pattern",
    "split_special_tokens",
]


# cell 22
from collections.abc import Iterable
from functools import lru_cache

import regex

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


# cell 27
ENDOFTEXT = "<|endoftext|>"  # GPT-2's document separator, also used as bos/eos


@lru_cache(maxsize=64)
def special_token_regex(tokens: frozenset[str]) -> regex.Pattern:
    """A regex that finds any of `tokens`, longest first (so that one containing another wins);
    its capture group makes split() keep the tokens: text, token, text, token, ..."""
    return regex.compile("(" + "|".join(map(regex.escape, sorted(tokens, key=len)[::-1])) + ")")


# cell 38
def pretokenize(text: str, split: regex.Pattern) -> list[str]:
    """Cut `text` into the chunks that `split` matches, refusing to lose any of it.

    The chunks must cover the text (a pattern that skips characters would drop them silently),
    and the text must be encodable as UTF-8: a lone surrogate (half of a UTF-16 pair, e.g. from
    bytes decoded with errors="surrogateescape") is not a character.
    """
    chunks = split.findall(text)
    if sum(map(len, chunks)) != len(text):
        joined = "".join(chunks)
        at = next((i for i, (a, b) in enumerate(zip(joined, text)) if a != b), len(joined))
        raise ValueError(
            f"the split pattern {split.pattern!r} skips text (first at position {at}: "
            f"{text[at : at + 10]!r}), which encode would drop. End the pattern with "
            r"alternatives that match anything, e.g. |\s+|\S+"
        )
    if not text.isascii() and (surrogate := regex.search(r"[\ud800-\udfff]", text)):
        raise ValueError(
            f"the text holds a lone surrogate ({surrogate.group()!r} at position "
            f"{surrogate.start()}), which UTF-8 cannot encode; if it comes from bytes decoded "
            "with errors='surrogateescape', decode them with errors='replace' instead"
        )
    return chunks


# cell 40
# Text with a bit of everything: letters, digits, punctuation, whitespace runs, non-Latin scripts.
_PROBE = "Hello, world! It's 2024:\n\n\t  naïve 東京 👋 <|x|> 3.14 x²\r\n"


@lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a pre-tokenizer regex, refusing those that would lose text or break encode."""
    try:
        split = regex.compile(pattern)
    except regex.error as e:
        raise ValueError(f"pattern is not a valid regex ({e})") from e
    if split.groups:  # findall would return the groups, not the chunks
        raise ValueError(f"pattern {pattern!r} has capture groups; write (?:...) instead of (...)")
    if split.match(""):
        raise ValueError(f"pattern {pattern!r} matches the empty string; use + instead of *")
    pretokenize(_PROBE, split)  # raises if the pattern skips some of this text
    return split


# cell 58
def split_special_tokens(
    text: str,
    special_tokens: Iterable[str],
    allowed_special: str | Iterable[str] = frozenset(),
    disallowed_special: str | Iterable[str] = "all",
) -> list[str]:
    """`text` cut at the special tokens it may contain: [text, token, text, token, ..., text].

    tiktoken's rules: the tokens named in `allowed_special` ("all": every one) are cut out. Those
    in `disallowed_special` ("all", the default: every special token not allowed) raise
    ValueError, so that text you do not control cannot inject one. Any other stays plain text.
    """
    if not isinstance(text, str):
        raise TypeError(f"encode expects a str, got {type(text).__name__}")
    for name, value in (("allowed", allowed_special), ("disallowed", disallowed_special)):
        if isinstance(value, str) and value != "all":
            raise TypeError(f"{name}_special takes 'all' or a set of strings, e.g. {{{value!r}}}")
    specials = frozenset(special_tokens)
    allowed = specials if allowed_special == "all" else specials & set(allowed_special)
    disallowed = specials - allowed if disallowed_special == "all" else set(disallowed_special)
    if disallowed and (match := special_token_regex(frozenset(disallowed)).search(text)):
        raise ValueError(
            f"the text contains the special token {match.group()!r}. To encode it as the special "
            f"token, pass allowed_special={{{match.group()!r}}} (or 'all'); to encode it as plain "
            "text, pass disallowed_special=() or use encode_ordinary"
        )
    return special_token_regex(allowed).split(text) if allowed else [text]
