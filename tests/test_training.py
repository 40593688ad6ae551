"""Tests for tinylm_core.training: data pieces, schedule, optimizer groups, the Trainer against a
hand-written reference loop, checkpoints (atomic, weights_only, exact resume), Ctrl-C, the NaN guard
and the train CLI. DDP lives in test_ddp.py."""

import argparse
import json
import math
import os
import signal

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.model import ModelConfig, TransformerLM
from tinylm_core.training import (
    RECIPES,
    TextDataset,
    TokenWindowDataset,
    Trainer,
    TrainingConfig,
    add_train_arguments,
    collate_fn,
    configure_optimizer,
    get_cosine_schedule_with_warmup,
    load_checkpoint,
    read_metrics,
    resolve_device,
    run_train,
    save_checkpoint,
    tokenizer_from_dict,
)

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n"
) * 20


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer().build_vocab(TEXT)


@pytest.fixture(scope="module")
def tokens(tokenizer):
    return torch.tensor(tokenizer.encode(TEXT), dtype=torch.long)


def tiny_model(vocab_size, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size, d_model=16, num_layers=1, num_heads=2, d_ff=32, max_seq_len=16, dropout=dropout
    )
    return TransformerLM.from_config(config)


def trainer_for(tokenizer, tokens, out, dropout=0.0, batch_size=4, **kwargs):
    train, val = TokenWindowDataset.train_val(tokens, 16)
    kwargs = {"log_interval": 1, "progress": False, "warmup_steps": 2, **kwargs}
    return Trainer(
        model=tiny_model(tokenizer.get_vocab_size(), dropout),
        train_dataloader=DataLoader(train, batch_size=batch_size, shuffle=True),
        eval_dataloader=DataLoader(val, batch_size=8),
        output_dir=out,
        tokenizer=tokenizer,
        **kwargs,
    )


# --- data ---------------------------------------------------------------------------------------


def test_collate_fn_pads_and_aligns_against_brute_force(tokenizer):
    texts = ["Speak, speak.", "All:", "You are all resolved rather to die"]
    ds = TextDataset(texts, tokenizer, max_length=20)
    batch = collate_fn([ds[i] for i in range(3)])
    T = batch["input_ids"].shape[1]
    for i, text in enumerate(texts):
        ids = (tokenizer.encode(text) + [tokenizer.eos_token_id])[:21]
        n = len(ids) - 1
        for t in range(T):
            real = t < n
            assert batch["attention_mask"][i, t] == int(real)
            assert batch["input_ids"][i, t] == (ids[t] if real else 0)
            assert batch["labels"][i, t] == (ids[t + 1] if real else -100)
    assert T == 20  # the longest text was cut to max_length + 1 tokens


def test_text_dataset_rejects_bad_input(tokenizer):
    with pytest.raises(TypeError, match="list of strings"):
        TextDataset("one string", tokenizer)
    with pytest.raises(ValueError, match="max_length"):
        TextDataset(["abc"], tokenizer, max_length=0)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        TextDataset([""], tokenizer)


def test_token_windows_match_brute_force(tokens):
    for stride in (1, 5, 16):
        ds = TokenWindowDataset(tokens[:200], 16, stride=stride)
        starts = [s for s in range(0, 200, stride) if s + 17 <= 200]
        assert len(ds) == len(starts)
        for i, s in enumerate(starts):
            assert torch.equal(ds[i]["input_ids"], tokens[s : s + 16])
            assert torch.equal(ds[i]["labels"], tokens[s + 1 : s + 17])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_train_val_split_by_position_does_not_leak(tokens):
    train, val = TokenWindowDataset.train_val(tokens, 16, val_fraction=0.2)
    split = int(len(tokens) * 0.8)
    assert torch.equal(train.tokens, tokens[:split]) and torch.equal(val.tokens, tokens[split:])
    last_train = train[len(train) - 1]
    assert torch.equal(last_train["labels"][-1:], tokens[split - 1 : split])  # ends at the cut
    covered = torch.cat([val[i]["input_ids"] for i in range(len(val))])
    assert torch.equal(covered, tokens[split : split + len(covered)])  # non-overlapping windows


def test_token_windows_reject_bad_input(tokens):
    with pytest.raises(ValueError, match="too few"):
        TokenWindowDataset(tokens[:10], 16)
    with pytest.raises(ValueError, match="flat stream"):
        TokenWindowDataset(tokens[:64].view(4, 16), 4)
    with pytest.raises(ValueError, match="val_fraction"):
        TokenWindowDataset.train_val(tokens, 16, val_fraction=1.5)


# --- optimisation pieces ------------------------------------------------------------------------


def nanogpt_lr(it, lr, warmup, total, min_lr):
    """nanoGPT's get_lr (train.py), with warmup (it + 1) / (warmup + 1): the reference."""
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > total:
        return min_lr
    ratio = (it - warmup) / (total - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def test_schedule_matches_reference_formula():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    schedule = get_cosine_schedule_with_warmup(opt, 10, 100, min_lr_ratio=0.1)
    for step in range(120):
        assert math.isclose(
            schedule.get_last_lr()[0], nanogpt_lr(step, 1e-3, 10, 100, 1e-4), rel_tol=1e-9
        )
        opt.step()
        schedule.step()


def test_schedule_rejects_bad_arguments():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    with pytest.raises(ValueError, match="num_training_steps"):
        get_cosine_schedule_with_warmup(opt, 0, 0)
    with pytest.raises(ValueError, match="num_warmup_steps"):
        get_cosine_schedule_with_warmup(opt, 20, 10)
    with pytest.raises(ValueError, match="min_lr_ratio"):
        get_cosine_schedule_with_warmup(opt, 0, 10, min_lr_ratio=2.0)


def test_weight_decay_only_on_matrices(tokenizer):
    model = tiny_model(tokenizer.get_vocab_size())
    decay, no_decay = configure_optimizer(model, 1e-3, weight_decay=0.1).param_groups
    named = dict(model.named_parameters())  # tied weights appear once
    assert {id(p) for p in decay["params"]} == {id(p) for p in named.values() if p.dim() >= 2}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in named.values() if p.dim() < 2}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert any("bias" in n for n, p in named.items() if p.dim() < 2)  # biases are there, undecayed


def test_config_validation():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainingConfig(learning_rate=0)
    with pytest.raises(ValueError, match="precision"):
        TrainingConfig(precision="fp8")
    with pytest.raises(ValueError, match="min_lr"):
        TrainingConfig(learning_rate=1e-3, min_lr=1e-2)
    with pytest.raises(TypeError):
        Trainer(tiny_model(10), [], output_dir=None, no_such_option=1)
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device("auto") == torch.device("cpu")


# --- the Trainer --------------------------------------------------------------------------------


def test_trainer_matches_a_hand_written_loop(tokenizer, tokens):
    """Same batches, same init: the Trainer's weights equal those of a plain AdamW loop with the
    nanoGPT learning-rate formula, decay groups and clipping written out by hand."""
    train, _ = TokenWindowDataset.train_val(tokens, 16)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(6):
        idx = torch.randint(len(train), (4,), generator=g).tolist()
        batches.append(
            {
                "input_ids": torch.stack([train[i]["input_ids"] for i in idx]),
                "labels": torch.stack([train[i]["labels"] for i in idx]),
            }
        )
    V = tokenizer.get_vocab_size()
    trainer = Trainer(
        tiny_model(V),
        batches,
        output_dir=None,
        progress=False,
        learning_rate=3e-3,
        min_lr=3e-4,
        warmup_steps=2,
        max_grad_norm=0.5,
        weight_decay=0.1,
    )
    trainer.train(max_steps=6)

    ref = tiny_model(V)
    params = list(ref.parameters())
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=3e-3,
        betas=(0.9, 0.95),
    )
    for step, batch in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = nanogpt_lr(step, 3e-3, 2, 6, 3e-4)
        logits = ref(batch["input_ids"]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        opt.zero_grad()
    for (name, a), b in zip(trainer.raw_model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_gradient_accumulation_equals_one_big_batch(tokenizer, tokens):
    big = trainer_for(tokenizer, tokens, None, batch_size=8)
    big.train(max_steps=3)
    accumulated = trainer_for(tokenizer, tokens, None, batch_size=4, grad_accum_steps=2)
    accumulated.train(max_steps=3)
    for a, b in zip(big.raw_model.parameters(), accumulated.raw_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_training_learns_and_writes_metrics_and_checkpoint(tokenizer, tokens, tmp_path):
    trainer = trainer_for(tokenizer, tokens, tmp_path, learning_rate=1e-2, eval_interval=10)
    before = trainer.evaluate()["val_loss"]
    summary = trainer.train(max_steps=30)
    assert summary["step"] == 30 and summary["val_loss"] < before - 0.5
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 31))
    assert [r["step"] for r in records if "val_loss" in r] == [10, 20, 30]
    assert math.isclose(records[-1]["val_ppl"], math.exp(records[-1]["val_loss"]))
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "metrics.jsonl"]

    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # no pickled objects inside
    assert raw["step"] == 30 and raw["tokenizer"]["type"] == "char"
    model, tok, info = load_checkpoint(tmp_path)
    assert not model.training and info["step"] == 30
    assert info["metrics"]["val_loss"] == summary["val_loss"]
    x = tokens[None, :16]
    torch.testing.assert_close(model(x).logits, trainer.raw_model.eval()(x).logits)
    assert tok.encode("Speak") == tokenizer.encode("Speak")
    assert tokenizer_from_dict(tokenizer.to_dict()).itos == tokenizer.itos


def test_evaluate_is_token_weighted_over_padded_batches(tokenizer):
    texts = ["Speak, speak.", "All:", "You are all resolved rather to die", "Before we"]
    ds = TextDataset(texts, tokenizer, max_length=15)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate_fn)
    trainer = Trainer(tiny_model(tokenizer.get_vocab_size()), loader, loader, output_dir=None)
    total, count = 0.0, 0
    model = trainer.raw_model.eval()
    for text in texts:  # one document at a time, no padding at all
        ids = torch.tensor([(tokenizer.encode(text) + [tokenizer.eos_token_id])[:16]])
        logits = model(ids[:, :-1]).logits[0]
        total += F.cross_entropy(logits, ids[0, 1:], reduction="sum").item()
        count += ids.shape[1] - 1
    assert math.isclose(trainer.evaluate()["val_loss"], total / count, rel_tol=1e-5)


def test_bf16_autocast_trains_on_cpu(tokenizer, tokens):
    trainer = trainer_for(tokenizer, tokens, None, precision="bf16")
    assert trainer.autocast_dtype == torch.bfloat16
    assert math.isfinite(trainer.train(max_steps=2)["train_loss"])


class _PressCtrlC(Dataset):
    """Sends SIGINT to this process when item number `at` is fetched (a user pressing Ctrl-C)."""

    def __init__(self, dataset, at):
        self.dataset, self.at, self.fetched = dataset, at, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        self.fetched += 1
        if self.fetched == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.dataset[index]


def test_ctrl_c_saves_and_resume_equals_uninterrupted_run(tokenizer, tokens, tmp_path):
    def run(out, wrap=None, resume=False):
        trainer = trainer_for(tokenizer, tokens, out, dropout=0.2, eval_interval=4)
        if wrap is not None:
            loader = trainer.train_loader
            trainer.train_loader = DataLoader(
                wrap(loader.dataset),
                batch_size=4,
                sampler=loader.sampler,
                generator=loader.generator,
            )
        summary = trainer.train(max_steps=10, resume_from=out if resume else None)
        return trainer, summary

    straight, _ = run(tmp_path / "a")
    handler = signal.getsignal(signal.SIGINT)
    _, stopped = run(tmp_path / "b", wrap=lambda ds: _PressCtrlC(ds, at=6 * 4))
    assert signal.getsignal(signal.SIGINT) is handler  # the Trainer put the handler back
    assert stopped["stopped_early"] and stopped["step"] == 6
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 6
    resumed, summary = run(tmp_path / "b", resume=True)
    assert summary["step"] == 10 and not summary["stopped_early"]
    untimed = lambda d: [
        {k: v for k, v in r.items() if k not in ("tokens_per_sec", "ms_per_step")}
        for r in read_metrics(d)
    ]
    assert untimed(tmp_path / "a") == untimed(tmp_path / "b")  # losses, val losses, lr, norms
    for a, b in zip(straight.raw_model.parameters(), resumed.raw_model.parameters()):
        assert torch.equal(a, b)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tokenizer, tokens, tmp_path):
    trainer = trainer_for(tokenizer, tokens, tmp_path)
    trainer.train(max_steps=2)
    good = (tmp_path / "checkpoint.pt").read_bytes()
    with torch.no_grad():
        trainer.raw_model.token_embedding.weight[:] = float("inf")
    poisoned = [p.clone() for p in trainer.raw_model.parameters()]
    with pytest.raises(FloatingPointError, match="diverged at step 3.*last good checkpoint"):
        trainer.train(max_steps=4)  # the same Trainer goes on from step 2
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    for a, b in zip(trainer.raw_model.parameters(), poisoned):  # no update was applied
        assert torch.equal(a, b)


def test_checkpoint_write_is_atomic(tokenizer, tmp_path, monkeypatch):
    model = tiny_model(tokenizer.get_vocab_size())
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, tokenizer, step=1)

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, tokenizer, step=2)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind
    assert load_checkpoint(path)[2]["step"] == 1  # the previous checkpoint is intact


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tinylm checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        tokenizer_from_dict({"type": "wordpiece"})


def test_damaged_checkpoints_are_a_clear_value_error(tokenizer, tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", tiny_model(tokenizer.get_vocab_size()), tokenizer)
    data = good.read_bytes()
    bad = {
        "truncated.pt": data[: len(data) // 2],
        "random.pt": bytes(
            torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0))
        ),
        "text.pt": b"this is not a checkpoint\n",
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"format": "tinylm-checkpoint", "version": 1}, tmp_path / "no_keys.pt")
    torch.save([1, 2, 3], tmp_path / "a_list.pt")
    state = torch.load(good, weights_only=True)
    state["model"] = {k: v[:1] for k, v in state["model"].items()}  # wrong shapes
    torch.save(state, tmp_path / "wrong_shapes.pt")
    for name in [*bad, "no_keys.pt", "a_list.pt", "wrong_shapes.pt"]:
        path = tmp_path / name
        with pytest.raises(ValueError, match="(?s)tinylm checkpoint.*re-train or use another") as e:
            load_checkpoint(path)
        assert str(path) in str(e.value), name  # the message names the file
    assert load_checkpoint(good)[2]["path"] == str(good)  # the good one still loads


def test_train_needs_a_length(tokenizer):
    trainer = Trainer(tiny_model(tokenizer.get_vocab_size()), iter([]), output_dir=None)
    with pytest.raises(ValueError, match="num_epochs or max_steps"):
        trainer.train()
    with pytest.raises(ValueError, match="pass max_steps"):
        trainer.train(num_epochs=1)


def test_num_epochs_counts_batches(tokenizer):
    ds = TextDataset(["Speak, speak.", "All:", "Before we", "You are"] * 3, tokenizer)
    loader = DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate_fn)
    trainer = Trainer(
        tiny_model(tokenizer.get_vocab_size()), loader, output_dir=None, progress=False
    )
    assert trainer.train(num_epochs=2)["step"] == 6  # 12 documents / 4 per batch, twice


# --- the command line ---------------------------------------------------------------------------


def test_cli_trains_writes_a_loadable_checkpoint_and_resumes(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    parser = add_train_arguments(argparse.ArgumentParser())
    flags = [
        "--corpus",
        str(corpus),
        "--recipe",
        "nanogpt-cpu",
        "--batch-size",
        "2",
        "--block-size",
        "16",
        "--eval-batches",
        "2",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    assert run_train(parser.parse_args(flags + ["--max-steps", "2"])) == 0
    model, tokenizer, info = load_checkpoint(tmp_path / "run")
    assert info["step"] == 2 and model.config.max_seq_len == 16
    assert model.config.d_model == RECIPES["nanogpt-cpu"]["model"]["d_model"]
    assert info["training_config"]["learning_rate"] == 1e-3  # from the recipe
    assert run_train(parser.parse_args(flags + ["--max-steps", "4", "--resume"])) == 0
    assert load_checkpoint(tmp_path / "run")[2]["step"] == 4
    steps = [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 4
    assert "val loss" in capsys.readouterr().out


def test_cli_help_explains_every_flag():
    parser = add_train_arguments(argparse.ArgumentParser())
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    help_text = parser.format_help()
    for flag in ("--corpus", "--tokenizer", "--preset", "--max-steps", "--out", "--recipe"):
        assert flag in help_text
