# This file is generated from notebooks/12_fast_inference.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "model_bytes",
    "weight_bytes_per_token",
    "kv_bytes_per_position",
    "measure_bandwidth",
    "roofline",
]


# cell 12
import math
import time

import torch
import torch.nn as nn


def model_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, a shared (tied) tensor counted once: what its
    state dict takes on disk."""
    tensors = {t.data_ptr(): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _table(module) -> torch.Tensor:
    """The weight matrix of an nn.Linear / nn.Embedding, or of lesson 12's int8 versions."""
    return module.weight_int8 if hasattr(module, "weight_int8") else module.weight


def weight_bytes_per_token(model: nn.Module) -> int:
    """Bytes of weights one decoding step reads: all of them, except the lookup tables of which
    it reads a single row (an untied token embedding, learned positions, rotary tables)."""
    lookups = [model.position_encoding, model.rotary]
    if _table(model.token_embedding) is not _table(model.lm_head):
        lookups.append(model.token_embedding)  # untied: only one row of it is read
    skipped = sum(model_bytes(m) for m in lookups if m is not None)
    return model_bytes(model) - skipped


# cell 13
def kv_bytes_per_position(model: nn.Module, int8: bool = False) -> int:
    """Bytes the KV cache holds (and each later step reads) per position: keys and values of every
    layer; int8 stores one byte per value plus one fp32 scale per head."""
    config = model.config
    heads = config.kv_heads  # num_kv_heads with grouped-query attention, else num_heads
    head_dim = config.d_model // config.num_heads
    per_head = head_dim + 4 if int8 else 4 * head_dim
    return 2 * config.num_layers * heads * per_head


def measure_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Bytes per second this process reads from memory (with torch's threads): the best of
    `repeats` sums over a buffer far larger than any cache."""
    x = torch.ones(megabytes * 2**20 // 4)
    best = math.inf
    for _ in range(repeats + 1):  # the first pass also faults the pages in
        start = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best


def roofline(model: nn.Module, bandwidth: float, context: int, int8_kv: bool = False) -> float:
    """The most tokens per second decoding can reach if it only had to read the weights and the
    KV cache of `context` positions at `bandwidth` bytes/s: everything else for free."""
    read = weight_bytes_per_token(model) + context * kv_bytes_per_position(model, int8_kv)
    return bandwidth / read
