# This file is generated from notebooks/12_fast_inference.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "quantize_absmax",
    "dequantize",
    "Int8Linear",
    "Int8Embedding",
    "QuantizedLM",
    "quantize_int8",
    "Int8LayerKVCache",
    "Int8KVCache",
]


# cell 20
import copy
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from tinylm_core.kv_cache import KVCache
from tinylm_core.model import TransformerLM


# cell 21
def quantize_absmax(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantization along the last axis: x (..., n) -> (q int8 (..., n), scale
    (..., 1)) with x ~ q * scale. Each row's largest |x| becomes +-127, so every value moves by at
    most half a step (scale / 2). A row of zeros gets scale 1 (any scale represents it)."""
    absmax = x.abs().amax(dim=-1, keepdim=True)  # (..., 1)
    scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))
    q = torch.round(x / scale).clamp(-127, 127).to(torch.int8)  # (..., n)
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float values int8 `q` stands for: q * scale, in the scale's dtype."""
    return q.to(scale.dtype) * scale


# cell 24
class Int8Linear(nn.Module):
    """An nn.Linear whose weight is stored as int8 with one fp32 scale per output channel (row).

    kernel="reference": y = (x @ q^T) * scale + b, written out in PyTorch (dequantizes on the fly:
    exact to float rounding, but no faster). kernel="fbgemm": the same int8 weights, packed once
    for PyTorch's quantized CPU kernel, which also rounds x to 8 bits per call (dynamic
    quantization) and reads a quarter of the bytes.
    """

    def __init__(self, linear: nn.Linear, kernel: str = "fbgemm"):
        super().__init__()
        if kernel not in ("fbgemm", "reference"):
            raise ValueError(f'kernel must be "fbgemm" or "reference", got {kernel!r}')
        self.in_features, self.out_features = linear.in_features, linear.out_features
        q, scale = quantize_absmax(linear.weight.detach().float())  # (out, in), (out, 1)
        self.register_buffer("weight_int8", q)
        self.register_buffer("scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)
        self.kernel = kernel
        self._packed = self._pack() if kernel == "fbgemm" else None

    # cell 25
    def _pack(self):
        """Our int8 weights and scales, handed to PyTorch's quantized linear kernel as they are."""
        with warnings.catch_warnings():  # torch.ao's quantized tensors print deprecation warnings
            warnings.simplefilter("ignore")
            zero_points = torch.zeros(self.out_features, dtype=torch.long)
            weight = torch._make_per_channel_quantized_tensor(
                self.weight_int8.cpu(), self.scale.flatten().double().cpu(), zero_points, 0
            )  # a qint8 tensor holding exactly weight_int8, with our per-row scales
            bias = None if self.bias is None else self.bias.cpu()
            return torch.ops.quantized.linear_prepack(weight, bias)

    # cell 26
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        if self._packed is not None and x.device.type == "cpu" and x.dtype == torch.float32:
            return torch.ops.quantized.linear_dynamic(
                x, self._packed, True
            )  # reduce_range: fbgemm's
        y = F.linear(x, self.weight_int8.to(x.dtype)) * self.scale.to(x.dtype).flatten()
        return y if self.bias is None else y + self.bias.to(x.dtype)

    # cell 26
    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


# cell 31
class Int8Embedding(nn.Module):
    """A lookup table of int8 rows with one scale per row; with a tied head it shares the head's
    int8 weight and scales, so the (V, C) table is stored once, as in the fp32 model."""

    def __init__(self, weight_int8: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("weight_int8", weight_int8)  # (V, C)
        self.register_buffer("scale", scale)  # (V, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, C)
        return dequantize(F.embedding(ids, self.weight_int8), F.embedding(ids, self.scale))


# cell 32
class QuantizedLM(TransformerLM):
    """What `quantize_int8` returns: a TransformerLM whose Linear layers (and embedding) hold
    int8 weights. Only `new_kv_cache` differs: the cache stays fp32 (or int8 with int8_kv_cache)."""

    int8_kv_cache = False

    def new_kv_cache(self, batch_size, max_len=None, device=None, dtype=None) -> KVCache:
        config, cache = self.config, Int8KVCache if self.int8_kv_cache else KVCache
        max_len = config.max_seq_len if max_len is None else max_len
        if not 1 <= max_len <= config.max_seq_len:
            raise ValueError(f"max_len must be between 1 and max_seq_len={config.max_seq_len}")
        heads = config.kv_heads  # fewer than num_heads with grouped-query attention
        device = self.lm_head.scale.device if device is None else device
        return cache(
            config.num_layers, batch_size, heads, max_len, config.d_model // config.num_heads,
            device=device, dtype=torch.float32 if dtype is None else dtype,
        )  # fmt: skip


# cell 33
def quantize_int8(
    model: TransformerLM, kernel: str = "fbgemm", embedding: bool = True, kv_cache: bool = False
) -> QuantizedLM:
    """A copy of `model` with every nn.Linear (the LM head too) an Int8Linear and, with
    `embedding`, the token embedding int8 as well (sharing the head's int8 table when tied).
    kv_cache=True: generation stores keys and values in int8 too. The Generator uses it as is."""
    if not isinstance(model, TransformerLM):
        raise TypeError(f"quantize_int8 takes a TransformerLM, got {type(model).__name__}")
    if isinstance(model, QuantizedLM):
        raise ValueError("this model is quantized already: quantize the fp32 model")
    q = copy.deepcopy(model).float().cpu().eval()
    tied = q.lm_head.weight is q.token_embedding.weight
    for parent in list(q.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):  # our fast Linear (lesson 07) is one too
                setattr(parent, name, Int8Linear(child, kernel))
    if embedding:
        head = q.lm_head
        table = (
            (head.weight_int8, head.scale)
            if tied
            else quantize_absmax(q.token_embedding.weight.detach())
        )
        q.token_embedding = Int8Embedding(*table)
    q.__class__ = QuantizedLM
    q.int8_kv_cache = kv_cache
    return q


# cell 41
class Int8LayerKVCache:
    """Lesson 05's LayerKVCache interface (`seq_len`, `update(k, v)`), storing int8 keys and
    values with one scale per head and position: (B, H, max_len, head_dim) int8 + (B, H, max_len, 1)."""

    def __init__(self, batch_size, num_heads, max_len, head_dim, device=None, dtype=None):
        shape, dtype = (batch_size, num_heads, max_len, head_dim), dtype or torch.float32
        self.k = torch.zeros(shape, device=device, dtype=torch.int8)
        self.v = torch.zeros(shape, device=device, dtype=torch.int8)
        self.k_scale = torch.ones(*shape[:3], 1, device=device, dtype=dtype)
        self.v_scale = torch.ones(*shape[:3], 1, device=device, dtype=dtype)
        self.seq_len = 0

    def update(self, k: torch.Tensor, v: torch.Tensor):
        """Append k, v (B, H, T_new, head_dim), quantized; return all stored keys and values,
        dequantized (B, H, seq_len, head_dim)."""
        start, end = self.seq_len, self.seq_len + k.size(2)
        if end > self.k.size(2):
            raise ValueError(f"KV cache is full: {end} positions > max_len={self.k.size(2)}")
        for store, scales, new in ((self.k, self.k_scale, k), (self.v, self.v_scale, v)):
            q, scale = quantize_absmax(new)  # one scale per head and position
            store[:, :, start:end], scales[:, :, start:end] = q, scale
        self.seq_len = end
        return (
            dequantize(self.k[:, :, :end], self.k_scale[:, :, :end]),
            dequantize(self.v[:, :, :end], self.v_scale[:, :, :end]),
        )


# cell 42
class Int8KVCache(KVCache):
    """Lesson 05's KVCache (crop, reset, seq_len) with an Int8LayerKVCache per layer."""

    def __init__(
        self, num_layers, batch_size, num_heads, max_len, head_dim, device=None, dtype=None
    ):
        self.layers = [
            Int8LayerKVCache(batch_size, num_heads, max_len, head_dim, device, dtype)
            for _ in range(num_layers)
        ]
        self.max_len = max_len
