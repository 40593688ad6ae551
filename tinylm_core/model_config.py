# This file is generated from notebooks/05_transformer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["SIZE_LIMITS", "MAX_ALLOCATION", "ModelConfig", "PRESETS"]


# cell 8
import math
from dataclasses import dataclass, fields

# Far above anything this course trains (GPT-2 XL: V = 50,257, C = 1,600, 48 layers, 1,024
# positions), yet small enough that a config which passes cannot ask for terabytes.
SIZE_LIMITS = dict(
    vocab_size=1_048_576, d_model=16_384, num_layers=256, num_heads=256, d_ff=65_536,
    max_seq_len=131_072,
)  # fmt: skip
MAX_ALLOCATION = 10_000_000_000  # numbers a model may allocate: 40 GB in float32


@dataclass
class ModelConfig:
    """Hyper-parameters of a `TransformerLM`. The defaults are the course's "small" preset.

    >>> ModelConfig(vocab_size=65, d_model=64).num_heads
    4
    """

    vocab_size: int
    d_model: int = 256  # width of the residual stream, C
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 1024  # hidden width of the feed-forward network, usually 4 * d_model
    max_seq_len: int = 128  # longest input (cached positions included) the model accepts
    dropout: float = 0.1
    positional_encoding: str = "sinusoidal"  # "sinusoidal" | "learned" | "rope"
    bias: bool = True  # biases in the Linear layers and LayerNorms, as GPT-2 has
    activation: str = "gelu"  # "gelu" | "gelu_tanh" (GPT-2's approximation) | "relu"
    tie_weights: bool = True  # the LM head reuses the token embedding matrix
    layer_norm_eps: float = 1e-5  # the epsilon of every norm, LayerNorm or RMSNorm
    # Switches of later models (Llama, Qwen, ...), explained in lesson 11; defaults are GPT-2's.
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    mlp: str = "standard"  # "standard": proj(act(fc(x))) | "gated": proj(act(gate(x)) * fc(x))
    num_kv_heads: int | None = None  # heads of k and v; None: num_heads; 1: multi-query
    qk_norm: bool = False  # an RMSNorm on each head's queries and keys
    rope_theta: float = 10000.0  # the base of RoPE's angles (Llama 3: 500,000)

    @property
    def kv_heads(self) -> int:
        """How many heads k and v have (num_kv_heads, or num_heads when it is None)."""
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    def __post_init__(self):
        self._check_types()
        self._check_sizes()
        self._check_choices()

    # cell 10
    def _check_types(self):
        for name in SIZE_LIMITS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"ModelConfig.{name} must be an int, got {value!r}")
        kv = self.num_kv_heads
        if kv is not None and (isinstance(kv, bool) or not isinstance(kv, int)):
            raise TypeError(f"ModelConfig.num_kv_heads must be an int or None, got {kv!r}")
        for name in ("bias", "tie_weights", "qk_norm"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"ModelConfig.{name} must be True or False, got {value!r}")
        for name in ("dropout", "layer_norm_eps", "rope_theta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"ModelConfig.{name} must be a number, got {value!r}")

    # cell 12
    def _check_sizes(self):
        for name, limit in SIZE_LIMITS.items():
            value = getattr(self, name)
            if not 1 <= value <= limit:
                raise ValueError(
                    f"ModelConfig.{name} must be between 1 and {limit:,}, got {value:,}; "
                    f"the limit (SIZE_LIMITS) keeps a bad config from allocating huge tensors"
                )
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}; "
                "pick a num_heads that divides d_model"
            )
        if not 1 <= self.kv_heads <= self.num_heads or self.num_heads % self.kv_heads:
            raise ValueError(
                f"num_kv_heads={self.kv_heads} must divide num_heads={self.num_heads} (each k/v head "
                "serves a group of query heads); use a divisor, 1 (multi-query) or None (one per head)"
            )
        if self.allocation_estimate() > MAX_ALLOCATION:
            raise ValueError(
                f"this config would allocate about {self.allocation_estimate():,} numbers, more than "
                f"MAX_ALLOCATION = {MAX_ALLOCATION:,}; choose smaller sizes"
            )

    # cell 14
    def allocation_estimate(self) -> int:
        """Numbers in the weight matrices and the position table (biases and LayerNorms aside)."""
        C, V, L = self.d_model, self.vocab_size, self.num_layers
        embeddings = V * C * (1 if self.tie_weights else 2)  # token table, and an untied LM head
        kv_width = self.kv_heads * (C // self.num_heads)  # C, unless k and v have fewer heads
        attention = 2 * C * C + 2 * C * kv_width  # q and proj, k and v
        mlp = (3 if self.mlp == "gated" else 2) * C * self.d_ff  # fc and proj (and gate)
        blocks = L * (attention + mlp)
        return embeddings + blocks + self.max_seq_len * C  # one (max_seq_len, C) position table

    # cell 16
    def _check_choices(self):
        if not (math.isfinite(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be a probability in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.layer_norm_eps) and 0.0 < self.layer_norm_eps < 1.0):
            raise ValueError(
                f"layer_norm_eps must be a small positive number (GPT-2: 1e-5), got {self.layer_norm_eps}"
            )
        if self.positional_encoding not in ("sinusoidal", "learned", "rope"):
            raise ValueError(
                f"positional_encoding={self.positional_encoding!r} is unknown; "
                "use 'sinusoidal', 'learned' or 'rope'"
            )
        if self.positional_encoding == "rope" and (self.d_model // self.num_heads) % 2:
            raise ValueError(
                f"rope rotates pairs of dimensions, so head_dim = d_model / num_heads must be even "
                f"(got {self.d_model // self.num_heads}); change d_model or num_heads"
            )
        if self.activation not in ("gelu", "gelu_tanh", "relu", "silu"):
            raise ValueError(
                f"activation={self.activation!r} is unknown; use 'gelu', 'gelu_tanh', 'relu' or 'silu'"
            )
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm={self.norm!r} is unknown; use 'layernorm' or 'rmsnorm'")
        if self.mlp not in ("standard", "gated"):
            swiglu = (
                " (SwiGLU is mlp='gated' with activation='silu')" if self.mlp == "swiglu" else ""
            )
            raise ValueError(f"mlp={self.mlp!r} is unknown; use 'standard' or 'gated'{swiglu}")
        if not (math.isfinite(self.rope_theta) and self.rope_theta > 1.0):
            raise ValueError(
                f"rope_theta must be a finite number above 1 (RoPE's paper: 10,000), got {self.rope_theta}"
            )

    # cell 18
    @classmethod
    def from_preset(cls, name: str, vocab_size: int, **overrides) -> "ModelConfig":
        """A named size from `PRESETS`, e.g. `ModelConfig.from_preset("small", 65, dropout=0.0)`."""
        if name not in PRESETS:  # PRESETS is defined below (notebook 05, section 8)
            raise ValueError(f"unknown preset {name!r}; choose one of {list(PRESETS)}")
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown ModelConfig fields {unknown}; valid ones are {[f.name for f in fields(cls)]}"
            )
        return cls(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


# cell 83
# The course's three target sizes. How many parameters they have depends on the vocabulary: see
# the table in notebook 05 (small ~5M with a BPE vocabulary of about 7k tokens, medium ~25M with
# about 12k; large is GPT-2 small's body, 85M parameters without the embeddings).
PRESETS = {
    "small": dict(d_model=256, num_layers=4, num_heads=4, d_ff=1024, max_seq_len=128),
    "medium": dict(d_model=512, num_layers=6, num_heads=8, d_ff=2048, max_seq_len=512),
    "large": dict(d_model=768, num_layers=12, num_heads=12, d_ff=3072, max_seq_len=1024),
    # small, with Llama's choices (lesson 11); d_ff = 2/3 * 4 * 256 = 682.7, rounded up to 704
    "llama": dict(
        d_model=256, num_layers=4, num_heads=4, d_ff=704, max_seq_len=128,
        positional_encoding="rope", norm="rmsnorm", mlp="gated", activation="silu",
        num_kv_heads=2, bias=False,
    ),
}  # fmt: skip
