# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["Tokenizer", "CharTokenizer"]


# cell 20
import json
from collections.abc import Iterable
from pathlib import Path


class Tokenizer:
    """What every tokenizer here shares: JSON files built on the subclass's to_dict/from_dict.

    A subclass (CharTokenizer here, BPETokenizer in notebook 04) provides encode, decode,
    get_vocab_size, to_dict and from_dict; save and load then come for free.
    """

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not a tokenizer JSON file ({e})") from e
        return cls.from_dict(d)


class CharTokenizer(Tokenizer):
    """One token per character, plus four special tokens with fixed ids.

    ids 0..3 are <pad>, <unk>, <bos>, <eos>; the characters seen by `build_vocab` follow, sorted.
    Unknown characters become <unk>, or raise ValueError when `strict=True`.
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

    def build_vocab(self, texts: str | Iterable[str]) -> "CharTokenizer":
        """Learn the character set of `texts` (one string or an iterable of strings)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("build_vocab expects a string or an iterable of strings")
        self._set_chars(set().union(*map(set, texts)))
        return self

    def encode(self, text: str) -> list[int]:
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

    def get_vocab_size(self) -> int:
        return len(self.itos)

    def to_dict(self) -> dict:
        return {
            "type": "char",
            "chars": self.itos[len(self.SPECIAL_TOKENS) :],
            "strict": self.strict,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        if not isinstance(d, dict) or d.get("type") != "char":
            kind = d.get("type") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a CharTokenizer description (type={kind!r}, expected 'char')")
        chars = d.get("chars")
        if not isinstance(chars, list) or len(set(chars)) != len(chars):
            raise ValueError(
                "a CharTokenizer description needs 'chars': a list of distinct characters"
            )
        return cls(chars, strict=bool(d.get("strict", False)))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.get_vocab_size()}, strict={self.strict})"
