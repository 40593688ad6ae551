# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "encode_prompt",
    "check_ids",
    "is_prompt_list",
    "prompt_batches",
    "left_pad",
    "eos_ids",
    "pad_id",
]


# cell 69
import numbers
import warnings

import torch

from tinylm_core.generation_config import GenerationOutput


# cell 70
def encode_prompt(prompt, tokenizer) -> list[int] | torch.Tensor:
    """Text -> ids (warning about characters outside the vocabulary); ids pass through."""
    if not isinstance(prompt, str):
        return prompt
    if tokenizer is None:
        raise ValueError(
            "a text prompt needs a tokenizer: Generator(model, tokenizer), or pass ids"
        )
    ids = tokenizer.encode(prompt)
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and unk in ids:
        unknown = sorted({c for c in prompt if tokenizer.encode(c) == [unk]})
        warnings.warn(
            f"prompt characters not in the vocabulary, read as <unk>: {unknown}", stacklevel=5
        )
    return ids


# cell 71
def check_ids(ids, vocab_size: int, device, bos: int | None = None) -> torch.Tensor:
    """A list of ids or a (T,) / (B, T) integer tensor -> (B, T) long tensor on `device`.
    An empty prompt starts from `bos` when there is one."""
    if isinstance(ids, list | tuple):
        bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, numbers.Integral)]
        if bad:
            raise TypeError(f"token ids must be integers, got {bad[0]!r} ({type(bad[0]).__name__})")
        ids = torch.tensor(ids, dtype=torch.long, device=device)
    if not isinstance(ids, torch.Tensor):
        raise TypeError(
            f"a prompt must be a str, a list of ids or a tensor, got {type(ids).__name__}"
        )
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"token ids must be an integer tensor, got {ids.dtype}")
    ids = ids.to(device, torch.long)
    ids = ids[None] if ids.dim() == 1 else ids  # (B, T)
    if ids.dim() != 2:
        raise ValueError(f"prompt ids must have shape (T,) or (B, T), got {tuple(ids.shape)}")
    if ids.size(1) == 0:
        if bos is None:
            raise ValueError(
                "prompt is empty and the tokenizer has no BOS token; give at least one token"
            )
        ids = torch.full((ids.size(0), 1), bos, dtype=torch.long, device=device)
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(
            f"prompt has token ids outside the vocabulary [0, {vocab_size}): "
            f"min {ids.min().item()}, max {ids.max().item()}"
        )
    return ids


# cell 72
def is_prompt_list(prompt) -> bool:
    """True for a list of prompts (texts, id lists, tensors), False for one prompt's ids."""
    return (
        isinstance(prompt, list | tuple)
        and bool(prompt)
        and not isinstance(prompt[0], numbers.Number)
    )


def prompt_batches(prompt, tokenizer, vocab_size: int, device, one_per_batch=False):
    """The prompt(s) as a list of (indices, (B, T) long tensor on `device`): one batch per group
    of equal lengths (one per prompt with `one_per_batch`); `indices` are the prompts' positions."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if is_prompt_list(prompt):
        rows = [
            check_ids(encode_prompt(p, tokenizer), vocab_size, device, bos).flatten()
            for p in prompt
        ]
    else:  # one prompt, or a (B, T) tensor
        rows = list(check_ids(encode_prompt(prompt, tokenizer), vocab_size, device, bos))
    groups = {}  # length (or row) -> indices of its rows
    for i, row in enumerate(rows):
        groups.setdefault(i if one_per_batch else len(row), []).append(i)
    return [(indices, torch.stack([rows[i] for i in indices])) for indices in groups.values()]


# cell 73
def left_pad(outputs: list[GenerationOutput], order: list[list[int]], pad: int) -> GenerationOutput:
    """Several batches' outputs as one, in prompt order (`order`: each batch's prompt indices):
    each prompt right-aligned (padded on the left), its new ids after it."""
    rows = []  # (prompt index, ids, new tokens, finish reason, score)
    for out, indices in zip(outputs, order):
        per_prompt = len(out.new_tokens) // len(indices)  # num_return_sequences
        scores = out.scores or [None] * len(out.new_tokens)
        parts = zip(out.rows(), out.new_tokens, out.finish_reasons, scores)
        rows += [(indices[j // per_prompt], *part) for j, part in enumerate(parts)]
    rows.sort(key=lambda row: row[0])  # stable: a prompt's rows keep their order
    prompt_lengths = [len(ids) - n for _, ids, n, _, _ in rows]
    width, new = max(prompt_lengths), [n for _, _, n, _, _ in rows]
    sequences = torch.full(
        (len(rows), width + max(new)), pad, dtype=torch.long, device=outputs[0].sequences.device
    )
    for i, ((_, ids, *_), p) in enumerate(zip(rows, prompt_lengths)):
        sequences[i, width - p : width - p + len(ids)] = torch.tensor(ids)
    scores = [row[4] for row in rows] if outputs[0].scores else None
    return GenerationOutput(sequences, new, [row[3] for row in rows], scores, prompt_lengths)


# cell 74
def eos_ids(eos_token_id, tokenizer, vocab_size: int) -> list[int]:
    """The ids that end a row: `eos_token_id` (int or list), else the tokenizer's, else none."""
    if eos_token_id is None:
        eos_token_id = getattr(tokenizer, "eos_token_id", None)
    eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    bad = [i for i in eos if not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f"eos_token_id {bad} is outside the vocabulary [0, {vocab_size})")
    return eos


def pad_id(tokenizer, eos: list[int]) -> int:
    """What finished rows are filled with: the tokenizer's pad token, else eos, else 0."""
    pad = getattr(tokenizer, "pad_token_id", None)
    return pad if pad is not None else (eos[0] if eos else 0)
