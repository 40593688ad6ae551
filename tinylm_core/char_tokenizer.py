# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["CharTokenizer"]


# cell 26
from collections.abc import Iterable

from tinylm_core.tokenizer import Tokenizer


class CharTokenizer(Tokenizer, kind="char"):
    """One token per character, plus four special tokens with fixed ids.

    ids 0..3 are <pad>, <unk>, <bos>, <eos>; the characters seen by `build_vocab` follow, sorted.
    Unknown characters become <unk>, or raise ValueError when `strict=True`.

    >>> tok = CharTokenizer().build_vocab("to be")
    >>> tok.itos[4:], tok.encode("bet")
    ([' ', 'b', 'e', 'o', 't'], [5, 6, 8])
    """

    SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
    pad_token_id, unk_token_id, bos_token_id, eos_token_id = 0, 1, 2, 3

    def __init__(self, chars: Iterable[str] = (), strict: bool = False):
        self.strict = strict
        self._set_chars(chars)

    def _set_chars(self, chars: Iterable[str]) -> None:
        chars = sorted(set(chars))
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("a CharTokenizer vocabulary holds single characters (str of length 1)")
        self.itos = list(self.SPECIAL_TOKENS) + chars  # id -> token string
        self.stoi = {c: i for i, c in enumerate(chars, start=len(self.SPECIAL_TOKENS))}

    def get_vocab_size(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.get_vocab_size()}, strict={self.strict})"

    # cell 28
    def build_vocab(self, texts: str | Iterable[str]) -> "CharTokenizer":
        """Learn the character set of `texts` (one string or an iterable of strings)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("build_vocab expects a string or an iterable of strings")
        self._set_chars(set().union(*map(set, texts)))
        return self

    # cell 30
    def encode(self, text: str) -> list[int]:
        """The id of each character of `text` (<unk> for unknown ones, unless strict)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if self.strict:
            unknown = set(text) - self.stoi.keys()
            if unknown:
                raise ValueError(
                    f"characters not in the vocabulary: {sorted(unknown)[:10]}; rebuild the "
                    "vocabulary on text that contains them, or use strict=False to map them to <unk>"
                )
        get, unk = self.stoi.get, self.unk_token_id
        return [get(c, unk) for c in text]

    # cell 32
    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Inverse of `encode`; special ids are written as their names (or dropped if asked)."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # also tensors and arrays
        itos, n = self.itos, len(self.SPECIAL_TOKENS)
        try:
            if ids and min(ids) < 0:  # itos[-1] would quietly pick the last character
                raise IndexError("negative id")
            return "".join([itos[i] for i in ids if i >= n or not skip_special_tokens])
        except IndexError as e:
            raise ValueError(
                f"decode expects token ids in 0..{len(itos) - 1} ({e}); were these ids made by "
                "another tokenizer?"
            ) from e

    # cell 38
    def to_dict(self) -> dict:
        """A JSON-serialisable description: the characters (the specials are implied)."""
        return {
            "type": "char",
            "chars": self.itos[len(self.SPECIAL_TOKENS) :],
            "strict": self.strict,
        }

    # cell 39
    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        """The tokenizer `to_dict` described, checked; the characters are sorted again."""
        if not isinstance(d, dict) or d.get("type") != "char":
            kind = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a CharTokenizer description (type={kind!r}, expected 'char')")
        chars = d.get("chars")
        if not isinstance(chars, list) or len(set(chars)) != len(chars):
            raise ValueError(
                "a CharTokenizer description needs 'chars': a list of distinct characters"
            )
        return cls(chars, strict=bool(d.get("strict", False)))
