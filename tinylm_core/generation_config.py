# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["GenerationConfig", "GenerationOutput", "merge_config"]


# cell 57
import math
import numbers
from dataclasses import dataclass, fields, replace

import torch

from tinylm_core.settings import setting


# cell 58
@dataclass
class GenerationConfig:
    """Every decoding setting, with its default and help (`setting`, notebook 06: the command
    line shows both); checked when made (see `validate`)."""

    max_new_tokens: int = setting(50, "how many tokens to add at most")
    do_sample: bool = setting(False, "sample; otherwise greedy, or beam search")
    temperature: float = setting(1.0, "sampling: < 1 sharper, > 1 flatter, 0 greedy")
    top_k: int | None = setting(None, "sampling: keep the k most likely tokens (none or 0: all)")
    top_p: float | None = setting(
        None, "sampling: keep the likeliest tokens covering p (none: all)"
    )
    repetition_penalty: float = setting(1.0, "> 1 makes tokens already in the text less likely")
    num_beams: int = setting(1, "> 1: beam search with this many beams")
    length_penalty: float = setting(1.0, "beam search: scores are log p / length ** this")
    num_return_sequences: int = setting(1, "samples per prompt, or best beams (<= num_beams)")
    eos_token_id: int | list[int] | None = setting(
        None, "ends a row; None: the tokenizer's, []: none"
    )
    stop: list[str] = setting((), "stop once the text contains one of these strings")
    use_cache: bool = setting(True, "reuse keys and values (KV cache) instead of recomputing them")
    seed: int | None = setting(None, "seeds sampling, for reproducible text")

    def __post_init__(self):
        self.validate()

    # cell 61
    def validate(self) -> None:
        """Check every field and normalise it (ints, floats, lists); called by the constructor."""
        for name in ("do_sample", "use_cache"):
            if getattr(self, name) not in (True, False):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        self.max_new_tokens = _integer("max_new_tokens", self.max_new_tokens, 0)
        self.temperature = _real("temperature", self.temperature, 0.0)
        if self.top_k is not None:
            self.top_k = _integer("top_k", self.top_k, 0)
        if self.top_p is not None and not 0 < _real("top_p", self.top_p) <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        self.repetition_penalty = _real(
            "repetition_penalty", self.repetition_penalty, 0.0, inclusive=False
        )
        self.num_beams = _integer("num_beams", self.num_beams, 1)
        self.length_penalty = _real("length_penalty", self.length_penalty)
        self.num_return_sequences = _integer("num_return_sequences", self.num_return_sequences, 1)
        if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
            raise ValueError(
                f"num_return_sequences must be in [1, num_beams={self.num_beams}], "
                f"got {self.num_return_sequences}"
            )
        if self.seed is not None:
            self.seed = _integer("seed", self.seed, 0)
            if self.seed >= 2**64:
                raise ValueError(
                    f"seed must be in [0, 2**64) (torch.Generator's range), got {self.seed}"
                )
        if isinstance(self.eos_token_id, list | tuple):
            self.eos_token_id = [_integer("eos_token_id", i, 0) for i in self.eos_token_id]
        elif self.eos_token_id is not None:
            self.eos_token_id = _integer("eos_token_id", self.eos_token_id, 0)
        self.stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        for text in self.stop:
            if not isinstance(text, str) or not text:
                raise ValueError(
                    f'stop strings must be non-empty strings ("" is in every text), got {text!r}'
                )


# cell 60
def _integer(name: str, value, minimum: int) -> int:
    """`value` as an int (NumPy integers welcome), or a TypeError / ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _real(name: str, value, minimum: float | None = None, *, inclusive: bool = True) -> float:
    """`value` as a finite float >= minimum (> minimum when not inclusive), else an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    too_small = minimum is not None and (value < minimum or (value == minimum and not inclusive))
    if not math.isfinite(value) or too_small:
        bound = "" if minimum is None else f" {'>=' if inclusive else '>'} {minimum}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value}")
    return float(value)


# cell 64
@dataclass
class GenerationOutput:
    """What `Generator.generate(..., return_dict=True)` returns.

    sequences: (N, T_prompt + T_new) prompt followed by the new ids; finished rows are padded on
    the right, shorter prompts on the left. new_tokens: how many ids each row generated (eos
    included). finish_reasons: per row, "eos" (the model produced eos), "stop" (a stop string
    appeared) or "length" (max_new_tokens reached). scores: beam search only, each returned beam's
    length-normalised log-probability. prompt_lengths: each row's prompt length (no padding).
    """

    sequences: torch.Tensor
    new_tokens: list[int]
    finish_reasons: list[str]
    scores: list[float] | None = None
    prompt_lengths: list[int] | None = None

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons[0]

    @classmethod
    def from_beams(cls, best, prompt: list[int], eos: list[int], pad: int, device=None):
        """The output of `beam_search`'s (score, new ids) pairs for `prompt`, rows padded with `pad`."""
        width = max(len(new) for _, new in best)
        rows = [prompt + new + [pad] * (width - len(new)) for _, new in best]
        return cls(
            sequences=torch.tensor(rows, dtype=torch.long, device=device),
            new_tokens=[len(new) for _, new in best],
            finish_reasons=["eos" if new and new[-1] in eos else "length" for _, new in best],
            scores=[score for score, _ in best],
        )

    def rows(self) -> list[list[int]]:
        """Each row's prompt and new ids, without padding."""
        width = self.sequences.size(1) - max(self.new_tokens, default=0)  # where new ids start
        lengths = self.prompt_lengths or [width] * len(self.new_tokens)
        return [
            row[width - p : width + n]
            for row, p, n in zip(self.sequences.tolist(), lengths, self.new_tokens)
        ]


# cell 66
def merge_config(config: GenerationConfig | None, options: dict, **more) -> GenerationConfig:
    """`config` (or the defaults) with the keyword `options` (and `more` that are not None)
    replacing fields; validated again."""
    options = dict(options, **{name: value for name, value in more.items() if value is not None})
    names = {f.name for f in fields(GenerationConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(
            f"unknown generation setting(s) {unknown}; the settings are {sorted(names)}"
        )
    return replace(config or GenerationConfig(), **options)  # replace() runs __post_init__
