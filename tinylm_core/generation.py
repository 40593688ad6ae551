# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["decode_loop", "resolve_device", "Generator"]


# cell 77
import warnings
from collections.abc import Iterator

import torch

from tinylm_core.beam_search import beam_search
from tinylm_core.context_window import ContextWindow
from tinylm_core.fast_linear import use_fast_linear
from tinylm_core.generation_config import GenerationConfig, GenerationOutput, merge_config
from tinylm_core.prompts import eos_ids, is_prompt_list, left_pad, pad_id, prompt_batches
from tinylm_core.sampling import apply_repetition_penalty, sample_next_token
from tinylm_core.streaming import StopStrings, TextStreamer


# cell 78
def decode_loop(
    window, ids, config, eos: list[int], pad: int, tokenizer=None
) -> Iterator[torch.Tensor]:
    """Greedy or sampled decoding of the prompts `ids` (B, T): yields each step's ids (B,) and
    returns the GenerationOutput. `window`: a ContextWindow with B rows."""
    (batch, prompt_len), device = ids.shape, ids.device
    seq = torch.empty(batch, prompt_len + config.max_new_tokens, dtype=torch.long, device=device)
    seq[:, :prompt_len] = ids
    rng = None if config.seed is None else torch.Generator(device).manual_seed(config.seed)
    eos_tensor = torch.tensor(eos, dtype=torch.long, device=device)
    stops = StopStrings(tokenizer, config.stop, batch) if config.stop else None
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    reasons, new_tokens, length = ["length"] * batch, [config.max_new_tokens] * batch, prompt_len
    penalty, finished_any = config.repetition_penalty, False
    for step in range(config.max_new_tokens):
        logits = window.next_logits(seq, length)  # (B, V)
        if penalty != 1:
            logits = apply_repetition_penalty(logits, seq[:, :length], penalty)
        next_ids = sample_next_token(logits, rng, config)  # (B,)
        if finished_any:  # rows that are done only produce padding
            next_ids = torch.where(finished, pad, next_ids)
        done = []
        if eos and (hits := torch.isin(next_ids, eos_tensor)).any():  # one check per step
            # rows already done were padded and may hold eos too: only new ones count
            done = [row for row in hits.nonzero().flatten().tolist() if reasons[row] == "length"]
            for row in done:
                reasons[row], new_tokens[row] = "eos", step + 1
        for row in range(batch) if stops else ():
            if reasons[row] == "length" and stops.hit(row, next_ids[row].item()):
                reasons[row], new_tokens[row] = "stop", step + 1
                done.append(row)
        seq[:, length] = next_ids
        length += 1
        yield next_ids
        if done:
            finished[done], finished_any = True, True
            if "length" not in reasons:
                break
    new_tokens = [min(n, length - prompt_len) for n in new_tokens]
    return GenerationOutput(seq[:, :length], new_tokens, reasons)


# cell 81
def resolve_device(device) -> torch.device:
    """ "auto" -> CUDA when available, else the CPU; "cuda" without CUDA warns and uses the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA is not available here; generating on the CPU", stacklevel=3)
        return torch.device("cpu")
    return device


class Generator:
    """Turns a trained TransformerLM into text: greedy, sampling (temperature, top-k, top-p), beam
    search, streaming. `tokenizer` may be None when you work with token ids only."""

    def __init__(self, model, tokenizer=None, device="cpu", *, context_drop: int | None = None):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            use_fast_linear(self.model)
        self.tokenizer = tokenizer
        self.vocab_size = model.config.vocab_size
        max_len = model.config.max_seq_len
        drop = max(1, max_len // 4) if context_drop is None else context_drop
        if not 1 <= drop <= max_len:
            raise ValueError(f"context_drop must be in [1, max_seq_len={max_len}], got {drop}")
        self.context_drop = drop
        self.last_output: GenerationOutput | None = None

    # cell 83
    def generate(
        self, input_ids, max_new_tokens=None, *, config=None, return_dict=False, **options
    ):
        """Continue `input_ids`: a list of ids, a (T,) or (B, T) tensor, a string (with a tokenizer),
        or a list of such prompts, of any lengths. Settings: a GenerationConfig and/or its fields as
        keywords. Returns a (N, T + new) tensor, prompt then new ids (N = B * num_return_sequences),
        or a GenerationOutput with `return_dict=True`. Lesson 12 adds `draft_model=`."""
        if {"draft_model", "num_speculative_tokens"} & options.keys():  # speculative decoding
            return _speculative(self, input_ids, max_new_tokens, config, return_dict, options)
        config = merge_config(config, options, max_new_tokens=max_new_tokens)
        batches = prompt_batches(
            input_ids, self.tokenizer, self.vocab_size, self.device, config.num_beams > 1
        )
        outputs = []
        for _, ids in batches:
            steps = self._decode(ids, config)
            while True:  # run the steps to the end; the generator returns the GenerationOutput
                try:
                    next(steps)
                except StopIteration as done:
                    outputs.append(done.value)
                    break
        pad = pad_id(self.tokenizer, eos_ids(config.eos_token_id, self.tokenizer, self.vocab_size))
        order = [indices for indices, _ in batches]
        self.last_output = outputs[0] if len(outputs) == 1 else left_pad(outputs, order, pad)
        return self.last_output if return_dict else self.last_output.sequences

    # cell 84
    @torch.inference_mode()
    def _decode(self, ids: torch.Tensor, config: GenerationConfig) -> Iterator[torch.Tensor]:
        """Yield each step's new ids (B,) for the prompts `ids` (B, T); return the GenerationOutput."""
        eos = eos_ids(config.eos_token_id, self.tokenizer, self.vocab_size)
        pad = pad_id(self.tokenizer, eos)
        if config.stop and (self.tokenizer is None or config.num_beams > 1):
            raise ValueError(
                "stop strings need a tokenizer, and num_beams=1 (a best beam can change)"
            )
        if config.num_beams > 1:
            window = ContextWindow(
                self.model, config.num_beams, config.use_cache, self.context_drop
            )
            best = beam_search(window, ids, config, eos)
            return GenerationOutput.from_beams(best, ids[0].tolist(), eos, pad, ids.device)
        ids = ids.repeat_interleave(config.num_return_sequences, dim=0)  # independent samples
        window = ContextWindow(self.model, ids.size(0), config.use_cache, self.context_drop)
        return (yield from decode_loop(window, ids, config, eos, pad, self.tokenizer))

    # cell 87
    def _text(self, prompt, return_ids: bool, options: dict):
        """Run `generate` and return each row as text (or ids): one result for one prompt, else a list."""
        out = self.generate(prompt, return_dict=True, **options)
        results = []
        for ids, reason in zip(out.rows(), out.finish_reasons):
            if not return_ids:
                if self.tokenizer is None:
                    raise ValueError("returning text needs a tokenizer (or pass return_ids=True)")
                ids = self.tokenizer.decode(ids[:-1] if reason == "eos" else ids)
            results.append(ids)
        return results if len(results) > 1 or is_prompt_list(prompt) else results[0]

    # cell 87
    def generate_greedy(self, prompt, max_new_tokens: int = 50, *, return_ids=False, **options):
        """Always pick the most likely next token. `options`: GenerationConfig fields, or config=."""
        options.update(max_new_tokens=max_new_tokens, do_sample=False)
        return self._text(prompt, return_ids, options)

    # cell 88
    def generate_sampling(
        self, prompt, max_new_tokens=50, temperature=1.0, top_k=None, top_p=None, seed=None, *,
        return_ids=False, **options,
    ):  # fmt: skip
        """Sample from the (temperature-scaled, top-k and top-p filtered) distribution."""
        options.update(
            max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p
        )
        return self._text(prompt, return_ids, dict(options, do_sample=True, seed=seed))

    # cell 88
    def generate_beam_search(
        self, prompt, max_new_tokens=50, num_beams=4, length_penalty=1.0, num_return_sequences=1, *,
        return_ids=False, **options,
    ):  # fmt: skip
        """Keep the `num_beams` most likely partial sequences; returns the best one (or a list of
        the `num_return_sequences` best)."""
        options.update(
            max_new_tokens=max_new_tokens, num_beams=num_beams, length_penalty=length_penalty
        )
        return self._text(
            prompt, return_ids, dict(options, num_return_sequences=num_return_sequences)
        )

    # cell 91
    def stream(self, prompt, max_new_tokens=None, *, config=None, **options) -> Iterator[str]:
        """Yield the continuation of `prompt` as text pieces, never splitting a character."""
        if self.tokenizer is None:
            raise ValueError("streaming text needs a tokenizer: Generator(model, tokenizer)")
        config = merge_config(config, options, max_new_tokens=max_new_tokens)
        if config.num_beams != 1 or config.num_return_sequences != 1:
            raise ValueError(
                "stream() produces one sequence: use num_beams=1, num_return_sequences=1"
            )
        batches = prompt_batches(prompt, self.tokenizer, self.vocab_size, self.device)
        if len(batches) != 1 or batches[0][1].size(0) != 1:
            raise ValueError("stream() takes one prompt; use generate() for several")
        eos, streamer = (
            eos_ids(config.eos_token_id, self.tokenizer, self.vocab_size),
            TextStreamer(self.tokenizer),
        )
        steps = self._decode(batches[0][1], config)
        while True:
            try:
                token = next(steps).item()
            except StopIteration as done:
                self.last_output = done.value
                break
            piece = "" if token in eos else streamer.push(token)
            if piece:
                yield piece
        tail = streamer.flush()
        if tail:
            yield tail

    # cell 91
    @classmethod
    def from_checkpoint(cls, path, device="cpu", **options) -> "Generator":
        """A Generator for the model and tokenizer of a checkpoint file or run directory."""
        from tinylm_core import load_checkpoint  # the file format is notebook 06's

        device = resolve_device(device)
        model, tokenizer, _ = load_checkpoint(path, device=device)
        return cls(model, tokenizer, device=device, **options)


# cell 83
def _speculative(*args):
    """Lesson 12's speculative decoding, imported when used (its module comes later)."""
    from tinylm_core.speculative import speculative_generate

    return speculative_generate(*args)
