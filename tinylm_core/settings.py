# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "setting",
    "field_type",
    "check_settings",
    "Settings",
    "check_positive",
    "TrainingConfig",
    "RECIPES",
    "TrainRun",
]


# cell 91
import math
import numbers
import types
from dataclasses import dataclass, field, fields

from tinylm_core.model_config import PRESETS


def setting(default, help, **extra):
    """A dataclass field with a help text (and e.g. `choices`): what the command line shows."""
    return field(default=default, metadata={"help": help, **extra})


def field_type(f):
    """(type, optional) of a dataclass field annotated `int`, `float | None`, `str`, `bool`..."""
    if isinstance(f.type, types.UnionType) and type(None) in f.type.__args__:
        (kind,) = [t for t in f.type.__args__ if t is not type(None)]
        return kind, True
    return f.type, False


# cell 92
def check_settings(config):
    """Raise TypeError/ValueError unless each field holds its annotated type (None only where
    `| None`), each float is finite and each field with `choices` holds one of them."""
    name = type(config).__name__
    for f in fields(config):
        value, (kind, optional) = getattr(config, f.name), field_type(f)
        if value is None and optional:
            continue
        abstract = {int: numbers.Integral, float: numbers.Real}.get(kind, kind)
        if not isinstance(value, abstract) or (isinstance(value, bool) and kind is not bool):
            raise TypeError(f"{name}.{f.name} must be {kind.__name__}, got {value!r}")
        if kind in (int, float):
            object.__setattr__(config, f.name, kind(value))  # numpy scalars become plain numbers
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{name}.{f.name} must be a finite number, got {value}")
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ValueError(f"{name}.{f.name} must be one of {list(choices)}, got {value!r}")


# cell 94
class Settings:
    """Base of the settings dataclasses: types and finiteness first, then the class's `validate`."""

    def __post_init__(self):
        check_settings(self)
        self.validate()

    def validate(self):
        """Range checks of the subclass; each message names the field and the fix."""


def check_positive(config, *names):
    """ValueError unless each named field is > 0 (None passes: check_settings allowed it)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ValueError(f"{type(config).__name__}.{name} must be positive, got {value}")


# cell 96
@dataclass
class TrainingConfig(Settings):
    """Every hyperparameter of a training run, with its default. Trainer(..., name=value)
    overrides a field; `python -m tinylm_core train` derives a flag from each one."""

    learning_rate: float = setting(1e-3, "peak learning rate, reached at the end of warmup")
    min_lr: float | None = setting(
        None, "learning rate at the end of the cosine decay (None: lr / 10)"
    )
    warmup_steps: int | None = setting(None, "linear warmup steps (None: 5% of the run)")
    weight_decay: float = setting(0.1, "AdamW weight decay, on matrices only")
    beta1: float = setting(0.9, "AdamW's momentum coefficient")
    beta2: float = setting(0.95, "AdamW's coefficient for the average of squared gradients")
    max_grad_norm: float | None = setting(1.0, "clip the gradient norm to this (None: no clipping)")
    grad_accum_steps: int = setting(1, "micro-batches per optimizer step")
    eval_interval: int | None = setting(250, "steps between evaluations (None: only at the end)")
    eval_batches: int | None = setting(None, "validation batches per evaluation (None: all)")
    checkpoint_interval: int | None = setting(500, "steps between checkpoints (None: at the end)")
    time_budget: float | None = setting(
        None,
        "seconds of training (evaluations not counted) after which the run ends, even before "
        "max_steps; the learning rate then follows the clock (lesson 11)",
    )
    log_interval: int = setting(10, "steps between metrics records")
    seed: int = setting(1337, "random seed")
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps ...")
    precision: str = setting(
        "auto",
        "auto: bf16 autocast on GPUs that have it, else fp32",
        choices=("auto", "fp32", "bf16"),
    )
    compile: bool = setting(False, "torch.compile the model (pays off on long GPU runs)")
    progress: bool = setting(True, "show progress (a live bar in a terminal)")

    # cell 97
    def validate(self):
        """The ranges (Settings checked types and finiteness); each message names the fix."""
        check_positive(self, "learning_rate", "max_grad_norm", "grad_accum_steps", "log_interval")
        check_positive(self, "eval_interval", "eval_batches", "checkpoint_interval", "time_budget")
        for name in ("min_lr", "warmup_steps", "weight_decay"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"TrainingConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(
                    f"TrainingConfig.{name} must be in [0, 1), got {getattr(self, name)}"
                )
        if self.min_lr is not None and self.min_lr > self.learning_rate:
            raise ValueError(
                f"TrainingConfig.min_lr ({self.min_lr}) is above learning_rate ({self.learning_rate}); "
                "lower min_lr or raise learning_rate"
            )


# cell 146
# nanoGPT's CPU recipe for character-level Tiny Shakespeare (the README of karpathy/nanoGPT), with
# its learned positions: the baseline that bench/train_speed.py compares against.
_NANOGPT_CPU = {
    "model": dict(d_model=128, num_layers=4, num_heads=4, d_ff=512, dropout=0.0, bias=False),
    "block_size": 64,
    "batch_size": 12,
    "max_steps": 2000,
    "training": {"learning_rate": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "beta2": 0.99},
}
_NANOGPT_CPU["model"]["positional_encoding"] = "learned"
RECIPES = {
    "nanogpt-cpu": _NANOGPT_CPU,
    # The recommended character-level recipe for a CPU: the same small model with rotary positions
    # (which learn far faster here than added ones), a larger batch and a higher learning rate.
    # 2,000 steps take about two minutes on 2 cores. Measured figures: bench/train_speed.py.
    "shakespeare-char": {
        **_NANOGPT_CPU,
        "model": {**_NANOGPT_CPU["model"], "positional_encoding": "rope"},
        "batch_size": 16,
        "training": {**_NANOGPT_CPU["training"], "learning_rate": 3e-3, "warmup_steps": 50},
    },
}
# Lesson 11's 5-minute speedrun: the best val loss in 5 minutes of training on 2 CPU cores. The
# learning rate follows the clock, so max_steps is only a cap. How it was found: lesson 11.
RECIPES["speedrun"] = {
    **RECIPES["shakespeare-char"],
    "max_steps": 1_000_000,
    "training": {
        **RECIPES["shakespeare-char"]["training"],
        "learning_rate": 5e-3,
        "min_lr": 0.0,
        "time_budget": 300.0,
        "eval_interval": None,
        "checkpoint_interval": None,
    },
}


# cell 153
@dataclass
class TrainRun(Settings):
    """Settings of `python -m tinylm_core train` that are not the Trainer's (those: TrainingConfig)."""

    corpus: str = setting(
        "tinyshakespeare", "'tinyshakespeare' (ships with the course) or a UTF-8 text file"
    )
    tokenizer: str = setting(
        "char",
        "char: one token per character of the corpus; bpe: GPT-2's 50,257 tokens",
        choices=("char", "bpe"),
    )
    recipe: str = setting(
        "shakespeare-char",
        "a tested model and its settings (listed below), or none",
        choices=(*RECIPES, "none"),
    )
    preset: str = setting(
        "small",
        "model size from ModelConfig presets; given alone, it replaces the default recipe",
        choices=tuple(PRESETS),
    )
    out: str = setting(
        "runs/train", "output directory: checkpoint.pt, metrics.jsonl, config.json, loss.png"
    )
    max_steps: int = setting(1000, "optimizer steps to train for")
    batch_size: int = setting(32, "sequences per micro-batch, per process")
    block_size: int = setting(128, "context length in tokens; also the model's max_seq_len")
    val_fraction: float = setting(0.1, "the last part of the corpus, held out for validation")
    dropout: float | None = setting(
        None, "the model's dropout rate (None: the recipe's or preset's)"
    )
    positional_encoding: str | None = setting(
        None,
        "sinusoidal, learned or rope (None: the recipe's or preset's)",
        choices=(None, "sinusoidal", "learned", "rope"),
    )
    resume: bool = setting(False, "continue the run in --out from its checkpoint (same settings)")
    overwrite: bool = setting(False, "start over in an --out that already holds a run")

    # cell 154
    def validate(self):
        check_positive(self, "max_steps", "batch_size", "block_size")
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                f"TrainRun.val_fraction must be between 0 and 1, got {self.val_fraction}"
            )
        if self.resume and self.overwrite:
            raise ValueError("--resume continues a run and --overwrite replaces it: pass only one")
