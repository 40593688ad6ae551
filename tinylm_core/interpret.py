# This file is generated from notebooks/10_inside_the_model.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "capture_attention",
    "attention_weights",
    "attention_to",
    "previous_token_score",
    "head_means",
    "ablate_heads",
    "logit_lens",
]


# cell 8
import contextlib
from functools import partial

import torch

from tinylm_core.attention import scaled_dot_product_attention


# cell 9
def _check_index(name, value, size, fix):
    """A layer or head index in 0..size-1, else ValueError (TypeError when not an int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{name} {value} does not exist: it must be in 0..{size - 1}; {fix}")
    return value


# cell 11
def _recompute_weights(attn, q, k, attention_mask):
    """softmax(q k^T / sqrt(hd)) with the layer's own mask: (B, H, T, Tk), before dropout."""
    B, H, T, _ = q.shape
    if k.size(1) != H:  # grouped-query attention: each key head serves H // H_kv query heads
        k = k.repeat_interleave(H // k.size(1), dim=1)  # (B, H, Tk, hd)
    mask, is_causal = attn._mask(attention_mask, B, T, k.size(2), q.device)
    _, weights = scaled_dot_product_attention(q, k, k, mask, 0.0, is_causal)  # (B, H, T, Tk)
    return weights


# cell 13
def _recording(attn, attend, weights, layer):
    """`attend`, unchanged, that also stores its attention weights in weights[layer]."""

    def recording_attend(q, k, v, *args, **kwargs):
        out = attend(q, k, v, *args, **kwargs)  # exactly what the model computes
        mask = args[0] if args else kwargs.get("attention_mask")
        weights[layer] = _recompute_weights(attn, q, k, mask).detach()
        return out

    return recording_attend


# cell 15
@contextlib.contextmanager
def capture_attention(model):
    """Inside the block, every forward pass of `model` stores layer i's attention weights
    (B, H, T, Tk) in the yielded list at index i. The model's outputs do not change.

    >>> with capture_attention(model) as weights:
    ...     logits = model(ids).logits
    """
    weights = [None] * len(model.blocks)
    wrapped = []
    try:
        for layer, block in enumerate(model.blocks):
            attn = block.attn
            wrapped.append((attn, attn.__dict__.get("attend")))  # an instance patch already there
            attn.attend = _recording(attn, attn.attend, weights, layer)
        yield weights
    finally:
        for attn, previous in wrapped:
            if previous is None:
                del attn.attend  # the class's method again
            else:
                attn.attend = previous


# cell 17
@torch.no_grad()
def attention_weights(model, input_ids):
    """(logits (B, T, V), weights (L, B, H, T, T)): one forward pass, every layer and head."""
    with capture_attention(model) as weights:
        logits = model(input_ids).logits
    return logits, torch.stack(weights)


# cell 23
def attention_to(weights, key_positions):
    """Mean weight each head puts on one chosen key per query: (..., H).

    weights: (..., B, H, T, Tk), e.g. attention_weights' (L, B, H, T, T). key_positions: (B, T)
    long, the key each query should look at, -1 where it has none (left out of the mean)."""
    valid = key_positions >= 0  # (B, T)
    index = key_positions.clamp(min=0)[:, None, :, None]  # (B, 1, T, 1)
    picked = weights.gather(-1, index.expand(*weights.shape[:-1], 1)).squeeze(-1)  # (..., B, H, T)
    total = (picked * valid[:, None, :]).sum(dim=(-3, -1))  # (..., H)
    return total / valid.sum().clamp(min=1)


# cell 25
def previous_token_score(weights):
    """(..., H): the mean weight on position t - 1 (position 0 has none)."""
    B, T = weights.shape[-4], weights.shape[-2]
    return attention_to(weights, (torch.arange(T) - 1).expand(B, T))


# cell 36
def _check_heads(model, heads):
    """[(layer, head), ...] -> {layer: [heads]}, each index checked."""
    by_layer = {}
    for pair in heads:
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(f"heads must be (layer, head) pairs, got {pair!r}")
        fix = "pass (layer, head) pairs counted from 0"
        layer = _check_index("layer", pair[0], len(model.blocks), fix)
        head = _check_index("head", pair[1], model.blocks[layer].attn.num_heads, fix)
        by_layer.setdefault(layer, []).append(head)
    return by_layer


# cell 38
@torch.no_grad()
def head_means(model, input_ids):
    """(L, C): each layer's mean `proj` input over input_ids, i.e. each head's mean output."""
    means = [None] * len(model.blocks)

    def record(layer, module, args):
        means[layer] = args[0].mean(dim=(0, 1))  # (C,): mean over batch and positions

    hooks = [
        b.attn.proj.register_forward_pre_hook(partial(record, i))
        for i, b in enumerate(model.blocks)
    ]
    try:
        model(input_ids)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(means)


# cell 40
def _replace_heads(heads, head_dim, mean, module, args):
    """Pre-hook on `proj`: each head's slice of channels becomes zero, or `mean`'s slice."""
    (y,) = args  # (B, T, H * hd): the heads' outputs side by side
    y = y.clone()
    for head in heads:
        channels = slice(head * head_dim, (head + 1) * head_dim)
        y[..., channels] = 0.0 if mean is None else mean[channels]
    return (y,)


# cell 42
@contextlib.contextmanager
def ablate_heads(model, heads, means=None):
    """Inside the block, each (layer, head) in `heads` outputs zeros, or its mean output when
    `means` (head_means' (L, C)) is given. ablate_heads(model, []) changes nothing."""
    hooks = []
    try:
        for layer, layer_heads in _check_heads(model, heads).items():
            attn = model.blocks[layer].attn
            mean = None if means is None else means[layer]
            hook = partial(_replace_heads, layer_heads, attn.head_dim, mean)
            hooks.append(attn.proj.register_forward_pre_hook(hook))
        yield model
    finally:
        for hook in hooks:
            hook.remove()


# cell 79
@torch.no_grad()
def logit_lens(model, input_ids):
    """(L + 1, B, T, V): the logits read from the residual stream after the embeddings (0) and
    after each block (1..L) through the model's ln_f and lm_head. The last equals the logits."""
    stream = []  # the residual stream, (B, T, C), before block 0 and after every block
    hooks = [model.blocks[0].register_forward_pre_hook(lambda module, args: stream.append(args[0]))]
    for block in model.blocks:
        hooks.append(block.register_forward_hook(lambda module, args, out: stream.append(out)))
    try:
        model(input_ids)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack([model.lm_head(model.ln_f(x)) for x in stream])
