"""Tests for lesson 06's training pieces: datasets, schedule, optimizer groups, settings, the metrics
file and window, the Trainer against a hand-written reference loop, exact resume, Ctrl-C and the NaN
guard. Checkpoint files: test_checkpoint.py; the train command: test_cli.py; DDP: test_ddp.py."""

import json
import math
import os
import signal

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model
from torch.utils.data import DataLoader, Dataset

from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.checkpoint import load_checkpoint
from tinylm_core.datasets import BatchStream, TextDataset, TokenWindowDataset, collate_fn
from tinylm_core.metrics import MetricsWindow, read_metrics, write_metrics
from tinylm_core.optim import configure_optimizer, get_cosine_schedule_with_warmup, schedule_for
from tinylm_core.runtime import resolve_device
from tinylm_core.settings import TrainingConfig
from tinylm_core.trainer import Trainer

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


def model_for(vocab_size, dropout=0.0, seed=0):
    """conftest's tiny model for this vocabulary, 16 positions, in training mode."""
    return tiny_model(seed, vocab_size=vocab_size, max_seq_len=16, dropout=dropout).train()


def trainer_for(tokenizer, tokens, out, dropout=0.0, batch_size=4, wrap=None, **kwargs):
    train, val = TokenWindowDataset.train_val(tokens, 16)
    train = wrap(train) if wrap is not None else train
    kwargs = {"log_interval": 1, "progress": False, "warmup_steps": 2, **kwargs}
    return Trainer(
        model=model_for(tokenizer.get_vocab_size(), dropout),
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
    model = model_for(tokenizer.get_vocab_size())
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
        Trainer(model_for(10), [], output_dir=None, no_such_option=1)
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
        model_for(V),
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

    ref = model_for(V)
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
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.pt", "metrics.jsonl"]  # lock released

    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # no pickled objects inside
    assert raw["step"] == 30 and raw["tokenizer"]["type"] == "char"
    model, tok, info = load_checkpoint(tmp_path)
    assert not model.training and info["step"] == 30
    assert info["metrics"]["val_loss"] == summary["val_loss"]
    x = tokens[None, :16]
    torch.testing.assert_close(model(x).logits, trainer.raw_model.eval()(x).logits)
    assert tok.encode("Speak") == tokenizer.encode("Speak") and tok.itos == tokenizer.itos


def test_evaluate_is_token_weighted_over_padded_batches(tokenizer):
    texts = ["Speak, speak.", "All:", "You are all resolved rather to die", "Before we"]
    ds = TextDataset(texts, tokenizer, max_length=15)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate_fn)
    trainer = Trainer(model_for(tokenizer.get_vocab_size()), loader, loader, output_dir=None)
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


def test_ctrl_c_saves_and_resume_equals_uninterrupted_run(tokenizer, tokens, tmp_path):
    def run(out, wrap=None, resume=False):
        trainer = trainer_for(tokenizer, tokens, out, dropout=0.2, eval_interval=4, wrap=wrap)
        summary = trainer.train(max_steps=10, resume_from=out if resume else None)
        return trainer, summary

    straight, _ = run(tmp_path / "a")
    handler = signal.getsignal(signal.SIGINT)
    _, stopped = run(tmp_path / "b", wrap=lambda ds: _SendSignal(ds, at=6 * 4, sig=signal.SIGINT))
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


def test_train_needs_a_length(tokenizer):
    trainer = Trainer(model_for(tokenizer.get_vocab_size()), iter([]), output_dir=None)
    with pytest.raises(ValueError, match="num_epochs or max_steps"):
        trainer.train()
    with pytest.raises(ValueError, match="pass max_steps"):
        trainer.train(num_epochs=1)


def test_num_epochs_counts_batches(tokenizer):
    ds = TextDataset(["Speak, speak.", "All:", "Before we", "You are"] * 3, tokenizer)
    loader = DataLoader(ds, batch_size=4, shuffle=True, collate_fn=collate_fn)
    trainer = Trainer(
        model_for(tokenizer.get_vocab_size()), loader, output_dir=None, progress=False
    )
    assert trainer.train(num_epochs=2)["step"] == 6  # 12 documents / 4 per batch, twice


# --- settings: one source for every default, validated -------------------------------------------


@pytest.mark.parametrize(
    "field", ["learning_rate", "min_lr", "weight_decay", "max_grad_norm", "beta1", "beta2"]
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_config_rejects_non_finite_numbers(field, value):
    # NaN slipped through `value <= 0` checks: max_grad_norm=nan turned every gradient into NaN
    with pytest.raises(ValueError, match=f"TrainingConfig.{field} must be a finite number"):
        TrainingConfig(**{field: value})


def test_config_types_are_checked_and_numpy_integers_accepted():
    import numpy as np

    with pytest.raises(TypeError, match="warmup_steps must be int"):
        TrainingConfig(warmup_steps=2.5)
    with pytest.raises(TypeError, match="compile must be bool"):
        TrainingConfig(compile="yes")
    config = TrainingConfig(warmup_steps=np.int64(3), learning_rate=np.float32(1e-3))
    assert type(config.warmup_steps) is int and type(config.learning_rate) is float


def test_default_warmup_is_a_fraction_of_the_run():
    # The old default (100 warmup steps) made a 100-step run nothing but warmup.
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    schedule = schedule_for(opt, TrainingConfig(learning_rate=1.0), total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    assert max(lrs) == lrs[5] == 1.0  # 5% warmup, then the peak
    assert math.isclose(lrs[-1], 0.1, rel_tol=0.01)  # min_lr: a tenth of the peak


# --- metrics -------------------------------------------------------------------------------------


def test_read_metrics_skips_a_torn_last_line_only(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_metrics(path, [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')  # the writer was killed mid-line
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    path.write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_metrics(path)


def test_metrics_window_state_survives_a_resume():
    whole, first = MetricsWindow(), MetricsWindow()
    for loss in (1.0, 2.0, 3.0, 4.0):
        whole.add(loss, tokens=10)
    for loss in (1.0, 2.0):
        first.add(loss, tokens=10)
    second = MetricsWindow(**first.state_dict())
    for loss in (3.0, 4.0):
        second.add(loss, tokens=10)
    assert second.record(4)["loss"] == whole.record(4)["loss"] == 2.5


def test_batch_stream_resumes_mid_epoch():
    loader = DataLoader(range(10), batch_size=3, shuffle=True)
    stream = BatchStream(loader, seed=5)
    it = iter(stream)
    seen = [next(it).tolist() for _ in range(6)]  # two epochs of 4 batches, into the second
    again = BatchStream(loader, seed=5)
    again.epoch, again.batches_in_epoch = stream.epoch, stream.batches_in_epoch
    assert next(iter(again)).tolist() == next(it).tolist()
    assert sorted(sum(seen[:4], [])) == list(range(10))  # an epoch covers every item once


# --- stopping and resuming -------------------------------------------------------------------------


class _SendSignal(Dataset):
    """Sends `sig` to this process when item number `at` is fetched (Ctrl-C, or a scheduler)."""

    def __init__(self, dataset, at, sig):
        self.dataset, self.at, self.sig, self.fetched = dataset, at, sig, 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        self.fetched += 1
        if self.fetched == self.at:
            os.kill(os.getpid(), self.sig)
        return self.dataset[index]


def test_sigterm_saves_a_checkpoint_like_ctrl_c(tokenizer, tokens, tmp_path):
    handler = signal.getsignal(signal.SIGTERM)
    wrap = lambda ds: _SendSignal(ds, at=3 * 4, sig=signal.SIGTERM)
    trainer = trainer_for(tokenizer, tokens, tmp_path, wrap=wrap)
    summary = trainer.train(max_steps=50)
    assert summary["stopped_early"] and summary["step"] == 3
    assert summary["val_loss"] is None  # stopped before the first evaluation: not measured
    assert load_checkpoint(tmp_path)[2]["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is handler


def test_first_record_after_a_mid_window_resume_averages_the_whole_window(
    tokenizer, tokens, tmp_path
):
    # log_interval 4, Ctrl-C during step 6: the record at step 8 must average steps 5-8, as an
    # uninterrupted run's does, not only steps 7-8.
    def run(out, wrap=None, resume=False):
        trainer = trainer_for(tokenizer, tokens, out, log_interval=4, wrap=wrap)
        trainer.train(max_steps=12, resume_from=out if resume else None)

    untimed = lambda d: [
        {k: v for k, v in r.items() if k not in ("tokens_per_sec", "ms_per_step")}
        for r in read_metrics(d)
    ]
    run(tmp_path / "a")
    run(tmp_path / "b", wrap=lambda ds: _SendSignal(ds, at=6 * 4, sig=signal.SIGINT))
    assert [r["step"] for r in read_metrics(tmp_path / "b")] == [4]
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "loss": 1.')  # a torn last line must not stop the resume
    run(tmp_path / "b", resume=True)
    assert untimed(tmp_path / "a") == untimed(tmp_path / "b")
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert all(json.loads(line)["step"] for line in lines)  # rewritten without the torn line


def test_divergence_message_says_when_weights_were_already_broken(tokenizer, tokens, tmp_path):
    trainer = trainer_for(tokenizer, tokens, tmp_path)
    trainer.train(max_steps=2)
    model = trainer.raw_model
    with torch.no_grad():
        model.ln_f.weight[0] = float("nan")
    fresh = Trainer(model, trainer.batches.loader, output_dir=tmp_path / "b", progress=False)
    with pytest.raises(FloatingPointError, match="already held NaN.*wrote no checkpoint"):
        fresh.train(max_steps=2)
    assert not (tmp_path / "b" / "checkpoint.pt").exists()


def test_model_in_eval_mode_still_trains_with_dropout(tokenizer, tokens):
    trainer = trainer_for(tokenizer, tokens, None, dropout=0.5)
    trainer.raw_model.eval()
    trainer.train(max_steps=1)
    assert trainer.raw_model.training


def test_output_dir_needs_a_model_whose_checkpoints_can_be_read_back(tmp_path, tokens):
    """A model without a ModelConfig (lesson 09's classifier) fails at once, not after training."""
    from tinylm_core.finetune import SequenceClassifier

    classifier = SequenceClassifier(tiny_model(), num_classes=2)
    loader = DataLoader(TokenWindowDataset(tokens, 8), batch_size=2)
    with pytest.raises(ValueError, match="no ModelConfig; pass output_dir=None"):
        Trainer(classifier, loader, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    Trainer(classifier, loader, output_dir=None)  # writing nothing is fine
