# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "configure_optimizer",
    "get_cosine_schedule_with_warmup",
    "count_steps",
    "schedule_for",
    "NoTimeBudget",
    "time_budget_of",
]


# cell 28
import math
from contextlib import nullcontext

import torch


# cell 29
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


# cell 32
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


# cell 125
def count_steps(batches, grad_accum_steps, num_epochs, max_steps):
    """The optimizer steps a run takes: max_steps, or num_epochs passes over `batches`."""
    if max_steps is None and num_epochs is None:
        raise ValueError("train() needs num_epochs or max_steps")
    if max_steps is None:
        try:
            max_steps = num_epochs * (len(batches) // grad_accum_steps)
        except TypeError:
            raise ValueError("this train_dataloader has no len(); pass max_steps instead") from None
    if max_steps < 1:
        raise ValueError(
            f"train() needs at least 1 step, got {max_steps} (lower grad_accum_steps?)"
        )
    return max_steps


# cell 126
def schedule_for(optimizer, config, total_steps):
    """The warmup + cosine schedule of a run: warmup 5% of the steps and min_lr a tenth of the
    peak unless the config sets them. With a time budget, lesson 11's schedule follows the clock."""
    min_lr = config.min_lr if config.min_lr is not None else config.learning_rate / 10
    if config.time_budget is not None:
        from tinylm_core.speedrun import time_budget_schedule  # lesson 11

        floor = min_lr / config.learning_rate
        return time_budget_schedule(optimizer, config.time_budget, config.warmup_steps or 0, floor)
    warmup = config.warmup_steps if config.warmup_steps is not None else round(0.05 * total_steps)
    return get_cosine_schedule_with_warmup(
        optimizer, min(warmup, total_steps), total_steps, min_lr / config.learning_rate
    )


class NoTimeBudget:
    """The clock of a run without a time budget: it never runs out."""

    def counting(self):
        return nullcontext()

    def spent_all(self):
        return False


def time_budget_of(scheduler):
    """The clock that ends a run: lesson 11's TimeBudget when it drives `scheduler`, else none."""
    multiplier = getattr(scheduler, "lr_lambdas", [None])[0]
    return multiplier if hasattr(multiplier, "spent_all") else NoTimeBudget()
