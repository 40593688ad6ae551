"""`python -m tinylm_core generate` as a user runs it, in a subprocess: --help shows every
default, user errors are one `error:` line with exit status 2, warnings name the problem,
--interactive reads prompts in a loop, and Ctrl-C ends quietly with status 130."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_model

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": ""}


def generate(*args, stdin=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "tinylm_core", "generate", *map(str, args)],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=ENV,
    )  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tinylm_core import CharTokenizer, save_checkpoint

    tokenizer = CharTokenizer().build_vocab("ROMEO: to be or not to be, that is the question")
    path = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    save_checkpoint(path, tiny_model(vocab_size=tokenizer.get_vocab_size()), tokenizer)
    return path


def test_help_shows_every_default():
    result = generate("--help")
    assert result.returncode == 0
    options = result.stdout[result.stdout.index("options:") :]
    blocks = {b.split()[0]: " ".join(b.split()) for b in re.split(r"\n  (?=-)", options)[1:]}
    for flag, default in [
        ("--strategy", "top-p"),
        ("--device", "auto"),
        ("--max-new-tokens", "200"),
        ("--temperature", "0.8"),
        ("--top-k", "50"),
        ("--top-p", "0.9"),
        ("--num-beams", "4"),
        ("--repetition-penalty", "1.0"),  # GenerationConfig's own default
        ("--length-penalty", "1.0"),
        ("--seed", "None"),
    ]:
        assert f"(default: {default})" in blocks[flag], blocks[flag]


def test_generates_and_reports_why_it_stopped(checkpoint):
    result = generate("--checkpoint", checkpoint, "--prompt", "ROMEO:", "--max-new-tokens", 5)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:")
    assert "stopped by" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--temperature", "nan"], "temperature"),
        (["--strategy", "top-p", "--top-p", "1.5"], "top_p"),
        (["--repetition-penalty", "nan"], "repetition_penalty"),
        (["--strategy", "beam", "--length-penalty", "nan"], "length_penalty"),
        (["--strategy", "beam", "--num-beams", "2.5"], "--num-beams"),
        (["--seed", str(2**70)], "seed"),
        (["--stop", ""], "stop"),
        (["--strategy", "nucleus"], "--strategy"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(checkpoint, args, words):
    result = generate("--checkpoint", checkpoint, "--prompt", "to", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.stderr


def test_missing_checkpoint_is_one_line(tmp_path):
    result = generate("--checkpoint", tmp_path / "nothing")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_unknown_characters_are_named_in_a_warning(checkpoint):
    result = generate("--checkpoint", checkpoint, "--prompt", "ROMEO? é", "--max-new-tokens", 2)
    assert result.returncode == 0
    assert "warning: prompt characters not in the vocabulary" in result.stderr
    assert "['?', 'é']" in result.stderr


def test_cuda_without_cuda_warns_and_uses_the_cpu(checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = generate("--checkpoint", checkpoint, "--device", "cuda", "--max-new-tokens", 2)
    assert result.returncode == 0, result.stderr
    assert "warning: CUDA is not available" in result.stderr


def test_interactive_reads_prompts_until_an_empty_line(checkpoint):
    result = generate(
        "--checkpoint", checkpoint, "--interactive", "--strategy", "greedy",
        "--max-new-tokens", 4, stdin="ROMEO:\nto be\\nor\n\nnever read\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("stopped by") == 2
    assert "ROMEO:" in result.stdout and "to be\nor" in result.stdout
    assert "never read" not in result.stdout


def test_ctrl_c_ends_quietly_with_status_130(checkpoint):
    process = subprocess.Popen(
        [sys.executable, "-m", "tinylm_core", "generate", "--checkpoint", str(checkpoint),
         "--prompt", "ROMEO:", "--max-new-tokens", "1000000", "--strategy", "greedy"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV,
    )  # fmt: skip
    try:
        assert process.stdout.read(6) == "ROMEO:"  # generation has started
        time.sleep(1)  # greedy on this model never produces eos: it is still generating
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "stopped by" not in stderr  # it was interrupted, not finished
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
