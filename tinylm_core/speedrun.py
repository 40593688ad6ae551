# This file is generated from notebooks/11_modern_architectures.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["TimeBudget", "time_budget_schedule"]


# cell 70
import time
from contextlib import contextmanager

import torch


# cell 71
class TimeBudget:
    """The learning-rate multiplier of a run that ends after `seconds` of training, and its clock.

    Linear warmup over `warmup_steps` steps, then 1, then a straight line down to `floor` over
    the last `cooldown` share of the budget (1: all of it, the speedrun's choice, section 4.2; 0.2:
    "warmup-stable-decay"). The Trainer counts each training step and checkpoint
    with `counting()` (evaluations are not counted) and ends the run when `spent_all()`.

    >>> budget = TimeBudget(300, cooldown=0.5)
    >>> budget.spent = 225.0  # three quarters of the budget: halfway down the decay
    >>> budget(step=1000)
    0.5
    """

    def __init__(self, seconds, warmup_steps=0, cooldown=1.0, floor=0.0):
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds}")
        if not 0 < cooldown <= 1 or not 0 <= floor <= 1:
            raise ValueError(
                f"cooldown must be in (0, 1] and floor in [0, 1], got {cooldown} and {floor}"
            )
        self.seconds, self.warmup_steps, self.cooldown, self.floor = (
            seconds,
            warmup_steps,
            cooldown,
            floor,
        )
        self.spent, self.slowest, self.spans = 0.0, 0.0, 0  # seconds, longest span, spans counted

    # cell 72
    def __call__(self, step):
        """The multiplier of the learning rate for `step` (0-based), at the time spent so far."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        left = max(0.0, 1.0 - self.spent / self.seconds)  # share of the budget still to go
        return self.floor + (1.0 - self.floor) * min(1.0, left / self.cooldown)

    # cell 75
    @contextmanager
    def counting(self):
        """Count the time of the `with` block as training time."""
        start = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - start
            self.spent, self.spans = self.spent + took, self.spans + 1
            if self.spans > 1:  # the first step also builds the data order: no guide to the next
                self.slowest = max(self.slowest, took)

    # cell 75
    def spent_all(self):
        """True when the next step might not end in time: what is left is under two of the slowest
        spans (a step, and one more for the final checkpoint) plus 1% of the budget, as a margin."""
        return self.spent + 2 * self.slowest + 0.01 * self.seconds >= self.seconds


# cell 77
def time_budget_schedule(optimizer, seconds, warmup_steps=0, floor=0.0, cooldown=1.0):
    """LambdaLR with a TimeBudget: what `schedule_for` builds for a TrainingConfig with time_budget."""
    budget = TimeBudget(seconds, warmup_steps, cooldown, floor)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, budget)
