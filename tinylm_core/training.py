# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "TokenWindowDataset",
    "TextDataset",
    "collate_fn",
    "configure_optimizer",
    "get_cosine_schedule_with_warmup",
    "CHECKPOINT_NAME",
    "tokenizer_from_dict",
    "save_checkpoint",
    "load_checkpoint",
    "TrainingConfig",
    "resolve_device",
    "read_metrics",
    "plot_metrics",
    "Trainer",
    "RECIPES",
    "add_train_arguments",
    "run_train",
]


# cell 5
import itertools
import json
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from tinylm_core.bpe_tokenizer import BPETokenizer
from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.data import load_corpus
from tinylm_core.model import ModelConfig, TransformerLM


# cell 9
class TokenWindowDataset(Dataset):
    """Windows of `block_size` + 1 consecutive tokens cut from one long token stream.

    Window i starts at token i * stride: stride 1 gives every start position (for training, where a
    shuffled sampler turns them into random windows), stride = block_size gives non-overlapping
    windows that cover each token once (for evaluation). Items are already aligned:
    labels[t] = input_ids[t + 1].
    """

    def __init__(self, tokens, block_size, stride=1):
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be one flat stream, got shape {tuple(tokens.shape)}")
        if block_size < 1 or stride < 1:
            raise ValueError(f"block_size and stride must be >= 1, got {block_size} and {stride}")
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"the stream has {len(tokens)} tokens, too few for one window of block_size "
                f"{block_size} (+1 target); use a smaller block_size or more text"
            )
        self.tokens, self.block_size, self.stride = tokens, block_size, stride

    def __len__(self):
        return (len(self.tokens) - self.block_size - 1) // self.stride + 1

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        start = index * self.stride
        chunk = self.tokens[start : start + self.block_size + 1]
        return {"input_ids": chunk[:-1], "labels": chunk[1:]}  # (T,), (T,)

    @classmethod
    def train_val(cls, tokens, block_size, val_fraction=0.1):
        """Split by position: the first part trains (every window), the last part validates
        (non-overlapping windows). No window crosses the split, so no val token leaks into training."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        split = int(len(tokens) * (1.0 - val_fraction))
        train = cls(tokens[:split], block_size, stride=1)
        val = cls(tokens[split:], block_size, stride=block_size)
        return train, val


# cell 14
class TextDataset(Dataset):
    """A list of documents, each encoded once and cut to at most `max_length` + 1 tokens.

    One token more than the model sees, because n tokens give n - 1 (input, next token) pairs:
    `collate_fn` shifts them into `input_ids` and `labels`. The tokenizer's end-of-text token
    (if it has one) closes every document, so the model learns where a document stops.
    """

    def __init__(self, texts, tokenizer, max_length=128):
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string; wrap it: [text]")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.max_length = max_length
        self.examples = []
        for text in texts:
            ids = (tokenizer.encode(text) + eos)[: max_length + 1]
            if len(ids) >= 2:  # a single token has no next token to predict
                self.examples.append(torch.tensor(ids, dtype=torch.long))
        if not self.examples:
            raise ValueError("no text gave at least 2 tokens; pass non-empty texts")

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        return {"input_ids": self.examples[index]}


def collate_fn(batch, pad_token_id=0):
    """Pad a list of `TextDataset` items into one batch of aligned inputs and targets.

    labels[:, t] is the token that follows input_ids[:, t] (already shifted, as the model's
    `targets` expect) and -100 on padding, which the loss ignores. Padding goes on the right, where
    causal attention keeps real tokens from ever seeing it; attention_mask marks it anyway.
    """
    seqs = [item["input_ids"] for item in batch]
    B, T = len(seqs), max(len(s) for s in seqs) - 1
    input_ids = torch.full((B, T), pad_token_id, dtype=torch.long)  # (B, T)
    labels = torch.full((B, T), -100, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((B, T), dtype=torch.long)  # (B, T)
    for i, seq in enumerate(seqs):
        n = len(seq) - 1
        input_ids[i, :n] = seq[:-1]
        labels[i, :n] = seq[1:]
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# cell 19
def configure_optimizer(model, learning_rate, weight_decay=0.1, betas=(0.9, 0.95)):
    """AdamW that decays only matrices (linear weights, embeddings), never biases or norm gains.

    Weight decay pulls weights towards zero; on a gain or a bias that only shifts or rescales a
    feature it fights the model without regularising anything. On CPU and CUDA the fused kernel
    updates all tensors in one pass: several times faster than the default for a small model.
    """
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)


# cell 22
def get_cosine_schedule_with_warmup(
    optimizer, num_warmup_steps, num_training_steps, min_lr_ratio=0.0, last_epoch=-1
):
    """Linear warmup to the optimizer's lr, then cosine decay to min_lr_ratio * lr.

    The multiplier at step s (0-based) is (s + 1) / (warmup + 1) during warmup (so the first step
    already learns), then follows half a cosine from 1 down to min_lr_ratio at num_training_steps,
    and stays there after.
    """
    if num_training_steps < 1:
        raise ValueError(f"num_training_steps must be >= 1, got {num_training_steps}")
    if not 0 <= num_warmup_steps <= num_training_steps:
        raise ValueError(
            f"num_warmup_steps must be between 0 and num_training_steps ({num_training_steps}), "
            f"got {num_warmup_steps}"
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be between 0 and 1, got {min_lr_ratio}")

    def lr_lambda(step):
        if step < num_warmup_steps:
            return (step + 1) / (num_warmup_steps + 1)
        progress = min(
            1.0, (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        )
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda, last_epoch)


# cell 27
CHECKPOINT_NAME = "checkpoint.pt"


def tokenizer_from_dict(d):
    """Rebuild a tokenizer from its `to_dict()` (the JSON a checkpoint stores)."""
    kinds = {"char": CharTokenizer, "bpe": BPETokenizer}
    kind = d.get("type") if isinstance(d, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown tokenizer type {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind].from_dict(d)


def _rng_state():
    """Every random number generator training touches, as tensors and plain Python values only."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state):
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(model):
    """The plain module under DistributedDataParallel and/or torch.compile wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile keeps the original here
    if isinstance(model, DistributedDataParallel):
        model = model.module
    return model


def save_checkpoint(path, model, tokenizer=None, **state):
    """Write model weights, its config, the tokenizer (as JSON) and any extra `state` atomically.

    Only tensors and plain containers go in, so `torch.load(weights_only=True)` can read it back
    without unpickling arbitrary objects. The file is written next to its final name and renamed
    over it: a crash mid-write leaves the previous checkpoint intact.
    """
    model = _unwrap(model)
    checkpoint = {
        "format": "tinylm-checkpoint",
        "version": 1,
        "model": model.state_dict(),
        "model_config": asdict(model.config),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        **state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them "the" file
        os.replace(tmp, path)  # atomic on POSIX and Windows
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _checkpoint_path(path_or_dir):
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; pass a checkpoint file or a training output_dir holding "
            f"{CHECKPOINT_NAME}"
        )
    return path


def load_checkpoint(path_or_dir, device="cpu"):
    """Load a checkpoint written by `save_checkpoint` -> (model in eval mode, tokenizer, info).

    `info` holds everything else that was saved (step, metrics, training config, ...) plus `path`.
    """
    path = _checkpoint_path(path_or_dir)
    fix = "re-train or use another checkpoint"
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # damage surfaces as RuntimeError, UnpicklingError, EOFError, ...
        msg = f"{path} is not a tinylm checkpoint (truncated or corrupted: {e}); {fix}"
        raise ValueError(msg) from e
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != "tinylm-checkpoint":
        raise ValueError(f"{path} is not a tinylm checkpoint (no 'format' marker); {fix}")
    try:
        model = TransformerLM.from_config(ModelConfig(**checkpoint["model_config"]))
        model.load_state_dict(checkpoint["model"])
        d = checkpoint["tokenizer"]
        tokenizer = tokenizer_from_dict(d) if d is not None else None
    except (KeyError, TypeError, RuntimeError, ValueError) as e:  # a missing key, wrong shapes...
        msg = f"{path} is a damaged tinylm checkpoint ({type(e).__name__}: {e}); {fix}"
        raise ValueError(msg) from e
    model.to(device).eval()
    skip = {"format", "version", "model", "tokenizer", "optimizer", "scheduler", "rng"}
    info = {k: v for k, v in checkpoint.items() if k not in skip}
    info["path"] = str(path)
    return model, tokenizer, info


# cell 32
@dataclass
class TrainingConfig:
    learning_rate: float = 3e-4
    min_lr: float | None = None  # end of the cosine decay; None: learning_rate / 10
    warmup_steps: int = 100
    weight_decay: float = 0.1  # matrices only, see configure_optimizer
    beta1: float = 0.9
    beta2: float = 0.95
    max_grad_norm: float | None = 1.0  # None: no clipping (the norm is still logged)
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    eval_interval: int | None = None  # steps between evaluations; None: only at the end
    eval_batches: int | None = None  # eval batches per evaluation; None: the whole eval loader
    checkpoint_interval: int | None = None  # steps between checkpoints; None: only at the end
    log_interval: int = 10  # steps between metrics records and progress-bar updates
    seed: int = 1337
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    precision: str = (
        "auto"  # "auto": bf16 autocast on GPUs that have it, else fp32; or "fp32"/"bf16"
    )
    compile: bool = False  # torch.compile the model (pays off on long GPU runs)
    progress: bool = True  # tqdm bar with loss and tokens/s

    def __post_init__(self):
        positive = ["learning_rate", "grad_accum_steps", "log_interval"]
        positive += ["eval_interval", "eval_batches", "checkpoint_interval", "max_grad_norm"]
        for name in positive:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None where allowed), got {value}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps and weight_decay must be >= 0")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.learning_rate:
            raise ValueError(f"min_lr must be between 0 and learning_rate, got {self.min_lr}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")


def resolve_device(device="auto"):
    """'auto' -> the fastest device present: cuda, then mps (Apple GPUs), then cpu."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def read_metrics(path_or_dir):
    """The records a Trainer appended to metrics.jsonl, as a list of dicts."""
    path = Path(path_or_dir)
    path = path / "metrics.jsonl" if path.is_dir() else path
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_metrics(metrics):
    """Train/val loss, learning rate and gradient norm against step. `metrics` is a list of
    records (`trainer.history`) or a path to metrics.jsonl / its directory. Returns the figure."""
    import matplotlib.pyplot as plt

    records = metrics if isinstance(metrics, list) else read_metrics(metrics)
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_loss" in r]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    axes[0].plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
    axes[0].set(title="loss", xlabel="step")
    axes[0].legend()
    axes[1].plot([r["step"] for r in train], [r["lr"] for r in train])
    axes[1].set(title="learning rate", xlabel="step")
    axes[2].plot([r["step"] for r in train], [r["grad_norm"] for r in train])
    axes[2].set(title="gradient norm (before clipping)", xlabel="step", yscale="log")
    fig.tight_layout()
    return fig


def _progress_bar(**kwargs):
    """tqdm's notebook widget inside Jupyter when ipywidgets is installed, the text bar otherwise
    (tqdm.auto would warn when ipywidgets is missing)."""
    try:
        from IPython import get_ipython

        in_notebook = "IPKernelApp" in getattr(get_ipython(), "config", {})
        if in_notebook:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
            from tqdm.notebook import tqdm

            return tqdm(**kwargs)
    except ImportError:
        pass
    from tqdm.std import tqdm

    return tqdm(**kwargs)


class _ResumableSampler(DistributedSampler):
    """DistributedSampler (also used with one process) that can start part-way into an epoch.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches as an
    uninterrupted one, and every rank takes its own slice (rank, rank + world, ...) of it.
    """

    start = 0  # samples of this epoch (on this rank) already consumed

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self):
        return self.num_samples - self.start


# cell 33
class Trainer:
    """Train a TransformerLM: AdamW, warmup + cosine schedule, clipping, eval, checkpoints, DDP.

    Trainer(model=model, train_dataloader=loader, output_dir="runs/x").train(num_epochs=1) is the
    whole API; every hyperparameter is a TrainingConfig field and can be passed by keyword
    (Trainer(..., learning_rate=1e-3)). Batches are dicts with input_ids and labels (aligned
    targets, -100 = ignore) and optionally attention_mask, or (input_ids, labels) tuples.
    The Trainer owns the data order of a standard DataLoader (seeded per epoch, resumable, one
    shard per rank under torchrun); other iterables are used as they come.
    output_dir=None writes nothing (benchmarks).
    """

    def __init__(
        self,
        model,
        train_dataloader,
        eval_dataloader=None,
        output_dir="outputs",
        tokenizer=None,
        config=None,
        **overrides,
    ):
        self.config = cfg = replace(config or TrainingConfig(), **overrides)
        self._setup_distributed()
        self.device = resolve_device(cfg.device)
        if self.ddp and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        cuda_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda_bf16)
        self.autocast_dtype = torch.bfloat16 if bf16 else None
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.tokenizer = tokenizer
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed + self.rank)  # dropout masks differ per rank

        self.raw_model = model.to(self.device)
        self.optimizer = configure_optimizer(
            self.raw_model, cfg.learning_rate, cfg.weight_decay, (cfg.beta1, cfg.beta2)
        )
        self.model = self.raw_model
        if self.ddp:  # broadcasts rank 0's weights, then averages gradients in backward()
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.model = torch.compile(self.model)
        self.train_loader, self._train_sampler = self._shard(train_dataloader, train=True)
        self.eval_loader, _ = self._shard(eval_dataloader, train=False)
        self.scheduler = None  # built by train(), once the number of steps is known
        self.step, self.epoch, self._batches_in_epoch = 0, 0, 0
        self.history = []  # the records also written to output_dir/metrics.jsonl
        self._stop_requested = False

    def _setup_distributed(self):
        """Under torchrun (WORLD_SIZE > 1) join the process group; otherwise a single process."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.ddp = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.rank = dist.get_rank() if self.ddp else 0
        self.world_size = dist.get_world_size() if self.ddp else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.is_main = self.rank == 0  # only rank 0 logs and writes files

    def _shard(self, loader, train):
        """Rebuild a standard DataLoader on a _ResumableSampler; leave anything else as it is."""
        if (
            not isinstance(loader, DataLoader)
            or isinstance(loader.dataset, IterableDataset)
            or loader.batch_size is None
            or not isinstance(loader.sampler, RandomSampler | SequentialSampler)
        ):
            return loader, None
        sampler = _ResumableSampler(
            loader.dataset,
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=train and isinstance(loader.sampler, RandomSampler),
            seed=self.config.seed,
        )
        rebuilt = DataLoader(
            loader.dataset,
            batch_size=loader.batch_size,
            sampler=sampler,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            drop_last=loader.drop_last,
            # Its own generator: creating an iterator would otherwise draw from the global RNG
            # and shift the dropout masks of a resumed run.
            generator=torch.Generator().manual_seed(self.config.seed),
        )
        return rebuilt, sampler

    def _next_batches(self):
        """Micro-batches forever, epoch after epoch, starting where a resumed run left off."""
        while True:
            if self._train_sampler is not None:
                self._train_sampler.set_epoch(self.epoch)
                self._train_sampler.start = self._batches_in_epoch * self.train_loader.batch_size
                batches = iter(self.train_loader)
            else:
                batches = itertools.islice(self.train_loader, self._batches_in_epoch, None)
            for batch in batches:
                self._batches_in_epoch += 1
                yield batch
            self.epoch, self._batches_in_epoch = self.epoch + 1, 0

    def _forward(self, model, batch):
        """Mean cross-entropy of one batch and its number of target tokens."""
        if isinstance(batch, dict):
            input_ids, labels = batch["input_ids"], batch["labels"]
            mask = batch.get("attention_mask")
        else:
            (input_ids, labels), mask = batch, None
        input_ids = input_ids.to(self.device, non_blocking=True)  # (B, T)
        labels = labels.to(self.device, non_blocking=True)  # (B, T)
        mask = mask.to(self.device, non_blocking=True) if mask is not None else None
        autocast = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else nullcontext()
        )
        with autocast:
            loss = model(input_ids, targets=labels, attention_mask=mask).loss
        return loss, input_ids.numel()

    @torch.no_grad()
    def evaluate(self, max_batches=None):
        """Token-weighted mean loss over the eval loader (all ranks together) and its perplexity."""
        if self.eval_loader is None:
            raise ValueError("evaluate() needs an eval_dataloader; pass one to Trainer(...)")
        max_batches = max_batches or self.config.eval_batches
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # [loss sum, tokens]
        for i, batch in enumerate(self.eval_loader):
            if max_batches is not None and i >= max_batches:
                break
            loss, _ = self._forward(self.model, batch)
            labels = batch["labels"] if isinstance(batch, dict) else batch[1]
            n = int((labels != -100).sum())
            total += torch.tensor([loss.item() * n, n], dtype=torch.float64, device=self.device)
        self.model.train()
        if self.ddp:
            dist.all_reduce(total)
        val_loss = (total[0] / total[1]).item()
        return {"val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50.0))}

    def train(self, num_epochs=None, max_steps=None, resume_from=None):
        """Run optimizer steps until `max_steps` or `num_epochs` passes over the training data.

        resume_from: a checkpoint (file or output_dir) to continue from; the run then continues
        exactly as if it had never stopped. Returns a summary dict. Ctrl-C finishes the current
        step, saves a checkpoint and returns; a second Ctrl-C stops at once.
        """
        cfg = self.config
        total_steps = self._total_steps(num_epochs, max_steps)
        min_lr = cfg.min_lr if cfg.min_lr is not None else cfg.learning_rate / 10
        self.scheduler = get_cosine_schedule_with_warmup(
            self.optimizer,
            min(cfg.warmup_steps, total_steps),
            total_steps,
            min_lr / cfg.learning_rate,
        )
        if resume_from is not None:
            self._restore(resume_from)
        elif self.is_main and self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run
        previous_handler = self._catch_ctrl_c()
        bar = _progress_bar(
            total=total_steps,
            initial=self.step,
            disable=not (cfg.progress and self.is_main),
            unit="step",
            mininterval=1.0,
            dynamic_ncols=True,
        )
        batches, start, stopped_early = self._next_batches(), time.perf_counter(), False
        window_loss, window_steps, window_tokens, window_start = 0.0, 0, 0, time.perf_counter()
        try:
            while self.step < total_steps:
                loss, grad_norm, tokens = self._train_step(batches)
                self.step += 1
                window_loss, window_steps = window_loss + loss, window_steps + 1
                window_tokens += tokens
                bar.update(1)
                if self.step % cfg.log_interval == 0 or self.step == total_steps:
                    now = time.perf_counter()
                    record = {
                        "step": self.step,
                        "loss": window_loss / window_steps,
                        "lr": self.scheduler.get_last_lr()[0],
                        "grad_norm": grad_norm,
                        "tokens_per_sec": window_tokens / (now - window_start),
                        "ms_per_step": 1000 * (now - window_start) / window_steps,
                    }
                    self._log(record)
                    bar.set_postfix(
                        loss=f"{record['loss']:.4f}",
                        tok_s=f"{record['tokens_per_sec']:,.0f}",
                        refresh=False,
                    )
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    window_start = time.perf_counter()
                last = self.step == total_steps
                if self.eval_loader is not None and (
                    last or (cfg.eval_interval and self.step % cfg.eval_interval == 0)
                ):
                    self._log({"step": self.step, **self.evaluate()})
                if last or (cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0):
                    self.save_checkpoint()
                if self._should_stop():
                    self.save_checkpoint()
                    stopped_early = True
                    break
        finally:
            bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        evals = [r for r in self.history if "val_loss" in r]
        return {
            "step": self.step,
            "train_loss": next((r["loss"] for r in reversed(self.history) if "loss" in r), None),
            "val_loss": evals[-1]["val_loss"] if evals else None,
            "elapsed_s": time.perf_counter() - start,
            "stopped_early": stopped_early,
        }

    def _total_steps(self, num_epochs, max_steps):
        if max_steps is not None:
            if max_steps < 1:
                raise ValueError(f"max_steps must be >= 1, got {max_steps}")
            return max_steps
        if num_epochs is None:
            raise ValueError("train() needs num_epochs or max_steps")
        try:
            steps_per_epoch = len(self.train_loader) // self.config.grad_accum_steps
        except TypeError:
            raise ValueError("this train_dataloader has no len(); pass max_steps instead") from None
        if steps_per_epoch < 1:
            raise ValueError(
                f"an epoch has {len(self.train_loader)} batches, fewer than grad_accum_steps "
                f"({self.config.grad_accum_steps}); lower grad_accum_steps or the batch size"
            )
        return num_epochs * steps_per_epoch

    def _train_step(self, batches):
        """One optimizer step over grad_accum_steps micro-batches -> (loss, grad norm, tokens)."""
        accum = self.config.grad_accum_steps
        loss_sum, tokens = 0.0, 0
        for micro in range(accum):
            # DDP averages gradients across ranks in backward(); do it once, on the last micro-batch
            sync = micro == accum - 1 or not self.ddp
            with nullcontext() if sync else self.model.no_sync():
                loss, n = self._forward(self.model, next(batches))
                (loss / accum).backward()  # the mean over micro-batches, as one big batch would
            loss_sum, tokens = loss_sum + loss.item(), tokens + n
        max_norm = self.config.max_grad_norm or float("inf")  # inf: measure, do not clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm).item()
        loss = loss_sum / accum
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            where = self.output_dir / CHECKPOINT_NAME if self.output_dir is not None else None
            kept = (
                f"the last good checkpoint is {where}"
                if where and where.exists()
                else ("no checkpoint was written yet")
            )
            raise FloatingPointError(
                f"training diverged at step {self.step + 1}: loss {loss}, gradient norm "
                f"{grad_norm}; the weights were not updated and {kept}. Lower the learning "
                "rate, raise warmup_steps or set max_grad_norm, then resume or restart."
            )
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm, tokens * self.world_size

    def _log(self, record):
        self.history.append(record)
        if self.is_main and self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def _catch_ctrl_c(self):
        """Turn the first Ctrl-C into a request to stop after this step (checkpoint included)."""
        if threading.current_thread() is not threading.main_thread():
            return None  # signal handlers can only be set from the main thread

        def request_stop(signum, frame):
            if self._stop_requested:  # second Ctrl-C: the user really wants out now
                raise KeyboardInterrupt
            self._stop_requested = True
            print(
                "\nCtrl-C: stopping after this step and saving a checkpoint (again to abort)",
                file=sys.stderr,
            )

        self._stop_requested = False
        return signal.signal(signal.SIGINT, request_stop)

    def _should_stop(self):
        if not self.ddp:
            return self._stop_requested
        flag = torch.tensor([float(self._stop_requested)], device=self.device)
        dist.all_reduce(flag)  # any rank interrupted -> all ranks stop at the same step
        return bool(flag.item())

    def save_checkpoint(self, path=None):
        """Checkpoint everything needed to resume (rank 0 only; a no-op without output_dir)."""
        if not self.is_main or (path is None and self.output_dir is None):
            return None
        evals = [r for r in self.history if "val_loss" in r]
        return save_checkpoint(
            path or self.output_dir / CHECKPOINT_NAME,
            self.raw_model,
            self.tokenizer,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            step=self.step,
            epoch=self.epoch,
            batches_in_epoch=self._batches_in_epoch,
            rng=_rng_state(),
            training_config=asdict(self.config),
            metrics=evals[-1] if evals else {},
        )

    def _restore(self, path_or_dir):
        """Load weights, optimizer, schedule, data position and RNG states from a checkpoint."""
        path = _checkpoint_path(path_or_dir)
        checkpoint = torch.load(path, map_location=self.device, weights_only=True)
        self.raw_model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step, self.epoch = checkpoint["step"], checkpoint["epoch"]
        self._batches_in_epoch = checkpoint["batches_in_epoch"]
        _set_rng_state(checkpoint["rng"])
        if self.ddp:  # rank 0's generator was saved; give every rank its own stream again
            torch.manual_seed(self.config.seed + self.rank + 1000 * self.step)
        if self.is_main and self.output_dir is not None:  # drop records past the checkpoint
            metrics = self.output_dir / "metrics.jsonl"
            kept = (
                [r for r in read_metrics(metrics) if r["step"] <= self.step]
                if (metrics.exists())
                else []
            )
            self.output_dir.mkdir(parents=True, exist_ok=True)
            metrics.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            self.history = kept


# cell 46
RECIPES = {
    # nanoGPT's CPU recipe for character-level Tiny Shakespeare (the README of karpathy/nanoGPT),
    # with its learned positions: the baseline that bench/train_speed.py compares against.
    "nanogpt-cpu": {
        "model": {
            "d_model": 128,
            "num_layers": 4,
            "num_heads": 4,
            "d_ff": 512,
            "dropout": 0.0,
            "bias": False,
            "positional_encoding": "learned",
        },
        "block_size": 64,
        "batch_size": 12,
        "max_steps": 2000,
        "training": {"learning_rate": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "beta2": 0.99},
    },
    # The recommended character-level recipe for a CPU: the same small model with rotary
    # positions (which learn far faster here than added ones), a larger batch and a higher
    # learning rate. 2,000 steps take about two minutes on 2 cores; --max-steps 1000 about one.
    # Measured figures: bench/train_speed.py.
    "shakespeare-char": {
        "model": {
            "d_model": 128,
            "num_layers": 4,
            "num_heads": 4,
            "d_ff": 512,
            "dropout": 0.0,
            "bias": False,
            "positional_encoding": "rope",
        },
        "block_size": 64,
        "batch_size": 16,
        "max_steps": 2000,
        "training": {"learning_rate": 3e-3, "min_lr": 1e-4, "warmup_steps": 50, "beta2": 0.99},
    },
}
_TRAIN_DEFAULTS = {"preset": "small", "block_size": 128, "batch_size": 32, "max_steps": 1000}


def add_train_arguments(parser):
    """The flags of `python -m tinylm_core train`. Flags left out come from --recipe, if given,
    then from the defaults shown."""
    a = parser.add_argument
    a(
        "--corpus",
        default="tinyshakespeare",
        help="'tinyshakespeare' (downloaded once, then cached) or a path to a UTF-8 text file",
    )
    a(
        "--tokenizer",
        choices=["char", "bpe"],
        default="char",
        help="char: one token per character, vocabulary built from the corpus; "
        "bpe: GPT-2's byte-level BPE vocabulary (50,257 tokens)",
    )
    a(
        "--recipe",
        choices=sorted(RECIPES),
        help="a tested set of model shape and hyperparameters (see RECIPES in "
        "tinylm_core/training.py); explicit flags override it",
    )
    a(
        "--preset",
        choices=["small", "medium", "large"],
        help="model size from ModelConfig presets (default: small, ~5M parameters)",
    )
    a(
        "--out",
        default="runs/train",
        help="output directory for checkpoint.pt and metrics.jsonl (default: runs/train)",
    )
    a("--max-steps", type=int, help="optimizer steps to train for (default: 1000)")
    a("--batch-size", type=int, help="sequences per micro-batch, per process (default: 32)")
    a(
        "--block-size",
        type=int,
        help="context length in tokens; also the model's max_seq_len (default: 128)",
    )
    a("--grad-accum-steps", type=int, help="micro-batches per optimizer step (default: 1)")
    a("--lr", type=float, dest="learning_rate", help="peak learning rate (default: 3e-4)")
    a(
        "--min-lr",
        type=float,
        help="learning rate at the end of the cosine decay (default: lr / 10)",
    )
    a("--warmup-steps", type=int, help="linear warmup steps (default: 100)")
    a("--weight-decay", type=float, help="AdamW weight decay on matrices (default: 0.1)")
    a("--max-grad-norm", type=float, help="clip the gradient norm to this (default: 1.0)")
    a("--dropout", type=float, help="dropout rate of the model (default: the preset's)")
    a(
        "--positional-encoding",
        choices=["sinusoidal", "learned", "rope"],
        help="how the model knows positions (default: the preset's)",
    )
    a(
        "--val-fraction",
        type=float,
        default=0.1,
        help="the last part of the corpus held out for validation (default: 0.1)",
    )
    a("--eval-interval", type=int, help="evaluate every N steps (default: 250)")
    a(
        "--eval-batches",
        type=int,
        default=50,
        help="validation batches per evaluation (default: 50)",
    )
    a("--checkpoint-interval", type=int, help="save every N steps, besides the end (default: 500)")
    a("--seed", type=int, default=1337, help="random seed (default: 1337)")
    a("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps ...")
    a(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="auto: bf16 autocast on CUDA, fp32 elsewhere",
    )
    a("--compile", action="store_true", help="torch.compile the model (worth it on a GPU)")
    a("--no-progress", action="store_true", help="no progress bar (for logs)")
    a(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoint.pt if it exists (same flags as the first run)",
    )
    return parser


def _train_settings(args):
    """Merge explicit flags over the recipe over the defaults."""
    recipe = RECIPES[args.recipe] if args.recipe else {}
    pick = lambda name: next(
        v
        for v in (getattr(args, name, None), recipe.get(name), _TRAIN_DEFAULTS.get(name))
        if v is not None
    )
    model = dict(recipe.get("model", {}))
    for name in ("dropout", "positional_encoding"):
        if getattr(args, name) is not None:
            model[name] = getattr(args, name)
    training = dict(recipe.get("training", {}))
    for f in fields(TrainingConfig):
        if getattr(args, f.name, None) is not None:
            training[f.name] = getattr(args, f.name)
    training.update(
        eval_interval=args.eval_interval or 250,
        checkpoint_interval=args.checkpoint_interval or 500,
        progress=not args.no_progress,
    )
    names = ("preset", "block_size", "batch_size", "max_steps")
    return {**{n: pick(n) for n in names}, "model": model, "training": training}


def _build_tokenizer(kind, text):
    if kind == "char":
        tokenizer = CharTokenizer()
        tokenizer.build_vocab([text])
        return tokenizer
    return BPETokenizer.from_gpt2_files()


def run_train(args):
    """`python -m tinylm_core train`: tokenize a corpus, train, write OUT/checkpoint.pt."""
    s = _train_settings(args)
    text = load_corpus(args.corpus)
    tokenizer = _build_tokenizer(args.tokenizer, text)
    tokens = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_set, val_set = TokenWindowDataset.train_val(tokens, s["block_size"], args.val_fraction)
    config = ModelConfig.from_preset(
        s["preset"], tokenizer.get_vocab_size(), max_seq_len=s["block_size"], **s["model"]
    )
    torch.manual_seed(args.seed)
    trainer = Trainer(
        TransformerLM.from_config(config),
        DataLoader(train_set, batch_size=s["batch_size"], shuffle=True),
        DataLoader(val_set, batch_size=s["batch_size"]),
        output_dir=args.out,
        tokenizer=tokenizer,
        config=TrainingConfig(**s["training"]),
    )
    checkpoint = Path(args.out) / CHECKPOINT_NAME
    if trainer.is_main:
        print(
            f"{config.num_layers} layers x {config.d_model} dim, "
            f"{trainer.raw_model.num_parameters():,} parameters, vocabulary "
            f"{config.vocab_size}; {len(tokens):,} tokens; device {trainer.device}"
        )
    summary = trainer.train(
        max_steps=s["max_steps"],
        resume_from=checkpoint if args.resume and checkpoint.exists() else None,
    )
    if trainer.is_main:
        print(
            f"step {summary['step']}: train loss {summary['train_loss']:.4f}, val loss "
            f"{summary['val_loss']:.4f} ({summary['elapsed_s']:.0f} s); checkpoint {checkpoint}"
        )
    if trainer.ddp:
        dist.destroy_process_group()
    return 0
