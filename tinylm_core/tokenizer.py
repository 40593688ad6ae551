# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["Tokenizer"]


# cell 15
import json
from pathlib import Path

from tinylm_core.files import atomic_file


class Tokenizer:
    """What every tokenizer of the course shares: a registry of kinds, `len()`, JSON files.

    A subclass names its kind, `class CharTokenizer(Tokenizer, kind="char")`, and provides
    encode, decode(ids, skip_special_tokens=False), get_vocab_size, to_dict (whose "type" is
    the kind) and from_dict. `len(tokenizer)` is the vocabulary size.
    """

    kinds: dict[str, type["Tokenizer"]] = {}  # "char" -> CharTokenizer, "bpe" -> BPETokenizer

    def __init_subclass__(cls, kind: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:  # a subclass of a subclass may keep its parent's kind
            cls.kind = kind
            Tokenizer.kinds[kind] = cls  # re-running a notebook cell replaces the old class

    def __len__(self) -> int:
        return self.get_vocab_size()

    # cell 16
    @classmethod
    def from_dict(cls, d: dict, **options) -> "Tokenizer":
        """The tokenizer that `d` (a `to_dict()` description) describes; d["type"] picks the class.

        Each subclass overrides this for its own kind: `Tokenizer.from_dict({"type": "char", ...})`
        hands the description to `CharTokenizer.from_dict`. `options` go to that method.
        """
        if cls is not Tokenizer:
            raise NotImplementedError(f"{cls.__name__} must define from_dict")
        kind = d.get("type") if isinstance(d, dict) else None
        if kind not in Tokenizer.kinds:
            raise ValueError(
                f"not a tokenizer description: type={kind!r}, expected one of "
                f"{sorted(Tokenizer.kinds)} (the tokenizer modules register their kinds on import)"
            )
        return Tokenizer.kinds[kind].from_dict(d, **options)

    # cell 23
    def save(self, path: str | Path) -> None:
        """Write `to_dict()` as JSON, atomically: a failed save leaves the previous file intact."""
        # ASCII JSON writes any character as \uXXXX, even a lone surrogate, which UTF-8 cannot hold.
        data = json.dumps(self.to_dict()).encode("ascii")
        with atomic_file(path) as f:
            f.write(data)

    # cell 24
    @classmethod
    def load(cls, path: str | Path, **options) -> "Tokenizer":
        """Read a file written by `save`; `Tokenizer.load` picks the class from the file's "type"."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path} is not a tokenizer JSON file ({e})") from e
        return cls.from_dict(d, **options)
