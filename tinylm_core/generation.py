# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "apply_repetition_penalty",
    "GenerationOutput",
    "Generator",
    "add_generate_arguments",
    "run_generate",
]


# cell 11
import argparse
import codecs
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


# cell 12
def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide logits by `temperature`: < 1 sharpens the distribution, > 1 flattens it.

    `temperature=0` is the limit of sharpening, greedy decoding: only the largest logit survives
    (the others become -inf), so there is no division by zero.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if temperature == 0:
        keep = F.one_hot(logits.argmax(dim=-1), logits.size(-1)).bool()  # (..., V)
        return logits.masked_fill(~keep, float("-inf"))
    return logits if temperature == 1 else logits / temperature


# cell 18
def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the `k` largest logits (and every logit tied with the k-th), set the rest to -inf.

    `k=None` or `k=0` disables the filter; `k` larger than the vocabulary keeps everything.
    (In Hugging Face's `generate` only 0 disables it: None means its default, 50, when sampling.)
    """
    if k is None or k == 0:
        return logits
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"top_k must be an int or None, got {type(k).__name__}")
    if k < 0:
        raise ValueError(f"top_k must be >= 1 (or None/0 to disable), got {k}")
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


# cell 19
def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches `p`.

    The most likely token is always kept, so even a tiny `p` leaves one token to pick.
    `p=None` or `p=1` keeps everything.
    """
    if p is None:
        return logits
    if not 0 < p <= 1:
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


# cell 24
def apply_repetition_penalty(
    logits: torch.Tensor, previous_ids: torch.Tensor, penalty: float
) -> torch.Tensor:
    """Make tokens that already appear in `previous_ids` less likely (CTRL / Hugging Face rule).

    A seen token's logit is divided by `penalty` when positive and multiplied by it when negative,
    so `penalty > 1` lowers it (0 stays 0). logits (B, V) or (V,); previous_ids (B, T) or (T,).
    """
    if penalty <= 0:
        raise ValueError(f"repetition_penalty must be > 0 (1 means no penalty), got {penalty}")
    if penalty == 1 or previous_ids.numel() == 0:
        return logits
    seen = torch.gather(logits, -1, previous_ids)  # (B, T) logits of the tokens already seen
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(-1, previous_ids, seen)


# cell 31
class _TextStreamer:
    """Turns new token ids into text pieces, never splitting a multi-byte UTF-8 character.

    A BPE token can end in the middle of a character (an emoji is 4 bytes, often 2 tokens), so with a
    byte-level tokenizer we push each token's bytes through an incremental UTF-8 decoder, which holds
    back an incomplete character until its last byte arrives. Other tokenizers (characters) decode
    whole characters, so we emit the growth of the decoded text.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.byte_level = hasattr(tokenizer, "decode_bytes")
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.ids: list[int] = []
        self.emitted = 0

    def push(self, token_id: int) -> str:
        if self.byte_level:
            return self.utf8.decode(self.tokenizer.decode_bytes([token_id]))
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        piece, self.emitted = text[self.emitted :], len(text)
        return piece

    def flush(self) -> str:
        """Whatever is still held back at the end (a truncated character becomes U+FFFD)."""
        return self.utf8.decode(b"", final=True) if self.byte_level else ""


# cell 33
class _ContextWindow:
    """Feeds the model a growing sequence, cropped to `max_seq_len`, with or without a KV cache.

    Both paths see exactly the same context, so they give the same logits. When the sequence no
    longer fits, the oldest `drop` tokens go at once; with a cache, that means resetting it and
    re-filling it from the cropped context (absolute positions have all moved). drop=1 is a sliding
    window: exact, but with a cache every step past the limit is a full re-fill.
    """

    def __init__(self, model, batch_size: int, use_cache: bool, drop: int):
        self.model = model
        self.max_len = model.config.max_seq_len
        self.drop = drop
        self.cache = model.new_kv_cache(batch_size) if use_cache else None
        self.start = 0  # seq[:, start:length] is what the model sees

    def next_logits(self, seq: torch.Tensor, length: int) -> torch.Tensor:
        """Logits (B, V) for the token after seq[:, :length]."""
        start = self.start
        if length - start > self.max_len:
            start = length - self.max_len + self.drop - 1
        if self.cache is None:
            x = seq[:, start:length]  # (B, T) the whole context, every step
        elif start != self.start or self.cache.seq_len == 0:
            self.cache.reset()
            x = seq[:, start:length]  # (B, T) re-fill
        else:
            x = seq[:, start + self.cache.seq_len : length]  # (B, 1) only what the cache lacks
        self.start = start
        return self.model(x, kv_cache=self.cache, last_only=True).logits[:, -1]

    def reorder(self, index: torch.Tensor) -> None:
        if self.cache is not None:
            self.cache.reorder(index)


# cell 35
@dataclass
class GenerationOutput:
    """What `Generator.generate(..., return_dict=True)` returns.

    sequences: (N, T_prompt + T_new) prompt followed by the new ids; finished rows of a batch are
    padded on the right. new_tokens: how many ids each row generated (eos included).
    finish_reasons: per row, "eos" (the model produced eos), "stop" (a stop string appeared) or
    "length" (max_new_tokens reached). scores: beam search only, each returned beam's
    length-normalised log-probability.
    """

    sequences: torch.Tensor
    new_tokens: list[int]
    finish_reasons: list[str]
    scores: list[float] | None = None

    @property
    def finish_reason(self) -> str:
        return self.finish_reasons[0]


# cell 36
class Generator:
    """Turns a trained TransformerLM into text: greedy, sampling (temperature, top-k, top-p), beam
    search, streaming. `tokenizer` may be None when you work with token ids only.

    The text methods (`generate_greedy`, `generate_sampling`, `generate_beam_search`) take a string
    or a list of ids and return the prompt followed by the continuation, as text (or as ids with
    `return_ids=True`). `generate` is the general entry point on ids, like Hugging Face's.
    After every call, `last_output` holds the GenerationOutput (finish reasons, counts, scores).
    `context_drop`: how many of the oldest tokens to drop at once when the context is full
    (default a quarter of max_seq_len; 1 gives a sliding window).
    """

    def __init__(self, model, tokenizer=None, device="cpu", *, context_drop: int | None = None):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            # The original project's quick start asks for "cuda"; on a machine without one, say so and go on.
            warnings.warn("CUDA is not available here; generating on the CPU", stacklevel=2)
            self.device = torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.vocab_size = model.config.vocab_size
        max_len = model.config.max_seq_len
        drop = max(1, max_len // 4) if context_drop is None else context_drop
        if not 1 <= drop <= max_len:
            raise ValueError(f"context_drop must be in [1, max_seq_len={max_len}], got {drop}")
        self.context_drop = drop
        self.last_output: GenerationOutput | None = None

    # ---- the text API (the original project's methods) ----
    def generate_greedy(self, prompt, max_new_tokens: int = 50, *, return_ids=False, **options):
        """Always pick the most likely next token. `options`: any keyword of `generate`."""
        out = self.generate(prompt, max_new_tokens, do_sample=False, return_dict=True, **options)
        return self._result(out, return_ids)[0]

    def generate_sampling(
        self,
        prompt,
        max_new_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        *,
        return_ids=False,
        **options,
    ):
        """Sample from the (temperature-scaled, top-k and top-p filtered) distribution."""
        out = self.generate(
            prompt,
            max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            return_dict=True,
            **options,
        )
        return self._result(out, return_ids)[0]

    def generate_beam_search(
        self,
        prompt,
        max_new_tokens: int = 50,
        num_beams: int = 4,
        length_penalty: float = 1.0,
        num_return_sequences: int = 1,
        *,
        return_ids=False,
        **options,
    ):
        """Keep the `num_beams` most likely partial sequences; returns the best one (or a list of the
        `num_return_sequences` best)."""
        out = self.generate(
            prompt,
            max_new_tokens,
            num_beams=num_beams,
            length_penalty=length_penalty,
            num_return_sequences=num_return_sequences,
            return_dict=True,
            **options,
        )
        results = self._result(out, return_ids)
        return results if num_return_sequences > 1 else results[0]

    def _result(self, out: GenerationOutput, return_ids: bool) -> list:
        """Each row without its padding; as text, also without its eos token."""
        rows = []
        prompt_len = out.sequences.size(1) - max(out.new_tokens, default=0)
        for row, n, reason in zip(out.sequences.tolist(), out.new_tokens, out.finish_reasons):
            ids = row[: prompt_len + n]
            if return_ids:
                rows.append(ids)
            else:
                self._need_tokenizer("returning text (or pass return_ids=True)")
                rows.append(self.tokenizer.decode(ids[:-1] if reason == "eos" else ids))
        return rows

    # ---- the general entry point ----
    def generate(
        self,
        input_ids,
        max_new_tokens: int = 50,
        *,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        num_beams: int = 1,
        length_penalty: float = 1.0,
        num_return_sequences: int = 1,
        eos_token_id: int | list[int] | None = None,
        stop: str | list[str] | None = None,
        use_cache: bool = True,
        seed: int | None = None,
        return_dict: bool = False,
    ):
        """Continue `input_ids` (a list of ids, a (T,) or (B, T) tensor, or a string when there is a
        tokenizer). Returns a (N, T + new) tensor, the prompt followed by the new ids, or a
        GenerationOutput with `return_dict=True`.

        Greedy by default; `do_sample=True` samples after repetition penalty -> temperature ->
        top-k -> top-p (temperature=0 is greedy); `num_beams > 1` is beam search, whose scores are
        divided by length ** length_penalty. Rows stop at `eos_token_id` (default: the
        tokenizer's; [] for none) or once their text contains one of the `stop` strings (kept).
        """
        steps = self._decode(
            input_ids,
            max_new_tokens,
            do_sample=do_sample,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            num_beams=num_beams,
            length_penalty=length_penalty,
            num_return_sequences=num_return_sequences,
            eos_token_id=eos_token_id,
            stop=stop,
            use_cache=use_cache,
            seed=seed,
        )
        while True:  # run the steps to the end; the generator returns the GenerationOutput
            try:
                next(steps)
            except StopIteration as done:
                out = done.value
                break
        return out if return_dict else out.sequences

    def stream(self, prompt, max_new_tokens: int = 50, **options) -> Iterator[str]:
        """Yield the continuation of `prompt` as text pieces, each as soon as its characters are
        complete. Takes `generate`'s keywords, except beam search (its best beam can change)."""
        self._need_tokenizer("streaming text")
        if options.get("num_beams", 1) != 1 or options.get("num_return_sequences", 1) != 1:
            raise ValueError("stream() produces one sequence: use num_beams=1")
        ids = self._prepare(prompt)
        if ids.size(0) != 1:
            raise ValueError(f"stream() takes one prompt, got a batch of {ids.size(0)}")
        eos = self._eos_ids(options.get("eos_token_id"))
        steps = self._decode(ids, max_new_tokens, **options)
        streamer = _TextStreamer(self.tokenizer)
        for token in steps:
            token = token.item()
            if token not in eos:
                piece = streamer.push(token)
                if piece:
                    yield piece
        tail = streamer.flush()
        if tail:
            yield tail

    @torch.inference_mode()
    def _decode(
        self,
        input_ids,
        max_new_tokens,
        do_sample=False,
        temperature=1.0,
        top_k=None,
        top_p=None,
        repetition_penalty=1.0,
        num_beams=1,
        length_penalty=1.0,
        num_return_sequences=1,
        eos_token_id=None,
        stop=None,
        use_cache=True,
        seed=None,
    ) -> Iterator[torch.Tensor]:
        """Validate once, then yield each step's new ids (B,); returns the GenerationOutput."""
        ids = self._prepare(input_ids)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
            raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        # Each filter validates its own argument; run them once on a dummy row so bad values fail
        # here, before any work, and not inside the loop.
        dummy = torch.zeros(1, 2)
        apply_repetition_penalty(dummy, torch.zeros(1, 1, dtype=torch.long), repetition_penalty)
        top_p_filter(top_k_filter(apply_temperature(dummy, temperature), top_k), top_p)
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        if num_return_sequences < 1 or (num_beams > 1 and num_return_sequences > num_beams):
            raise ValueError(
                f"num_return_sequences must be in [1, num_beams], got {num_return_sequences}"
            )
        eos = self._eos_ids(eos_token_id)
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        if stop:
            self._need_tokenizer("stop strings")
        if num_beams > 1:
            if ids.size(0) != 1 or stop:
                raise ValueError("beam search takes one prompt and no stop strings")
            out = self._beam_search(
                ids,
                max_new_tokens,
                num_beams,
                length_penalty,
                num_return_sequences,
                repetition_penalty,
                eos,
                use_cache,
            )
        else:
            ids = ids.repeat_interleave(num_return_sequences, dim=0)  # independent samples
            rng = None if seed is None else torch.Generator(self.device).manual_seed(seed)
            greedy = not do_sample or temperature == 0
            sampler = self._sample(
                ids,
                max_new_tokens,
                greedy,
                temperature,
                top_k,
                top_p,
                repetition_penalty,
                eos,
                stop,
                use_cache,
                rng,
            )
            out = yield from sampler
        self.last_output = out
        return out

    def _sample(
        self,
        ids,
        max_new_tokens,
        greedy,
        temperature,
        top_k,
        top_p,
        penalty,
        eos,
        stop,
        use_cache,
        rng,
    ) -> Iterator[torch.Tensor]:
        """Greedy or sampled decoding of a batch; yields each step's ids (B,)."""
        batch, prompt_len = ids.shape
        seq = torch.empty(batch, prompt_len + max_new_tokens, dtype=torch.long, device=self.device)
        seq[:, :prompt_len] = ids
        window = _ContextWindow(self.model, batch, use_cache, self.context_drop)
        eos_ids = torch.tensor(eos, dtype=torch.long, device=self.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=self.device)
        finished_any, pad = False, self._pad_id(eos)
        reasons, new_tokens = ["length"] * batch, [max_new_tokens] * batch
        streamers = [_TextStreamer(self.tokenizer) for _ in range(batch)] if stop else []
        texts = [""] * batch  # the recent text of each row, to look for stop strings
        longest_stop = max(map(len, stop), default=0)
        length = prompt_len
        for step in range(max_new_tokens):
            logits = window.next_logits(seq, length)  # (B, V)
            if penalty != 1:
                logits = apply_repetition_penalty(logits, seq[:, :length], penalty)
            if greedy:
                next_ids = logits.argmax(dim=-1)  # (B,)
            else:
                logits = top_p_filter(
                    top_k_filter(apply_temperature(logits, temperature), top_k), top_p
                )
                probs = logits.float().softmax(dim=-1)
                next_ids = torch.multinomial(probs, 1, generator=rng).squeeze(1)  # (B,)
            newly_done = []
            if finished_any:  # rows that are done only produce padding
                next_ids = torch.where(finished, pad, next_ids)
            if eos:
                hits = torch.isin(next_ids, eos_ids)  # (B,)
                if hits.any():  # rows already done were padded; they may hold eos too
                    rows = hits.nonzero().flatten().tolist()
                    newly_done += [row for row in rows if reasons[row] == "length"]
                    for row in newly_done:
                        reasons[row], new_tokens[row] = "eos", step + 1
            for row in range(batch) if stop else ():
                if reasons[row] == "length":
                    recent = texts[row] + streamers[row].push(next_ids[row].item())
                    if any(s in recent for s in stop):
                        reasons[row], new_tokens[row] = "stop", step + 1
                        newly_done.append(row)
                    texts[row] = recent[
                        -longest_stop:
                    ]  # enough to catch a stop string across pieces
            seq[:, length] = next_ids
            length += 1
            yield next_ids
            if newly_done:
                finished[newly_done] = True
                finished_any = True
                if all(reason != "length" for reason in reasons):
                    break
        new_tokens = [min(n, length - prompt_len) for n in new_tokens]
        return GenerationOutput(seq[:, :length], new_tokens, reasons)

    def _beam_search(
        self, ids, max_new_tokens, num_beams, length_penalty, num_return, penalty, eos, use_cache
    ) -> GenerationOutput:
        """Beam search for one prompt, Hugging Face style.

        Each step, every beam is extended by every token; the candidates are ranked by total
        log-probability and the best `num_beams` that do not end in eos become the next beams.
        A candidate that ends in eos (among the top `num_beams`) is a finished hypothesis, scored by
        log-probability / length ** length_penalty (length = new tokens, eos included), so
        length_penalty > 0 favours longer endings. We stop once `num_beams` hypotheses are finished
        and the best running beam, scored at its current length, does not beat the worst of them:
        Hugging Face's default heuristic (early_stopping=False); with length_penalty > 0 a beam that
        keeps growing could in principle still have overtaken.
        """
        prompt_len = ids.size(1)
        seq = torch.empty(
            num_beams, prompt_len + max_new_tokens, dtype=torch.long, device=self.device
        )
        seq[:, :prompt_len] = ids
        window = _ContextWindow(self.model, num_beams, use_cache, self.context_drop)
        # Only beam 0 is alive at first, so the first step does not pick the same token num_beams times.
        beam_scores = torch.full((num_beams,), float("-inf"), device=self.device)
        beam_scores[0] = 0.0
        finished: list[tuple[float, list[int]]] = []  # (normalised score, new ids incl. eos)
        length = prompt_len
        for step in range(max_new_tokens):
            logits = window.next_logits(seq, length)  # (beams, V)
            if penalty != 1:
                logits = apply_repetition_penalty(logits, seq[:, :length], penalty)
            scores = beam_scores[:, None] + logits.float().log_softmax(dim=-1)  # (beams, V)
            vocab = scores.size(1)
            # 2 * num_beams candidates leave num_beams running beams even if half of them end in eos.
            top, flat = torch.topk(scores.view(-1), min(2 * num_beams, scores.numel()))
            keep_beam, keep_token, keep_score = [], [], []
            for rank, (score, index) in enumerate(zip(top.tolist(), flat.tolist())):
                beam, token = divmod(index, vocab)
                if token in eos:
                    if rank < num_beams:
                        new = seq[beam, prompt_len:length].tolist() + [token]
                        finished.append((score / len(new) ** length_penalty, new))
                    continue
                keep_beam.append(beam)
                keep_token.append(token)
                keep_score.append(score)
                if len(keep_beam) == num_beams:
                    break
            finished = sorted(finished, key=lambda h: h[0], reverse=True)[:num_beams]
            if not keep_beam:  # every candidate ended in eos (a tiny vocabulary)
                break
            while len(keep_beam) < num_beams:  # ... or most of them: pad with dead beams
                keep_beam.append(keep_beam[0])
                keep_token.append(keep_token[0])
                keep_score.append(float("-inf"))
            index = torch.tensor(keep_beam, device=self.device)
            seq = seq[index]
            seq[:, length] = torch.tensor(keep_token, device=self.device)
            length += 1
            window.reorder(index)
            beam_scores = torch.tensor(keep_score, device=self.device)
            best_running = max(keep_score) / (step + 1) ** length_penalty
            if len(finished) == num_beams and finished[-1][0] >= best_running:
                break
        new_len = length - prompt_len
        running = [
            (score / max(new_len, 1) ** length_penalty, row[prompt_len:length])
            for score, row in zip(beam_scores.tolist(), seq.tolist())
        ]
        best = sorted(finished + running, key=lambda h: h[0], reverse=True)[:num_return]
        pad = self._pad_id(eos)
        width = prompt_len + max(len(new) for _, new in best)
        rows = [ids[0].tolist() + new + [pad] * (width - prompt_len - len(new)) for _, new in best]
        return GenerationOutput(
            sequences=torch.tensor(rows, dtype=torch.long, device=self.device),
            new_tokens=[len(new) for _, new in best],
            finish_reasons=["eos" if new and new[-1] in eos else "length" for _, new in best],
            scores=[score for score, _ in best],
        )

    # ---- input checks ----
    def _prepare(self, prompt) -> torch.Tensor:
        """A string, a list of ids, or a (T,) / (B, T) tensor -> (B, T) long tensor on the device."""
        if isinstance(prompt, str):
            self._need_tokenizer("a text prompt (or pass token ids)")
            prompt = self.tokenizer.encode(prompt)
        if isinstance(prompt, torch.Tensor):
            if prompt.dtype not in (torch.long, torch.int32, torch.int16, torch.uint8):
                raise TypeError(f"prompt ids must be an integer tensor, got {prompt.dtype}")
            ids = prompt.to(self.device, torch.long)
        elif isinstance(prompt, list | tuple):
            ids = torch.tensor(prompt, dtype=torch.long, device=self.device)
        else:
            raise TypeError(
                f"prompt must be a str, a list of ids or a tensor, got {type(prompt).__name__}"
            )
        if ids.dim() == 1:
            ids = ids[None]  # (1, T)
        if ids.dim() != 2:
            raise ValueError(f"prompt ids must have shape (T,) or (B, T), got {tuple(ids.shape)}")
        if ids.size(1) == 0:
            bos = getattr(self.tokenizer, "bos_token_id", None)
            if bos is None:
                raise ValueError(
                    "prompt is empty and the tokenizer has no BOS token to start from; "
                    "give at least one token"
                )
            ids = torch.full((ids.size(0), 1), bos, dtype=torch.long, device=self.device)
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(
                f"prompt has token ids outside the vocabulary [0, {self.vocab_size}): "
                f"min {ids.min().item()}, max {ids.max().item()}"
            )
        return ids

    def _eos_ids(self, eos_token_id) -> list[int]:
        if eos_token_id is None:
            eos_token_id = getattr(self.tokenizer, "eos_token_id", None)
        eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
        bad = [i for i in eos if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"eos_token_id {bad} is outside the vocabulary [0, {self.vocab_size})")
        return eos

    def _pad_id(self, eos: list[int]) -> int:
        """What finished rows are filled with: the tokenizer's pad token, else eos, else 0."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return pad if pad is not None else (eos[0] if eos else 0)

    def _need_tokenizer(self, what: str) -> None:
        if self.tokenizer is None:
            raise ValueError(f"{what} needs a tokenizer: Generator(model, tokenizer)")


# cell 50
_STRATEGIES = ("greedy", "sample", "top-k", "top-p", "beam")


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `python -m tinylm_core generate`."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    parser.add_argument("--prompt", default="", help="text to continue (default: start from BOS)")
    parser.add_argument(
        "--strategy", choices=_STRATEGIES, default="top-p", help="decoding strategy"
    )
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling strategies")
    parser.add_argument("--top-k", type=int, default=50, help="for --strategy top-k")
    parser.add_argument("--top-p", type=float, default=0.9, help="for --strategy top-p")
    parser.add_argument(
        "--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats"
    )
    parser.add_argument("--num-beams", type=int, default=4, help="for --strategy beam")
    parser.add_argument("--length-penalty", type=float, default=1.0, help="for --strategy beam")
    parser.add_argument("--stop", action="append", help="stop once this text appears (repeatable)")
    parser.add_argument("--seed", type=int, default=None, help="make sampling reproducible")
    parser.add_argument("--no-cache", action="store_true", help="recompute the prefix every step")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps ...")


def run_generate(args: argparse.Namespace) -> int:
    """Load a checkpoint and stream the continuation of --prompt to stdout."""
    from tinylm_core.training import load_checkpoint  # the CLI needs training; the library does not

    try:
        model, tokenizer, _ = load_checkpoint(args.checkpoint, device=args.device)
        generator = Generator(model, tokenizer, device=args.device)
        options = dict(
            repetition_penalty=args.repetition_penalty,
            stop=args.stop,
            use_cache=not args.no_cache,
        )
        print(args.prompt, end="", flush=True)
        if args.strategy == "beam":  # the best beam is only known at the end: print it whole
            text = generator.generate_beam_search(
                args.prompt, args.max_new_tokens, args.num_beams, args.length_penalty, **options
            )
            print(text[len(args.prompt) :] if text.startswith(args.prompt) else text, end="")
        else:
            sampling = {
                "greedy": dict(do_sample=False),
                "sample": dict(do_sample=True, temperature=args.temperature, seed=args.seed),
                "top-k": dict(do_sample=True, temperature=args.temperature, top_k=args.top_k),
                "top-p": dict(do_sample=True, temperature=args.temperature, top_p=args.top_p),
            }[args.strategy]
            sampling.setdefault("seed", args.seed)
            for piece in generator.stream(args.prompt, args.max_new_tokens, **sampling, **options):
                print(piece, end="", flush=True)
        print()
        reason = generator.last_output.finish_reason
        print(
            f"[{generator.last_output.new_tokens[0]} tokens, stopped by {reason}]", file=sys.stderr
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
