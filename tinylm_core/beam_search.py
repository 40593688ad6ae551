# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["reorder_kv_cache", "beam_search"]


# cell 45
import torch

from tinylm_core.sampling import apply_repetition_penalty


# cell 46
def _select_rows(buffer: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    """buffer[index] over positions 0..length-1 of dim 2, in a new buffer as long as the old one."""
    out = buffer.new_empty((len(index), *buffer.shape[1:]))  # (B', H, max_len, head_dim)
    kept, into = buffer.narrow(2, 0, length), out.narrow(2, 0, length)
    if torch.is_grad_enabled() and buffer.requires_grad:  # out= cannot record gradients; copy_ can
        into.copy_(kept.index_select(0, index))
    else:
        torch.index_select(kept, 0, index, out=into)  # one copy instead of two
    return out


def reorder_kv_cache(cache, index) -> None:
    """Row i of every layer's keys and values becomes old row index[i] (keep, repeat, permute)."""
    index = torch.as_tensor(index, dtype=torch.long)
    if index.dim() != 1:
        raise ValueError(
            f"index must be a 1-D tensor of batch rows, got shape {tuple(index.shape)}"
        )
    for layer in cache.layers:
        rows = index.to(layer.k.device)  # a no-op when it is there already
        layer.k = _select_rows(layer.k, rows, layer.seq_len)
        layer.v = _select_rows(layer.v, rows, layer.seq_len)


# cell 49
@torch.inference_mode()
def beam_search(window, ids: torch.Tensor, config, eos: list[int]) -> list[tuple[float, list[int]]]:
    """Beam search for one prompt `ids` (1, T): the `config.num_return_sequences` best
    (length-normalised score, new ids) pairs, best first. `window`: a ContextWindow with
    `config.num_beams` rows; `config` a GenerationConfig; `eos`: the token ids that end a beam."""
    num_beams, prompt_len, device = config.num_beams, ids.size(1), ids.device
    seq = torch.empty(
        num_beams, prompt_len + config.max_new_tokens, dtype=torch.long, device=device
    )
    seq[:, :prompt_len] = ids
    # Only beam 0 is alive at first, so the first step does not pick the same token num_beams times.
    beam_scores = torch.full((num_beams,), float("-inf"), device=device)
    beam_scores[0] = 0.0
    finished = []  # (normalised score, new ids incl. eos)
    length = prompt_len
    for step in range(config.max_new_tokens):
        logits = window.next_logits(seq, length)  # (beams, V)
        logits = apply_repetition_penalty(logits, seq[:, :length], config.repetition_penalty)
        scores = beam_scores[:, None] + logits.float().log_softmax(dim=-1)  # (beams, V)
        top, flat = torch.topk(scores.view(-1), min(2 * num_beams, scores.numel()))
        keep = []  # (beam, token, score) of the next beams
        for rank, (score, index) in enumerate(zip(top.tolist(), flat.tolist())):
            beam, token = divmod(index, scores.size(1))
            if token not in eos:
                keep.append((beam, token, score))
            elif rank < num_beams:
                new = seq[beam, prompt_len:length].tolist() + [token]
                finished.append((score / len(new) ** config.length_penalty, new))
            if len(keep) == num_beams:
                break
        finished = sorted(finished, key=lambda h: h[0], reverse=True)[:num_beams]
        if not keep:  # every candidate ended in eos (a tiny vocabulary)
            break
        keep += [(keep[0][0], keep[0][1], float("-inf"))] * (num_beams - len(keep))  # dead beams
        index = torch.tensor([beam for beam, _, _ in keep], device=device)
        seq = seq[index]
        seq[:, length] = torch.tensor([token for _, token, _ in keep], device=device)
        length += 1
        if window.cache is not None:
            reorder_kv_cache(window.cache, index)
        beam_scores = torch.tensor([score for _, _, score in keep], device=device)
        best_running = max(s for _, _, s in keep) / (step + 1) ** config.length_penalty
        if len(finished) == num_beams and finished[-1][0] >= best_running:
            break
    new_len = max(length - prompt_len, 1)
    running = [
        (score / new_len**config.length_penalty, row[prompt_len:length])
        for score, row in zip(beam_scores.tolist(), seq.tolist())
    ]
    return sorted(finished + running, key=lambda h: h[0], reverse=True)[
        : config.num_return_sequences
    ]
