# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "Trainer",
    "checkpoint_dir",
    "batch_loss",
    "divergence_message",
    "training_state",
    "restore_training_state",
    "log_record",
]


# cell 107
import itertools
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist

from tinylm_core.checkpoint import (
    CHECKPOINT_NAME,
    check_resumable,
    read_checkpoint,
    rng_state,
    set_rng_state,
)
from tinylm_core.checkpoint import save_checkpoint as write_checkpoint
from tinylm_core.datasets import BatchStream, shard_loader
from tinylm_core.metrics import (
    MetricsWindow,
    append_metrics,
    read_metrics,
    summarize,
    write_metrics,
)
from tinylm_core.model_config import ModelConfig
from tinylm_core.optim import configure_optimizer, count_steps, schedule_for, time_budget_of
from tinylm_core.runtime import (
    RunLock,
    StopSignals,
    any_rank,
    autocast,
    autocast_dtype,
    join_process_group,
    progress_bar,
    resolve_device,
    seed_everything,
    wrap_model,
)
from tinylm_core.settings import TrainingConfig


# cell 108
class Trainer:
    """Train a TransformerLM: AdamW, warmup + cosine schedule, clipping, eval, checkpoints, DDP.

    Trainer(model=model, train_dataloader=loader, output_dir="runs/x").train(num_epochs=1) is the
    whole API; any TrainingConfig field can be passed by keyword (Trainer(..., learning_rate=1e-3)).
    Batches are dicts with input_ids and labels (aligned targets, -100 = ignore) and optionally
    attention_mask, or (input_ids, labels) tuples. output_dir=None writes nothing (benchmarks).
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
        self.ddp, self.rank, self.world_size, local_rank = join_process_group()
        self.is_main = self.rank == 0  # only rank 0 logs and writes files
        self.device = resolve_device(cfg.device, local_rank)
        self.autocast_dtype = autocast_dtype(cfg.precision, self.device)
        self.output_dir = checkpoint_dir(model, output_dir)  # None: write nothing
        self.tokenizer = tokenizer
        seed_everything(cfg.seed, self.rank)
        self.raw_model = model.to(self.device)
        betas = (cfg.beta1, cfg.beta2)
        self.optimizer = configure_optimizer(model, cfg.learning_rate, cfg.weight_decay, betas)
        self.model = wrap_model(self.raw_model, self.device, self.ddp, cfg.compile)
        self.batches = BatchStream(train_dataloader, self.world_size, self.rank, cfg.seed)
        self.eval_loader, _ = shard_loader(
            eval_dataloader, self.world_size, self.rank, shuffle=False
        )
        self.scheduler = None  # built by train(), once the number of steps is known
        self.step, self.window = 0, MetricsWindow()
        self.history = []  # the records also written to output_dir/metrics.jsonl
        self.last_checkpoint = None  # (path, step) of the last checkpoint written or resumed

    # cell 112
    @torch.no_grad()
    def evaluate(self, max_batches=None):
        """Token-weighted mean loss over the eval loader (all ranks together) and its perplexity."""
        if self.eval_loader is None:
            raise ValueError("evaluate() needs an eval_dataloader; pass one to Trainer(...)")
        max_batches = max_batches or self.config.eval_batches
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # [loss sum, tokens]
        for batch in itertools.islice(self.eval_loader, max_batches):
            loss, n = batch_loss(self.model, batch, self.device, self.autocast_dtype)
            total += torch.tensor([loss.item() * n, n], dtype=torch.float64, device=self.device)
        self.model.train()
        if self.ddp:
            dist.all_reduce(total)
        val_loss = (total[0] / total[1]).item()
        return {"val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50.0))}

    # cell 115
    def _train_step(self, batches):
        """One optimizer step over grad_accum_steps micro-batches -> (loss, grad norm, tokens)."""
        accum = self.config.grad_accum_steps
        loss_sum, tokens = 0.0, 0
        for micro in range(accum):
            # DDP averages gradients across ranks in backward(); do it once, on the last micro-batch
            sync = micro == accum - 1 or not self.ddp
            with nullcontext() if sync else self.model.no_sync():
                loss, n = batch_loss(self.model, next(batches), self.device, self.autocast_dtype)
                (loss / accum).backward()  # the mean over micro-batches, as one big batch would
            loss_sum, tokens = loss_sum + loss.item(), tokens + n
        max_norm = self.config.max_grad_norm or math.inf  # inf: measure, do not clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm).item()
        loss = loss_sum / accum
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            raise FloatingPointError(divergence_message(self, loss, grad_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, grad_norm, tokens * self.world_size

    # cell 120
    def save_checkpoint(self, path=None):
        """Checkpoint everything needed to resume (rank 0 only; a no-op without output_dir)."""
        if not self.is_main or (path is None and self.output_dir is None):
            return None
        path = path or self.output_dir / CHECKPOINT_NAME
        path = write_checkpoint(path, self.raw_model, self.tokenizer, **training_state(self))
        self.last_checkpoint = (path, self.step)
        return path

    # cell 127
    def _start(self, num_epochs, max_steps, resume_from):
        """-> the number of steps to reach; builds the schedule, then resumes or starts afresh."""
        max_steps = count_steps(self.batches, self.config.grad_accum_steps, num_epochs, max_steps)
        self.scheduler = schedule_for(self.optimizer, self.config, max_steps)
        self.model.train()  # dropout on, whatever mode the model came in
        if resume_from is not None:
            restore_training_state(self, resume_from)
        elif self.is_main and self.output_dir is not None:
            (self.output_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run
        return max_steps

    # cell 128
    def _run_steps(self, total_steps, bar, stop):
        """The loop; returns True when a signal stopped it early."""
        every = lambda interval: interval is not None and self.step % interval == 0
        batches, self.window = iter(self.batches), MetricsWindow(**self.window.state_dict())
        clock, last = time_budget_of(self.scheduler), False  # the clock may end the run (lesson 11)
        while self.step < total_steps and not last:
            with clock.counting():
                loss, grad_norm, tokens = self._train_step(batches)
            out_of_time = any_rank(clock.spent_all(), self.ddp, self.device)  # every rank, or none
            self.step, last = self.step + 1, self.step + 1 == total_steps or out_of_time
            self.window.add(loss, tokens)
            bar.update(1)
            if last or every(self.config.log_interval):
                lr = self.scheduler.get_last_lr()[0]
                log_record(self, self.window.record(self.step, lr=lr, grad_norm=grad_norm))
                bar.set_postfix(loss=f"{self.history[-1]['loss']:.4f}")
            if self.eval_loader is not None and (last or every(self.config.eval_interval)):
                log_record(self, {"step": self.step, **self.evaluate()})
            if last or every(self.config.checkpoint_interval):
                with clock.counting():
                    self.save_checkpoint()
            if stop.agreed(self.ddp, self.device):
                self.save_checkpoint()
                return True
        return False

    # cell 130
    def train(self, num_epochs=None, max_steps=None, resume_from=None):
        """Train for `max_steps` steps or `num_epochs` epochs -> a summary (see `summarize`).
        resume_from: a checkpoint (file or output_dir) to continue exactly as if never stopped.
        Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and returns."""
        start = time.perf_counter()
        claim = self.is_main and self.output_dir is not None
        with RunLock(self.output_dir) if claim else nullcontext(), StopSignals() as stop:
            total_steps = self._start(num_epochs, max_steps, resume_from)
            bar = progress_bar(total_steps, self.step, self.config.progress and self.is_main)
            try:
                stopped = self._run_steps(total_steps, bar, stop)
            finally:
                bar.close()
        if self.ddp:
            dist.barrier()  # no rank leaves before rank 0 has written the last checkpoint
        return summarize(self.history, self.step, time.perf_counter() - start, stopped)


def checkpoint_dir(model, output_dir):
    """output_dir as a Path (None: write nothing), if checkpoints of `model` can be read back."""
    if output_dir is None:
        return None
    if not isinstance(getattr(model, "config", None), ModelConfig):
        raise ValueError(
            f"output_dir={str(output_dir)!r}: checkpoints rebuild a TransformerLM from model.config, "
            f"and this {type(model).__name__} has no ModelConfig; pass output_dir=None and save "
            "it yourself (lesson 09's save_lora, or torch.save(model.state_dict(), path))"
        )
    return Path(output_dir)


# cell 111
def batch_loss(model, batch, device, autocast_dtype=None):
    """Mean cross-entropy of one batch, on `device`, and its number of target tokens (not -100).
    A batch is a dict with input_ids, labels and optionally attention_mask, or a pair."""
    if not isinstance(batch, dict):
        batch = {"input_ids": batch[0], "labels": batch[1]}
    input_ids = batch["input_ids"].to(device, non_blocking=True)  # (B, T)
    labels = batch["labels"].to(device, non_blocking=True)  # (B, T)
    mask = batch.get("attention_mask")
    mask = mask.to(device, non_blocking=True) if mask is not None else None  # (B, T)
    with autocast(device, autocast_dtype):
        loss = model(input_ids, targets=labels, attention_mask=mask).loss
    return loss, int((labels != -100).sum())


# cell 117
def divergence_message(trainer, loss, grad_norm):
    """What happened, what was kept and what to try, for a non-finite loss or gradient norm."""
    params = trainer.raw_model.parameters()
    broken = not all(bool(torch.isfinite(p).all()) for p in params)
    weights = "the weights were not updated by this step"
    weights += ", but they already held NaN or infinite values before it" if broken else ""
    if trainer.last_checkpoint is not None:
        kept = "the last good checkpoint is {} (step {})".format(*trainer.last_checkpoint)
    else:
        kept = "this run wrote no checkpoint (any earlier one is untouched)"
    return (
        f"training diverged at step {trainer.step + 1}: loss {loss}, gradient norm {grad_norm}; "
        f"{weights}; {kept}. Lower the learning rate, raise warmup_steps or set max_grad_norm, "
        "then resume or restart."
    )


# cell 119
def training_state(trainer):
    """What a checkpoint holds besides the model and tokenizer, to resume `trainer` exactly."""
    evals = [r for r in trainer.history if "val_loss" in r]
    return dict(
        optimizer=trainer.optimizer.state_dict(),
        scheduler=trainer.scheduler.state_dict(),
        step=trainer.step,
        epoch=trainer.batches.epoch,
        batches_in_epoch=trainer.batches.batches_in_epoch,
        window=trainer.window.state_dict(),
        rng=rng_state(),
        training_config=asdict(trainer.config),
        metrics=evals[-1] if evals else {},
    )


# cell 123
def restore_training_state(trainer, path_or_dir):
    """Continue `trainer` from a checkpoint: weights, optimizer, schedule, data position, RNG
    states, metrics window; metrics.jsonl loses the records after the checkpoint."""
    checkpoint = read_checkpoint(path_or_dir)
    check_resumable(checkpoint, trainer.raw_model, trainer.tokenizer)
    trainer.raw_model.load_state_dict(checkpoint["model"])
    trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    trainer.scheduler.load_state_dict(checkpoint["scheduler"])
    trainer.step, trainer.window = checkpoint["step"], MetricsWindow(**checkpoint["window"])
    trainer.batches.epoch = checkpoint["epoch"]
    trainer.batches.batches_in_epoch = checkpoint["batches_in_epoch"]
    set_rng_state(checkpoint["rng"])
    if trainer.ddp:  # rank 0's generator was saved; give every rank its own stream again
        torch.manual_seed(trainer.config.seed + trainer.rank + 1000 * trainer.step)
    trainer.last_checkpoint = (checkpoint["path"], trainer.step)
    metrics = trainer.output_dir / "metrics.jsonl" if trainer.output_dir is not None else None
    if trainer.is_main and metrics is not None and metrics.exists():
        trainer.history = [r for r in read_metrics(metrics) if r["step"] <= trainer.step]
        write_metrics(metrics, trainer.history)


# cell 129
def log_record(trainer, record):
    """Keep `record` in trainer.history and append it to output_dir/metrics.jsonl (rank 0)."""
    trainer.history.append(record)
    if trainer.is_main and trainer.output_dir is not None:
        append_metrics(trainer.output_dir / "metrics.jsonl", record)
