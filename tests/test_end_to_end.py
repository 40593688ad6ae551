"""End to end: the seed README's quick start, `make demo` (tiny), and checkpoint files that are
broken or foreign. GPT-2 against Hugging Face is in test_gpt2.py."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tinylm_core.__main__ import main as cli

ROOT = Path(__file__).resolve().parent.parent

# The two code blocks of the seed project's README ("Quick Start"), verbatim.
SEED_TRAINING = """
import torch
from torch.utils.data import DataLoader
from tiny_lm.model.transformer import TransformerLM
from tiny_lm.tokenizer.char_tokenizer import CharTokenizer
from tiny_lm.data.dataset import TextDataset, collate_fn
from tiny_lm.training.trainer import Trainer

# Prepare your training data
train_texts = [
    "The quick brown fox jumps over the lazy dog.",
    "Machine learning is fascinating.",
    # Add more texts...
]

# Build tokenizer vocabulary
tokenizer = CharTokenizer()
tokenizer.build_vocab(train_texts)

# Create dataset and dataloader
train_dataset = TextDataset(train_texts, tokenizer, max_length=128)
train_dataloader = DataLoader(train_dataset, batch_size=8, shuffle=True, collate_fn=collate_fn)

# Initialize model
model = TransformerLM(
    vocab_size=tokenizer.get_vocab_size(),
    d_model=256,
    num_layers=4,
    num_heads=4,
    d_ff=1024,
    max_seq_len=128,
)

# Train the model
trainer = Trainer(
    model=model,
    train_dataloader=train_dataloader,
    output_dir="./outputs",
)
trainer.train(num_epochs=10)
"""

SEED_GENERATION = """
from tiny_lm.generation.generator import Generator

# Initialize generator
generator = Generator(model, tokenizer, device="cuda")

# Generate text
generated_text = generator.generate_sampling(
    prompt="Machine learning",
    max_new_tokens=50,
    temperature=0.8,
    top_k=10,
)
print(generated_text)
"""


def seed_to_tinylm(code):
    """The only change the seed's code needs: `from tiny_lm.x.y import A` -> `from tinylm_core import A`."""
    return re.sub(r"^from tiny_lm(\.\w+)+ import", "from tinylm_core import", code, flags=re.M)


def test_seed_readme_quick_start_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the quick start writes ./outputs
    namespace = {}
    exec(compile(seed_to_tinylm(SEED_TRAINING), "seed_training", "exec"), namespace)
    assert namespace["trainer"].step == 10  # 2 texts, batch_size 8: one step per epoch
    assert (tmp_path / "outputs" / "checkpoint.pt").is_file()
    generation = compile(seed_to_tinylm(SEED_GENERATION), "seed_generation", "exec")
    if torch.cuda.is_available():
        exec(generation, namespace)
    else:  # the seed asks for device="cuda": without a GPU the Generator says so and uses the CPU
        with pytest.warns(UserWarning, match="CUDA is not available"):
            exec(generation, namespace)
        assert namespace["generator"].device.type == "cpu"
    text = namespace["generated_text"]
    assert text.startswith("Machine learning") and len(text) > len("Machine learning")
    assert capsys.readouterr().out.strip() == text.strip()


def test_seed_import_rewrite():
    rewritten = seed_to_tinylm(SEED_TRAINING + SEED_GENERATION)
    assert "tiny_lm" not in rewritten
    assert "from tinylm_core import TextDataset, collate_fn" in rewritten


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_demo_in_test_mode(tmp_path):
    """The demo's own commands (from the Makefile), on a small local corpus for a few steps."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 30)
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "demo",
            "STAMP=",  # no install step: this interpreter already has everything
            "LAB_STAMP=",
            f"PY={sys.executable}",
            f"DEMO_OUT={out}",
            f"DEMO_TRAIN_ARGS=--corpus {corpus} --max-steps 2 --eval-interval 2 --eval-batches 1 "
            "--block-size 32 --no-progress",
            "DEMO_GENERATE_ARGS=--max-new-tokens 10 --num-beams 2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "checkpoint.pt").is_file()
    assert "--recipe shakespeare-char" in result.stdout
    samples = re.split(r"==== (greedy|top-k|top-p|beam) ====\n", result.stdout)
    assert samples[1::2] == ["greedy", "top-k", "top-p", "beam"]
    assert all(sample.startswith("ROMEO:") for sample in samples[2::2])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (tiny) checkpoint written by the train command."""
    out = tmp_path_factory.mktemp("run")
    corpus = out / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 20)
    args = ["train", "--corpus", str(corpus), "--recipe", "shakespeare-char", "--out", str(out)]
    args += ["--max-steps", "1", "--block-size", "16", "--eval-batches", "1", "--no-progress"]
    assert cli(args) == 0
    return out / "checkpoint.pt"


def test_generate_from_checkpoint(checkpoint, capsys):
    assert cli(["generate", "--checkpoint", str(checkpoint.parent), "--prompt", "To be"]) == 0
    assert capsys.readouterr().out.startswith("To be")


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"this is not a checkpoint\n", id="text file"),
    ],
)
def test_broken_checkpoint_is_a_clear_error(checkpoint, tmp_path, capsys, make_bad):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(make_bad(checkpoint.read_bytes()))
    assert cli(["generate", "--checkpoint", str(bad)]) == 2  # an error message, no traceback
    assert "checkpoint" in capsys.readouterr().err


def test_foreign_checkpoint_is_a_clear_error(tmp_path, capsys):
    foreign = tmp_path / "pytorch_model.bin"  # e.g. a GPT-2 file passed to generate
    torch.save({"wte.weight": torch.zeros(4, 2)}, foreign)
    assert cli(["generate", "--checkpoint", str(foreign)]) == 2
    assert "not a tinylm checkpoint" in capsys.readouterr().err
