"""Lesson 09: the classifier, the instruction data set with masked labels, and LoRA.

Each test checks behaviour that could break against an independent reference: the pretrained
model itself, a cross-entropy written out by hand, nn.Linear, PyTorch's own gradients.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model
from torch.utils.data import DataLoader

from tinylm_core.char_tokenizer import CharTokenizer
from tinylm_core.finetune import (
    InstructionDataset,
    SequenceClassifier,
    classification_collate,
    encode_instruction,
    final_hidden_states,
    instruction_collate,
)
from tinylm_core.lora import LoRALinear, apply_lora, load_lora, merge_lora, save_lora
from tinylm_core.trainer import Trainer

ALL_LINEAR = ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj")
QUIET = dict(output_dir=None, progress=False, eval_interval=None, checkpoint_interval=None)


def random_batches(n=4, batch=8, length=12, vocab=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(0, vocab, (batch, length + 1), generator=g)
        out.append({"input_ids": ids[:, :-1], "labels": ids[:, 1:]})
    return out


def train(model, batches, steps, **overrides):
    settings = {**QUIET, "learning_rate": 1e-2, **overrides}
    return Trainer(model, batches, **settings).train(max_steps=steps)


def test_lora_at_initialisation_leaves_outputs_unchanged():
    model = tiny_model()
    ids = torch.randint(0, 37, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits
        apply_lora(model, rank=4, alpha=8, target_modules=ALL_LINEAR)
        after = model(ids).logits
    assert torch.equal(before, after)
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    assert len(wrapped) == 2 * len(ALL_LINEAR)  # two blocks


def test_lora_linear_matches_its_definition():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    lora = LoRALinear(copy.deepcopy(base), rank=2, alpha=3.0)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(4, 6)
    expected = base(x) + (3.0 / 2) * x @ (lora.lora_B @ lora.lora_A).T  # W x + (alpha/r) B A x
    assert torch.allclose(lora(x), expected, atol=1e-6)
    assert torch.allclose(lora.merged()(x), expected, atol=1e-6)


def test_only_lora_parameters_train_and_base_weights_stay_bit_identical():
    model = apply_lora(tiny_model().train(), rank=2, alpha=4, target_modules=ALL_LINEAR)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora" not in n}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora" in n}
    # gradients: only LoRA matrices receive one
    batch = random_batches(1)[0]
    model(batch["input_ids"], targets=batch["labels"]).loss.backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == set(lora_before)
    model.zero_grad(set_to_none=True)
    train(model, random_batches(), steps=6, weight_decay=0.1)  # decay must not touch frozen ones
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    assert any(
        not torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if "lora" in n
    )


def test_merged_and_unmerged_models_give_the_same_logits_after_training():
    model = apply_lora(tiny_model().train(), rank=4, alpha=16, target_modules=ALL_LINEAR)
    train(model, random_batches(), steps=8)
    model.eval()
    ids = random_batches(1, seed=5)[0]["input_ids"]
    with torch.no_grad():
        unmerged = model(ids).logits
        assert (unmerged - tiny_model()(ids).logits).abs().max() > 1e-3  # training changed it
        merge_lora(model)
        merged = model(ids).logits
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert type(model.blocks[0].attn.qkv) is torch.nn.Linear
    assert (merged - unmerged).abs().max() <= 1e-5


def test_classifier_learns_a_separable_task_to_100_percent():
    # class k: sequences of random ids from the k-th third of the vocabulary, of varied lengths
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(96):
        label, length = i % 3, 3 + i % 7
        low = 4 + 11 * label
        items.append(
            {"input_ids": torch.randint(low, low + 11, (length,), generator=g), "label": label}
        )
    torch.manual_seed(0)
    classifier = SequenceClassifier(tiny_model().train(), num_classes=3, pooling="mean")
    loader = DataLoader(items, batch_size=16, shuffle=True, collate_fn=classification_collate)
    train(classifier, loader, steps=60, learning_rate=3e-3)
    batch = classification_collate(items)
    with torch.no_grad():
        classifier.eval()
        predicted = classifier(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (predicted.argmax(1) == batch["labels"]).all()


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooling_ignores_right_padding(pooling):
    torch.manual_seed(0)
    classifier = SequenceClassifier(tiny_model(), num_classes=2, pooling=pooling).eval()
    items = [
        {"input_ids": torch.tensor(ids), "label": 0} for ids in ([5, 6, 7], [8, 9, 10, 11, 12])
    ]
    batch = classification_collate(items)
    with torch.no_grad():
        together = classifier(batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        hidden = final_hidden_states(classifier.backbone, items[0]["input_ids"][None])[0]  # (T, C)
        expected = hidden[-1] if pooling == "last" else hidden.mean(0)
        assert torch.allclose(together[0], classifier.head(expected), atol=1e-5)
        alone = classifier(items[1]["input_ids"][None]).logits[0]
    assert torch.allclose(together[1], alone, atol=1e-5)


def test_masked_loss_equals_a_hand_computation_over_answer_tokens():
    tokenizer = CharTokenizer().build_vocab("abcdefghijklmnopqrstuvwxyz: \nABCDEFGHIJ")
    examples = [("reverse", "abc", "cba"), ("upper", "hi", "HI")]
    data = InstructionDataset(examples, tokenizer, max_length=40)
    batch = instruction_collate([data[0], data[1]])
    model = tiny_model(vocab_size=tokenizer.get_vocab_size(), max_seq_len=40)
    with torch.no_grad():
        loss = model(batch["input_ids"], targets=batch["labels"]).loss
        logits = model(batch["input_ids"]).logits
    # by hand: the answer (and <eos>) sits at the end of each unpadded sequence
    terms = []
    for row, (instruction, text, answer) in enumerate(examples):
        ids = encode_instruction(tokenizer, instruction, text)
        full = ids + tokenizer.encode(answer) + [tokenizer.eos_token_id]
        for t in range(len(ids) - 1, len(full) - 1):  # position t predicts full[t + 1]
            terms.append(-F.log_softmax(logits[row, t], -1)[full[t + 1]])
    assert len(terms) == len("cba") + 1 + len("HI") + 1
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-6)
    assert int((batch["labels"] != -100).sum()) == len(terms)


def test_unmasked_labels_cover_the_prompt_too():
    tokenizer = CharTokenizer().build_vocab("abcdefghijklmnopqrstuvwxyz: \n")
    item = InstructionDataset([("sort", "cab", "abc")], tokenizer, mask_prompt=False)[0]
    batch = instruction_collate([item])
    assert torch.equal(batch["labels"][0], item["input_ids"][1:])  # every next id is a target
    with pytest.raises(ValueError, match="max_length"):
        InstructionDataset([("sort", "cab" * 10, "abc")], tokenizer, max_length=16)


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="rank"):
        apply_lora(tiny_model(), rank=0)
    with pytest.raises(ValueError, match="alpha"):
        apply_lora(tiny_model(), rank=2, alpha=0)
    with pytest.raises(ValueError, match="'attn.qvk'"):
        apply_lora(tiny_model(), rank=2, target_modules=("attn.qvk",))
    with pytest.raises(ValueError, match="lm_head"):
        apply_lora(tiny_model(), rank=2, target_modules=("lm_head",))  # tied to the embedding
    twice = apply_lora(tiny_model(), rank=2)
    with pytest.raises(ValueError, match="already has LoRA"):
        apply_lora(twice, rank=2)
    with pytest.raises(ValueError, match="no LoRA layers"):
        merge_lora(tiny_model())
    classifier = SequenceClassifier(tiny_model(), num_classes=3)
    ids = torch.randint(4, 37, (2, 5))
    with pytest.raises(ValueError, match="labels must be class ids in 0..2"):
        classifier(ids, targets=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels"):
        classifier(ids, targets=torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="num_classes"):
        SequenceClassifier(tiny_model(), num_classes=1)
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(tiny_model(), num_classes=2, pooling="max")


def lora_classifier(seed):
    torch.manual_seed(seed)
    classifier = SequenceClassifier(tiny_model(), num_classes=3)
    return apply_lora(classifier, rank=2, alpha=4, target_modules=ALL_LINEAR, train_also=("head",))


def test_lora_adapters_save_and_load(tmp_path):
    trained = lora_classifier(seed=0).train()
    assert all(p.requires_grad for p in trained.head.parameters())
    items = [{"input_ids": torch.randint(4, 37, (6,)), "label": i % 3} for i in range(16)]
    train(trained, DataLoader(items, batch_size=8, collate_fn=classification_collate), steps=3)
    save_lora(tmp_path / "adapters.pt", trained)
    fresh = lora_classifier(seed=1)  # another head and other A matrices before loading
    load_lora(tmp_path / "adapters.pt", fresh)
    trained.eval(), fresh.eval()
    ids = torch.randint(4, 37, (3, 7))
    with torch.no_grad():
        assert torch.equal(trained(ids).logits, fresh(ids).logits)
    # only the trained tensors are in the file: no base weight
    saved = torch.load(tmp_path / "adapters.pt", weights_only=True)
    assert all("lora" in name or name.startswith("head.") for name in saved["weights"])
    # refused: another rank, a damaged file, a file that is not adapters
    other = apply_lora(SequenceClassifier(tiny_model(), 3), rank=4, target_modules=ALL_LINEAR)
    with pytest.raises(ValueError, match="apply_lora"):
        load_lora(tmp_path / "adapters.pt", other)
    data = bytearray((tmp_path / "adapters.pt").read_bytes())
    (tmp_path / "cut.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ValueError, match="cut.pt"):
        load_lora(tmp_path / "cut.pt", lora_classifier(seed=0))
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a LoRA adapter file"):
        load_lora(tmp_path / "other.pt", lora_classifier(seed=0))


def test_trainer_checkpoint_of_a_lora_run_resumes(tmp_path):
    def run():
        model = apply_lora(tiny_model(seed=3).train(), rank=2, alpha=4, target_modules=ALL_LINEAR)
        settings = {**QUIET, "output_dir": tmp_path, "checkpoint_interval": 3}
        return Trainer(model, random_batches(6), **settings)

    straight = run()
    straight.train(max_steps=6)
    resumed = run()
    resumed.train(max_steps=6, resume_from=tmp_path / "checkpoint.pt")  # written at step 6
    for (name, a), b in zip(
        straight.raw_model.state_dict().items(), resumed.raw_model.state_dict().values()
    ):
        assert torch.equal(a, b), name
