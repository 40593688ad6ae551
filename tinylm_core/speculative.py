# This file is generated from notebooks/12_fast_inference.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "accept_greedy",
    "token_probs",
    "accept_sampled",
    "ScoringWindow",
    "speculative_decode",
    "check_draft",
    "speculative_generate",
]


# cell 48
import numbers

import torch

from tinylm_core.fast_linear import use_fast_linear
from tinylm_core.generation_config import GenerationConfig, GenerationOutput, merge_config
from tinylm_core.prompts import eos_ids, left_pad, pad_id, prompt_batches
from tinylm_core.sampling import apply_temperature, top_k_filter, top_p_filter


# cell 49
def accept_greedy(target_logits: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
    """target_logits (k + 1, V) at the k drafts' positions and one more -> the tokens to append:
    the drafts up to the first the target would not have chosen, then the target's own choice."""
    best = target_logits.argmax(-1)  # (k + 1,) what greedy decoding of the target picks
    accepted = int((best[:-1] == drafts).int().cumprod(0).sum())  # leading agreements
    return torch.cat([drafts[:accepted], best[accepted : accepted + 1]])


# cell 52
def token_probs(logits: torch.Tensor, config) -> torch.Tensor:
    """The distribution lesson 07's sampler draws from: temperature, top-k, top-p, softmax."""
    logits = apply_temperature(logits, config.temperature)
    return top_p_filter(top_k_filter(logits, config.top_k), config.top_p).float().softmax(-1)


# cell 53
def accept_sampled(
    p: torch.Tensor, q: torch.Tensor, drafts: torch.Tensor, rng=None
) -> torch.Tensor:
    """Speculative sampling (Leviathan et al. 2023, Chen et al. 2023). p (k + 1, V): the target's
    distributions; q (k, V): the draft's, which drafted `drafts` (k,). Draft i is kept with
    probability min(1, p_i / q_i); the first rejected one is replaced by a draw from
    max(0, p - q), normalised; if all are kept, one more token comes from p_k. Every token is
    then distributed exactly as the target alone would sample it."""
    k, rows = len(drafts), torch.arange(len(drafts), device=p.device)
    p_draft, q_draft = p[rows, drafts], q[rows, drafts]  # (k,)
    u = torch.rand(k, generator=rng, device=p.device)
    kept = int((u * q_draft <= p_draft).int().cumprod(0).sum())  # u < p/q, without dividing
    last = p[kept]
    if kept < k:  # the first rejection: sample what the target has more of than the draft
        residual = (p[kept] - q[kept]).clamp_min(0)
        last = residual if residual.sum() > 0 else last  # p == q: nothing is ever rejected
    following = torch.multinomial(last, 1, generator=rng)  # multinomial normalises
    return torch.cat([drafts[:kept], following])


# cell 58
class ScoringWindow:
    """Logits of one sequence's last n positions, with lesson 07's cropping past max_seq_len.

    Unlike lesson 07's ContextWindow, it may be asked for several positions at once (the target
    checks k drafts in one pass), and its KV cache is cut back to the positions that are still
    valid: after a rejection, the cached drafts are wrong and later writes replace them.
    """

    def __init__(self, model, use_cache: bool, drop: int):
        self.model, self.max_len, self.drop = model, model.config.max_seq_len, drop
        self.cache = model.new_kv_cache(1) if use_cache else None
        self.start = 0  # seq[:, start:length] is what the model sees

    def room(self, length: int) -> int:
        """Crop the window if seq[:length] no longer fits (as ContextWindow does); return how many
        more tokens fit before the window must move."""
        if length - self.start > self.max_len:
            self.start = length - self.max_len + self.drop - 1
            if self.cache is not None:
                self.cache.reset()  # every position moved: re-fill
        return self.max_len - (length - self.start)

    def logits(self, seq: torch.Tensor, length: int, n: int = 1) -> torch.Tensor:
        """Logits (n, V) for the tokens after seq[:, :length - n + 1], ..., seq[:, :length]."""
        self.room(length)
        if self.cache is None:
            x = seq[:, self.start : length]  # (1, T) the whole context
        else:
            keep = min(self.cache.seq_len, length - n - self.start)  # still-valid positions
            self.cache.crop(keep)
            x = seq[:, self.start + keep : length]  # (1, T_new) what the cache lacks
        return self.model(x, kv_cache=self.cache).logits[0, -n:]  # (n, V)


# cell 59
@torch.inference_mode()
def speculative_decode(
    target, draft, ids, config: GenerationConfig, k: int, drop: int, eos=(), rng=None
):
    """Decode one prompt ids (1, T) with `draft` proposing up to k tokens and `target` checking
    them in one pass. Returns (GenerationOutput, [(drafted, accepted) per target pass]).
    `rng`: a torch.Generator for sampling (default: one seeded with config.seed, if any)."""
    greedy = not config.do_sample or config.temperature == 0
    if rng is None and config.seed is not None:
        rng = torch.Generator(ids.device).manual_seed(config.seed)
    prompt_len, total = ids.size(1), ids.size(1) + config.max_new_tokens
    seq = torch.empty(1, total, dtype=torch.long, device=ids.device)
    seq[:, :prompt_len] = ids
    checker = ScoringWindow(target, config.use_cache, drop)
    drafter = ScoringWindow(draft, config.use_cache, max(1, draft.config.max_seq_len // 4))
    length, reason, stats = prompt_len, "length", []
    while length < total:
        # as many drafts as fit before the target's window moves (then plain steps: exact crops)
        n = min(k, total - length - 1, checker.room(length))
        q = []  # the draft's distributions, for the sampling rule
        for i in range(n):
            logits = drafter.logits(seq, length + i)[0]  # (V,)
            if greedy:
                seq[0, length + i] = logits.argmax()
            else:
                q.append(token_probs(logits, config))
                seq[0, length + i] = torch.multinomial(q[-1], 1, generator=rng)[0]
        logits = checker.logits(seq, length + n, n + 1)  # (n + 1, V) one pass checks them all
        drafts = seq[0, length : length + n]
        if greedy:
            new = accept_greedy(logits, drafts)
        else:
            q = torch.stack(q) if q else logits.new_empty(0, logits.size(-1))
            new = accept_sampled(token_probs(logits, config), q, drafts, rng)
        stats.append((n, len(new) - 1))
        hits = [i for i, token in enumerate(new.tolist()) if token in eos]
        if hits:
            new, reason = new[: hits[0] + 1], "eos"
        seq[0, length : length + len(new)] = new
        length += len(new)
        if reason == "eos":
            break
    output = GenerationOutput(seq[:, :length], [length - prompt_len], [reason])
    return output, stats


# cell 60
def check_draft(target, draft, k) -> int:
    """k as an int >= 1, after checking that `draft` can draft for `target`; else an error."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"num_speculative_tokens must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"num_speculative_tokens must be >= 1 (drafts per target pass), got {k}")
    if not hasattr(draft, "config") or not hasattr(draft, "new_kv_cache"):
        raise TypeError(f"draft_model must be a TransformerLM, got {type(draft).__name__}")
    if draft.config.vocab_size != target.config.vocab_size:
        raise ValueError(
            f"the draft's vocabulary ({draft.config.vocab_size} tokens) must be the target's "
            f"({target.config.vocab_size}): train the draft with the target's tokenizer"
        )
    if k >= target.config.max_seq_len:
        raise ValueError(
            f"num_speculative_tokens must be < max_seq_len={target.config.max_seq_len}"
        )
    return int(k)


# cell 61
def speculative_generate(generator, input_ids, max_new_tokens, config, return_dict, options):
    """What `Generator.generate(input_ids, max_new_tokens, config=..., return_dict=...,
    draft_model=draft, num_speculative_tokens=k, **options)` runs (k defaults to 4): every prompt,
    and each of its num_return_sequences, decoded on its own. Returns what generate returns."""
    options = dict(options)
    draft, k = options.pop("draft_model", None), options.pop("num_speculative_tokens", None)
    if draft is None:
        if k is not None:
            raise ValueError("num_speculative_tokens needs a draft_model to draft the tokens")
        return generator.generate(
            input_ids, max_new_tokens, config=config, return_dict=return_dict, **options
        )
    config = merge_config(config, options, max_new_tokens=max_new_tokens)
    k = check_draft(generator.model, draft, 4 if k is None else k)
    if config.num_beams > 1 or config.repetition_penalty != 1 or config.stop:
        raise ValueError(
            "speculative decoding does greedy and sampling: use num_beams=1, "
            "repetition_penalty=1 and no stop strings"
        )
    draft = draft.to(generator.device).eval()
    if generator.device.type == "cpu":
        use_fast_linear(draft)
    eos = eos_ids(config.eos_token_id, generator.tokenizer, generator.vocab_size)
    batches = prompt_batches(
        input_ids, generator.tokenizer, generator.vocab_size, generator.device, True
    )
    rng = (
        None if config.seed is None else torch.Generator(generator.device).manual_seed(config.seed)
    )
    outputs, order = [], []
    for indices, ids in batches:
        for _ in range(config.num_return_sequences):
            decode = speculative_decode(
                generator.model, draft, ids, config, k, generator.context_drop, eos, rng
            )
            outputs.append(decode[0])
            order.append(indices)
    pad = pad_id(generator.tokenizer, eos)
    generator.last_output = outputs[0] if len(outputs) == 1 else left_pad(outputs, order, pad)
    return generator.last_output if return_dict else generator.last_output.sequences
