"""Checkpoint files (tinylm_core.checkpoint): atomic and checksummed writes of finite weights only,
one reader whose errors say what is wrong (missing, unsafe, damaged, foreign, a config that does not
match its weights, an unavailable device) and never suggest disabling the safe loader, and the
checks that refuse to resume a run with another model or tokenizer."""

import os
import random

import pytest
import torch
from conftest import tiny_model
from torch.utils.data import DataLoader

from tinylm_core import CharTokenizer
from tinylm_core.checkpoint import (
    checksum,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from tinylm_core.datasets import TokenWindowDataset
from tinylm_core.trainer import Trainer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 30
FIX = "(use another checkpoint or re-train|written by save_checkpoint)"


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer().build_vocab(TEXT)


@pytest.fixture
def good(tokenizer, tmp_path):
    """A valid checkpoint file of conftest's tiny model with this vocabulary."""
    model = tiny_model(vocab_size=tokenizer.get_vocab_size())
    return save_checkpoint(tmp_path / "good.pt", model, tokenizer, step=7)


def resave(state, path):
    """torch.save a (crafted) checkpoint dict with a valid checksum, as an attacker could."""
    state = {k: v for k, v in state.items() if k not in ("checksum", "path")}
    torch.save({**state, "checksum": checksum(state)}, path)
    return path


def test_round_trip_and_the_file_is_plain_data(good, tokenizer):
    model, tok, info = load_checkpoint(good)
    raw = torch.load(good, weights_only=True)  # no pickled objects inside
    assert raw["checksum"] == checksum({k: v for k, v in raw.items() if k != "checksum"})
    assert info["step"] == 7 and info["path"] == str(good) and not model.training
    assert tok.itos == tokenizer.itos
    x = torch.tensor([tokenizer.encode("First")])
    torch.testing.assert_close(model(x).logits, tiny_model(vocab_size=len(tokenizer))(x).logits)


def test_checkpoint_write_is_atomic(tokenizer, good, monkeypatch):
    model = tiny_model(vocab_size=tokenizer.get_vocab_size())

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(good, model, tokenizer, step=8)
    monkeypatch.undo()
    assert os.listdir(good.parent) == ["good.pt"]  # no temporary file left behind
    assert load_checkpoint(good)[2]["step"] == 7  # the previous checkpoint is intact


def test_a_planted_symlink_is_never_followed(tokenizer, good, tmp_path):
    # The old writer used the fixed name checkpoint.pt.tmp: a symlink planted there made it
    # overwrite the link's target.
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "checkpoint.pt"
    for name in ("checkpoint.pt.tmp", ".checkpoint.pt.tmp"):
        (tmp_path / name).symlink_to(victim)
    save_checkpoint(path, tiny_model(vocab_size=len(tokenizer)), tokenizer, step=1)
    assert victim.read_text() == "precious" and load_checkpoint(path)[2]["step"] == 1


def test_non_finite_weights_are_never_written(tokenizer, good):
    model = tiny_model(vocab_size=len(tokenizer))
    with torch.no_grad():
        model.ln_f.weight[0] = float("nan")
    before = good.read_bytes()
    with pytest.raises(FloatingPointError, match="1 of .* weights are NaN or infinite"):
        save_checkpoint(good, model, tokenizer, step=8)
    assert good.read_bytes() == before


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tinylm checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_damaged_checkpoints_are_a_clear_error_naming_the_file(good, tmp_path):
    data = good.read_bytes()
    bad = {
        "truncated.pt": data[: len(data) // 2],
        "random.pt": bytes(random.Random(0).randrange(256) for _ in range(4096)),
        "text.pt": b"this is not a checkpoint\n",
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"format": "tinylm-checkpoint", "version": 1}, tmp_path / "no_keys.pt")
    torch.save([1, 2, 3], tmp_path / "a_list.pt")
    state = torch.load(good, weights_only=True)
    state["model"] = {k: v[:1] for k, v in state["model"].items()}  # wrong shapes, stale checksum
    torch.save(state, tmp_path / "wrong_shapes.pt")
    resave(state, tmp_path / "wrong_shapes_resummed.pt")  # ... and with a matching checksum
    for name in [*bad, "no_keys.pt", "a_list.pt", "wrong_shapes.pt", "wrong_shapes_resummed.pt"]:
        path = tmp_path / name
        with pytest.raises(ValueError, match=FIX) as e:
            load_checkpoint(path)
        assert str(path) in str(e.value), name  # the message names the file


def test_bit_flips_are_detected_never_loaded_as_other_weights(good, tmp_path):
    # Before checksums, 200 of 200 single-bit flips loaded and 71 gave different weights.
    reference = load_checkpoint(good)[0].state_dict()
    data, rng, detected = good.read_bytes(), random.Random(0), 0
    for trial in range(100):
        flipped = bytearray(data)
        position = rng.randrange(len(data))
        flipped[position] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{trial}.pt"
        path.write_bytes(flipped)
        try:
            model, _, info = load_checkpoint(path)
        except ValueError as e:
            assert str(path) in str(e)
            detected += 1
            continue
        assert info["step"] == 7, position  # a flip that loads changed nothing
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, reference[name]), (position, name)
    assert detected >= 50  # most bytes of a small checkpoint are its tensors


def test_unsafe_content_is_refused_without_advice_to_disable_safety(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "tinylm-checkpoint", "version": 2, "x": Payload()}, path)
    with pytest.raises(ValueError, match="not plain data.*nothing in it ran") as e:
        load_checkpoint(path)
    message = str(e.value)
    assert str(path) in message and "exec" in message and not marker.exists()
    for advice in ("weights_only", "safe_globals", "add_safe_globals"):
        assert advice not in message
    assert e.value.__cause__ is None and e.value.__suppress_context__  # not relayed either


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_unavailable_device_is_not_blamed_on_the_file(good):
    with pytest.raises(RuntimeError, match="'cuda' is not available.*is fine.*device='cpu'"):
        load_checkpoint(good, device="cuda")


@pytest.mark.parametrize(
    "change",
    [
        {"max_seq_len": 10**9},  # rope: 2 x 10^9 x head_dim cosines if it were allocated
        {"max_seq_len": 10**9, "positional_encoding": "learned"},
        {"vocab_size": 10**9},
        {"num_layers": 3},  # sane, but not what the tensors hold
        {"d_ff": "64"},
    ],
)
def test_crafted_model_config_is_refused_before_allocating(good, tmp_path, change):
    state = torch.load(good, weights_only=True)
    state["model_config"] = {**state["model_config"], "positional_encoding": "rope", **change}
    path = resave(state, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match=f"{path}.*(model_config|ModelConfig)"):
        load_checkpoint(path)


# --- resuming: one reader, and a run must continue with its own model and tokenizer -----------------


def trainer(tokenizer, out, block_size=16, text=TEXT):
    tokens = torch.tensor(tokenizer.encode(text))
    train, _ = TokenWindowDataset.train_val(tokens, block_size)
    model = tiny_model(vocab_size=len(tokenizer), max_seq_len=block_size)
    return Trainer(
        model,
        DataLoader(train, batch_size=4, shuffle=True),
        output_dir=out,
        tokenizer=tokenizer,
        progress=False,
    )


def test_resume_refuses_another_model_or_tokenizer(tokenizer, tmp_path):
    out = tmp_path / "run"
    trainer(tokenizer, out).train(max_steps=2)
    with pytest.raises(ValueError, match="another model.*max_seq_len 16 there, 24 here"):
        trainer(tokenizer, out, block_size=24).train(max_steps=4, resume_from=out)
    # Another corpus with a character set of the same size: ids would silently change meaning.
    shifted = "".join(chr(ord(c) + 1) if c.isalpha() else c for c in TEXT)
    other = CharTokenizer().build_vocab(shifted)
    assert len(other) == len(tokenizer) and other.itos != tokenizer.itos
    with pytest.raises(ValueError, match="tokenizer differs"):
        trainer(other, out, text=shifted).train(max_steps=4, resume_from=out)
    assert load_checkpoint(out)[1].itos == tokenizer.itos  # the checkpoint was left alone


def test_resume_from_a_corrupt_checkpoint_names_the_file(tokenizer, tmp_path):
    out = tmp_path / "run"
    trainer(tokenizer, out).train(max_steps=2)
    path = out / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=f"{path} is damaged"):
        trainer(tokenizer, out).train(max_steps=4, resume_from=out)


def test_resume_from_weights_only_is_refused(tokenizer, tmp_path):
    path = save_checkpoint(
        tmp_path / "w.pt", tiny_model(vocab_size=len(tokenizer), max_seq_len=16), tokenizer
    )
    assert read_checkpoint(path)["path"] == str(path)
    with pytest.raises(ValueError, match="weights only"):
        trainer(tokenizer, tmp_path / "run").train(max_steps=2, resume_from=path)


def test_resume_with_another_tokenizer_kind_is_refused(tokenizer, tmp_path):
    # Before: a char run resumed with --tokenizer bpe died in a raw size-mismatch traceback.
    from tinylm_core import BPETokenizer

    out = tmp_path / "run"
    trainer(tokenizer, out).train(max_steps=1)
    bpe = BPETokenizer.from_gpt2_files()
    with pytest.raises(
        ValueError, match=f"{out / 'checkpoint.pt'}.*vocab_size {len(tokenizer)} there, 50257 here"
    ):
        trainer(bpe, out).train(max_steps=2, resume_from=out)
