# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["ContextWindow"]


# cell 36
import torch


# cell 37
class ContextWindow:
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
