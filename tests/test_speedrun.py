"""Lesson 11's time budget: the learning rate follows the clock, the run ends on it, inside the
budget, and the time spent survives a checkpoint; the speedrun recipe runs from the command line."""

import argparse
import math

import pytest
import torch
from conftest import tiny_model
from torch.utils.data import DataLoader

from tinylm_core import Trainer
from tinylm_core.cli import add_train_arguments, run_train
from tinylm_core.datasets import TokenWindowDataset
from tinylm_core.optim import NoTimeBudget, schedule_for, time_budget_of
from tinylm_core.settings import RECIPES, TrainingConfig
from tinylm_core.speedrun import TimeBudget, time_budget_schedule


def multiplier_at(budget, share, step=1000):
    budget.spent = share * budget.seconds
    return budget(step)


def test_warmup_then_stable_then_a_straight_line_down_to_the_floor():
    budget = TimeBudget(100.0, warmup_steps=4, cooldown=0.4, floor=0.1)
    assert [budget(s) for s in range(5)] == pytest.approx([1 / 5, 2 / 5, 3 / 5, 4 / 5, 1.0])
    for share in (0.0, 0.3, 0.6):
        assert multiplier_at(budget, share) == 1.0  # stable until 60% of the budget
    for share in (0.7, 0.8, 0.9, 1.0, 1.5):  # the line from (0.6, 1) to (1, floor), then flat
        expected = 0.1 + 0.9 * max(0.0, (1 - share) / 0.4)
        assert multiplier_at(budget, share) == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs",
    [dict(seconds=0), dict(seconds=-1), dict(cooldown=0), dict(cooldown=1.5), dict(floor=2)],
)
def test_bad_budgets_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be"):
        TimeBudget(**{"seconds": 10.0, **kwargs})


@pytest.mark.parametrize("value", [0, -5.0])
def test_time_budget_must_be_positive(value):
    with pytest.raises(ValueError, match="time_budget must be positive"):
        TrainingConfig(time_budget=value)


def test_counting_adds_the_time_of_the_block_and_ends_when_two_spans_are_left():
    budget = TimeBudget(1.0)
    for _ in range(2):
        with budget.counting():
            torch.randn(200, 200) @ torch.randn(200, 200)
    assert budget.spans == 2 and 0 < budget.slowest < budget.spent < 1.0
    budget.spent = 0.99 - 2 * budget.slowest  # two spans and the 1% margin left
    assert budget.spent_all()
    budget.spent -= 1e-3
    assert not budget.spent_all()
    assert not NoTimeBudget().spent_all()


def test_schedule_for_follows_the_clock_only_with_a_time_budget():
    optimizer = torch.optim.AdamW(tiny_model().parameters(), lr=1e-2)
    timed = schedule_for(
        optimizer, TrainingConfig(learning_rate=1e-2, min_lr=1e-3, time_budget=9.0), 100
    )
    budget = time_budget_of(timed)
    assert isinstance(budget, TimeBudget) and (budget.seconds, budget.floor) == (9.0, 0.1)
    stepped = schedule_for(optimizer, TrainingConfig(learning_rate=1e-2), 100)
    assert isinstance(time_budget_of(stepped), NoTimeBudget)


def test_the_schedule_state_carries_the_time_spent():
    optimizer = torch.optim.AdamW(tiny_model().parameters())
    first = time_budget_schedule(optimizer, 10.0)
    time_budget_of(first).spent, time_budget_of(first).slowest = 7.5, 0.25
    second = time_budget_schedule(optimizer, 10.0)
    second.load_state_dict(first.state_dict())
    assert (time_budget_of(second).spent, time_budget_of(second).slowest) == (7.5, 0.25)
    assert second.get_last_lr() == first.get_last_lr()


def run_with_budget(tmp_path, seconds, resume=False):
    torch.manual_seed(0)
    tokens = torch.randint(0, 37, (4000,))
    windows, held_out = TokenWindowDataset.train_val(tokens, 16)
    trainer = Trainer(
        tiny_model(),
        DataLoader(windows, batch_size=4, shuffle=True),
        DataLoader(held_out, batch_size=8),
        output_dir=tmp_path,
        time_budget=seconds,
        warmup_steps=2,
        min_lr=1e-5,
        eval_interval=5,  # evaluations are not counted: the run must still end on its budget
        progress=False,
    )
    summary = trainer.train(max_steps=1_000_000, resume_from=tmp_path if resume else None)
    return trainer, summary


def test_a_trainer_with_a_time_budget_ends_inside_it_at_the_floor(tmp_path):
    trainer, summary = run_with_budget(tmp_path, 1.0)
    budget = time_budget_of(trainer.scheduler)
    assert 1 < summary["step"] < 1_000_000 and not summary["stopped_early"]
    assert budget.spent <= 1.0  # steps and the final checkpoint, counted
    assert summary["val_loss"] is not None  # the last step was evaluated
    assert trainer.history[-2]["lr"] < 1e-3 / 4  # the last record before the eval: decayed
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["step"] == summary["step"]
    assert 0 < saved["scheduler"]["lr_lambdas"][0]["spent"] <= 1.0


def test_resuming_a_spent_budget_takes_one_step_more_at_most(tmp_path):
    _, first = run_with_budget(tmp_path, 1.0)
    trainer, second = run_with_budget(tmp_path, 1.0, resume=True)
    assert first["step"] <= second["step"] <= first["step"] + 1
    clock = time_budget_of(trainer.scheduler)
    assert clock.spent >= 0.99 - 2 * clock.slowest


def test_the_speedrun_recipe_runs_to_its_budget_from_the_command_line(tmp_path, capsys):
    assert RECIPES["speedrun"]["training"]["time_budget"] == 300.0
    args = add_train_arguments(argparse.ArgumentParser()).parse_args(
        [
            "--recipe",
            "speedrun",
            "--time-budget",
            "1",
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ]
    )
    assert run_train(args) == 0
    out = capsys.readouterr().out
    steps = int(out.split("step ")[1].split(":")[0])
    assert 0 < steps < RECIPES["speedrun"]["max_steps"]
    assert "the whole held-out split" in out
    saved = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert saved["training_config"]["time_budget"] == 1.0
    assert math.isfinite(saved["metrics"]["val_loss"])
