"""Fixtures the test files share: one thread for tiny models, the course's corpus, a tiny model.

Every test runs offline: the corpus and GPT-2's vocabulary come from the repository's data/.
"""

from pathlib import Path

import pytest
import torch

from tinylm_core.model import TransformerLM

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TINY = dict(vocab_size=37, d_model=32, num_layers=2, num_heads=4, d_ff=64, max_seq_len=24)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models in tests are tiny: a second thread only adds synchronisation on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shakespeare() -> str:
    """All of Tiny Shakespeare (1,115,394 characters), from data/."""
    return (DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def gpt2_files() -> tuple[Path, Path]:
    """GPT-2's vocab.bpe and encoder.json, from data/gpt2/."""
    return DATA / "gpt2" / "vocab.bpe", DATA / "gpt2" / "encoder.json"


def tiny_model(seed=0, **overrides) -> TransformerLM:
    """A 2-layer, 32-wide model in eval mode, without dropout; `overrides` change any field."""
    torch.manual_seed(seed)
    return TransformerLM(**{**TINY, "dropout": 0.0, **overrides}).eval()


@pytest.fixture
def make_tiny_model():
    """The `tiny_model` factory, for tests that take fixtures rather than import helpers."""
    return tiny_model
