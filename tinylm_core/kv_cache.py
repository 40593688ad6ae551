# This file is generated from notebooks/05_transformer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["LayerKVCache", "KVCache"]


# cell 37
import torch


class LayerKVCache:
    """Keys and values of one attention layer, in buffers allocated once: (B, H, max_len, head_dim)."""

    def __init__(self, batch_size, num_heads, max_len, head_dim, device=None, dtype=None):
        shape = (batch_size, num_heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.seq_len = 0  # positions stored so far

    def update(self, k: torch.Tensor, v: torch.Tensor):
        """Append k, v (B, H, T_new, head_dim); return all stored keys and values (views, no copy)."""
        start, end = self.seq_len, self.seq_len + k.size(2)
        if end > self.k.size(2):
            raise ValueError(
                f"KV cache is full: {start} + {k.size(2)} positions > max_len={self.k.size(2)}; "
                "make a bigger cache with model.new_kv_cache(batch_size, max_len=...) or crop() it"
            )
        # narrow() makes a view in one cheap call; decoding does this 2 x num_layers times a token
        self.k.narrow(2, start, end - start).copy_(k)
        self.v.narrow(2, start, end - start).copy_(v)
        self.seq_len = end
        return self.k.narrow(2, 0, end), self.v.narrow(2, 0, end)  # (B, H, end, head_dim) each


# cell 40
class KVCache:
    """A `LayerKVCache` per layer, so decoding feeds only the new tokens through the model."""

    def __init__(
        self, num_layers, batch_size, num_heads, max_len, head_dim, device=None, dtype=None
    ):
        self.layers = [
            LayerKVCache(batch_size, num_heads, max_len, head_dim, device, dtype)
            for _ in range(num_layers)
        ]
        self.max_len = max_len

    @property
    def seq_len(self) -> int:
        return self.layers[0].seq_len

    @property
    def batch_size(self) -> int:
        return self.layers[0].k.size(0)

    def crop(self, length: int) -> None:
        """Forget every position from `length` on (later writes overwrite them)."""
        if not 0 <= length <= self.seq_len:
            raise ValueError(
                f"crop length must be between 0 and seq_len={self.seq_len}, got {length}"
            )
        for layer in self.layers:
            layer.seq_len = length

    def reset(self) -> None:
        self.crop(0)
