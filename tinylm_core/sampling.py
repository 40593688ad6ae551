# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "apply_repetition_penalty",
    "sample_next_token",
]


# cell 13
import math
import numbers

import torch
import torch.nn.functional as F


# cell 14
def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by `temperature`: < 1 sharpens the distribution, > 1 flattens it.

    `temperature=0` is the limit of sharpening, greedy decoding: only the largest logit survives
    (the others become -inf). The largest logit is subtracted first, which softmax ignores, so no
    temperature overflows: [1, 3, 2] at t=2 gives [-1, 0, -0.5].
    """
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 is greedy), got {temperature}"
        )
    if temperature == 0:
        keep = F.one_hot(logits.argmax(dim=-1), logits.size(-1)).bool()  # (..., V)
        return logits.masked_fill(~keep, float("-inf"))
    if temperature == 1:
        return logits
    return (logits - logits.amax(dim=-1, keepdim=True)) / temperature  # (..., V), max 0


# cell 20
def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the `k` largest logits (and every logit tied with the k-th), set the rest to -inf.

    `k=None` or `k=0` disables the filter; `k` larger than the vocabulary keeps everything.
    (In Hugging Face's `generate` only 0 disables it: None means its default, 50, when sampling.)
    """
    if k is None:
        return logits
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"top_k must be an integer or None, got {k!r} ({type(k).__name__})")
    if k < 0:
        raise ValueError(f"top_k must be >= 1 (or None/0 to disable), got {k}")
    if k == 0:
        return logits
    k = min(int(k), logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


# cell 21
def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches `p`.

    The most likely token is always kept, so even a tiny `p` leaves one token to pick.
    `p=None` or `p=1` keeps everything.
    """
    if p is None:
        return logits
    if not 0 < p <= 1:  # NaN fails this too
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = sorted_logits.softmax(dim=-1)
    # A token is dropped when the tokens ranked above it already reach p on their own.
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


# cell 26
def apply_repetition_penalty(
    logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float
) -> torch.Tensor:
    """Make tokens that already appear in `previous_ids` less likely (CTRL / Hugging Face rule).

    A seen token's logit is divided by `penalty` when positive and multiplied by it when negative,
    so `penalty > 1` lowers it (0 stays 0). logits (B, V) or (V,); previous_ids (B, T) or (T,).
    """
    if not (math.isfinite(penalty) and penalty > 0):
        raise ValueError(f"repetition_penalty must be a finite number > 0 (1: none), got {penalty}")
    if penalty == 1 or previous_ids.numel() == 0:
        return logits
    seen = torch.gather(logits, -1, previous_ids)  # (B, T) logits of the tokens already seen
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, previous_ids, seen)


# cell 29
def sample_next_token(
    logits: torch.Tensor, generator: torch.Generator | None, config
) -> torch.Tensor:
    """The next token of each row, from last-position logits (B, V) -> ids (B,).

    `config` has `do_sample`, `temperature`, `top_k` and `top_p` (a GenerationConfig). Greedy
    (argmax) unless do_sample and temperature > 0; otherwise temperature -> top-k -> top-p, then
    one draw per row from the softmax, using `generator` (None: PyTorch's global one).
    """
    if not config.do_sample or config.temperature == 0:
        return logits.argmax(dim=-1)  # (B,)
    logits = apply_temperature(logits, config.temperature)
    logits = top_p_filter(top_k_filter(logits, config.top_k), config.top_p)
    probs = logits.float().softmax(dim=-1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
