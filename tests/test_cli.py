"""`python -m tinylm_core train`, as a user runs it: every user error is one `error:` line with exit
status 2, Ctrl-C and SIGTERM save a checkpoint and print a true summary, a second run never mixes
into the first, one run per directory (a lock naming the PID), a record of every run
(config.json, loss.png) and flags derived from the settings dataclasses."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from tinylm_core.checkpoint import load_checkpoint
from tinylm_core.cli import add_config_arguments, add_train_arguments, config_from_args, run_train
from tinylm_core.settings import RECIPES, TrainingConfig, TrainRun

ROOT = Path(__file__).resolve().parent.parent
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40
SMALL = ["--block-size", "16", "--batch-size", "4", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def command(*flags):
    return [sys.executable, "-m", "tinylm_core", "train", *map(str, flags)]


def environment():
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}  # this checkout first, wherever pytest runs


def cli(*flags, cwd):
    return subprocess.run(
        command(*flags), cwd=cwd, env=environment(), capture_output=True, text=True, timeout=300
    )


def assert_one_error_line(done, pattern):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and [line for line in lines if "error:" in line] == [
        lines[-1]
    ]
    assert lines[-1].startswith("error: ") and re.search(pattern, lines[-1]), lines


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--corpus", "no/such/file.txt"], "no/such/file.txt"),
        (["--lr", "nan", "--recipe", "shakespeare-char"], "--learning-rate must be a finite"),
        (["--max-grad-norm", "nan", "--checkpoint-interval", "1"], "--max-grad-norm must be a fin"),
        (["--block-size", "100000"], "too few for one window.*block_size"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(corpus, tmp_path, flags, pattern):
    done = cli("--corpus", corpus, *SMALL, "--out", tmp_path / "run", *flags, cwd=tmp_path)
    assert_one_error_line(done, pattern)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()  # nothing half-done was kept


@pytest.mark.parametrize(
    "flags, pattern",
    [
        (["--weight-decay", "inf"], "--weight-decay must be a finite number"),
        (["--min-lr", "nan"], "--min-lr must be a finite number"),
        (["--warmup-steps", "-1"], "--warmup-steps must be >= 0"),
        (["--resume", "--overwrite"], "pass only one"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
    ],
)
def test_more_user_errors_in_process(corpus, tmp_path, capsys, flags, pattern):
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--corpus", str(corpus), *SMALL, "--out", str(tmp_path), *flags])
    assert run_train(args) == 2
    assert re.search(pattern, capsys.readouterr().err.strip().splitlines()[-1])


def test_a_second_run_is_refused_unless_resume_or_overwrite(corpus, tmp_path):
    out = tmp_path / "run"
    first = cli("--corpus", corpus, *SMALL, "--max-steps", 3, "--out", out, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert sorted(os.listdir(out)) == ["checkpoint.pt", "config.json", "loss.png", "metrics.jsonl"]
    assert str(out / "metrics.jsonl") in first.stdout and "the whole held-out split" in first.stdout
    config = json.loads((out / "config.json").read_text())
    assert (
        config["training"]["learning_rate"]
        == RECIPES["shakespeare-char"]["training"]["learning_rate"]
    )
    metrics = (out / "metrics.jsonl").read_bytes()

    again = cli("--corpus", corpus, *SMALL, "--max-steps", 3, "--out", out, cwd=tmp_path)
    assert_one_error_line(again, "already holds a run.*--resume.*--overwrite")
    assert (out / "metrics.jsonl").read_bytes() == metrics  # untouched

    resumed = cli(
        "--corpus", corpus, *SMALL, "--max-steps", 5, "--out", out, "--resume", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out)[2]["step"] == 5
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 5


def start_long_run(corpus, out, cwd):
    """A run that would take minutes; returns once its training loop is writing metrics."""
    flags = ["--corpus", corpus, *SMALL, "--max-steps", 100_000, "--log-interval", 1]
    flags += ["--eval-interval", 100_000, "--checkpoint-interval", 100_000, "--out", out]
    process = subprocess.Popen(
        command(*flags), cwd=cwd, env=environment(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        metrics = out / "metrics.jsonl"
        if metrics.exists() and metrics.read_text().count("\n") >= 2:
            return process
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"the run did not start: {process.communicate()[1]}")


@pytest.mark.parametrize("sig, name", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_signal_before_the_first_evaluation_saves_and_summarises(corpus, tmp_path, sig, name):
    # Before: SIGTERM killed the run without a checkpoint, and Ctrl-C before the first evaluation
    # crashed in the summary (TypeError formatting a val loss of None).
    out = tmp_path / "run"
    process = start_long_run(corpus, out, tmp_path)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert f"{name}: stopping after this step" in stderr and "Traceback" not in stderr
    assert "val loss not measured yet" in stdout and "--resume" in stdout
    step = load_checkpoint(out)[2]["step"]
    assert step >= 2 and f"step {step}:" in stdout


def test_one_run_per_directory_and_a_stale_lock_is_taken_over(corpus, tmp_path):
    out = tmp_path / "run"
    first = start_long_run(corpus, out, tmp_path)
    try:
        second = cli("--corpus", corpus, *SMALL, "--out", out, "--resume", cwd=tmp_path)
        assert_one_error_line(second, f"in use by another training run \\(PID {first.pid}")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    # A lock left by a process that died (kill -9) does not block the next run.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(str(dead.pid))
    resumed = cli(
        "--corpus", corpus, *SMALL, "--out", out, "--resume", "--max-steps", 1, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not (out / "run.lock").exists()


def test_help_shows_every_flag_with_its_default_from_the_dataclasses():
    done = subprocess.run(
        [sys.executable, "-m", "tinylm_core", "train", "--help"],
        env=environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines
    for config in (TrainRun, TrainingConfig):
        for f in fields(config):
            assert f"--{f.name.replace('_', '-')}" in text
            assert f"{f.metadata['help']} (default: {f.default})" in text, f.name
    for name in RECIPES:
        assert f"{name}: d_model=" in text


def test_flags_override_the_recipe_which_overrides_the_defaults():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, TrainingConfig, aliases={"learning_rate": ["--lr"]})
    config = config_from_args(
        TrainingConfig, parser.parse_args(["--lr", "0.5"]), learning_rate=0.1, seed=3
    )
    assert (config.learning_rate, config.seed, config.beta1) == (0.5, 3, 0.9)
    assert (
        config_from_args(
            TrainingConfig, parser.parse_args(["--max-grad-norm", "none"])
        ).max_grad_norm
        is None
    )


def test_no_loss_png_without_matplotlib_but_a_note(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import fails as if not installed
    parser = add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--corpus", str(corpus), *SMALL, "--max-steps", "2", "--out", str(tmp_path / "r")]
    )
    assert run_train(args) == 0
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path / "r")) == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    assert torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)["step"] == 2
