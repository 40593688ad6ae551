# This file is generated from notebooks/09_finetuning.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "final_hidden_states",
    "SequenceClassifier",
    "classification_collate",
    "PROMPT_TEMPLATE",
    "format_prompt",
    "encode_instruction",
    "InstructionDataset",
    "instruction_collate",
]


# cell 16
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from tinylm_core.model import LMOutput, TransformerLM


def final_hidden_states(model: TransformerLM, input_ids, attention_mask=None) -> torch.Tensor:
    """The output of `model.ln_f` at every position, (B, T, d_model): what lm_head reads."""
    # A hook rather than a copy of forward(): whatever lesson 05's blocks do, ln_f's output is the
    # final hidden state. It is removed again at once, so the model is left as it was.
    captured = []
    hook = model.ln_f.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        model(input_ids, attention_mask=attention_mask)
    finally:
        hook.remove()
    return captured[0]  # (B, T, C)


# cell 18
class SequenceClassifier(nn.Module):
    """A TransformerLM read by a linear head: one score per class for each sequence.

    forward(input_ids, targets=None, attention_mask=None) -> LMOutput(logits (B, num_classes),
    loss), so lesson 06's Trainer trains it with batches whose labels are class ids, shape (B,).
    pooling: "last" (the hidden state at the last real token) or "mean" (over the real tokens).
    """

    def __init__(self, backbone: TransformerLM, num_classes: int, pooling: str = "last"):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        self.backbone, self.num_classes, self.pooling = backbone, num_classes, pooling
        self.head = nn.Linear(backbone.config.d_model, num_classes)
        nn.init.normal_(self.head.weight, std=0.02)  # as every other layer of the model
        nn.init.zeros_(self.head.bias)

    # cell 20
    def pool(self, input_ids, attention_mask=None) -> torch.Tensor:
        """One vector per sequence, (B, d_model). Padding must be on the right."""
        hidden = final_hidden_states(self.backbone, input_ids, attention_mask)  # (B, T, C)
        B, T = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=torch.long, device=input_ids.device)
        if self.pooling == "mean":
            weights = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)  # (B, C)
        last = (attention_mask.sum(1) - 1).clamp(min=0)  # (B,) index of the last real token
        return hidden[torch.arange(B, device=hidden.device), last]  # (B, C)

    # cell 21
    def forward(self, input_ids, targets=None, attention_mask=None) -> LMOutput:
        """logits (B, num_classes); loss: mean cross-entropy with targets (B,) when given."""
        logits = self.head(self.pool(input_ids, attention_mask))  # (B, K)
        loss = None
        if targets is not None:
            if targets.shape != logits.shape[:1]:
                raise ValueError(
                    f"targets must be one class id per sequence, shape ({logits.size(0)},), got "
                    f"{tuple(targets.shape)}"
                )
            if targets.numel() and (targets.min() < 0 or targets.max() >= self.num_classes):
                raise ValueError(
                    f"labels must be class ids in 0..{self.num_classes - 1}, got values from "
                    f"{int(targets.min())} to {int(targets.max())}; check num_classes"
                )
            loss = F.cross_entropy(logits, targets)
        return LMOutput(logits, loss)


# cell 23
def classification_collate(batch, pad_token_id=0):
    """Items {"input_ids": (T_i,) ids, "label": class id} -> a right-padded batch with labels (B,)."""
    B, T = len(batch), max(len(item["input_ids"]) for item in batch)
    input_ids = torch.full((B, T), pad_token_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((B, T), dtype=torch.long)  # (B, T)
    for row, item in enumerate(batch):
        n = len(item["input_ids"])
        input_ids[row, :n] = torch.as_tensor(item["input_ids"])
        attention_mask[row, :n] = 1
    labels = torch.tensor([int(item["label"]) for item in batch])  # (B,)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# cell 33
PROMPT_TEMPLATE = "{instruction}: {input}\nanswer: "


def format_prompt(instruction: str, input: str) -> str:
    """The text before the answer; the answer follows it, then the tokenizer's eos token."""
    return PROMPT_TEMPLATE.format(instruction=instruction, input=input)


def encode_instruction(tokenizer, instruction: str, input: str) -> list[int]:
    """<bos> + the prompt's ids: what the model sees before it answers."""
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(
            "the template needs a tokenizer with bos and eos tokens (CharTokenizer has them)"
        )
    return [tokenizer.bos_token_id] + tokenizer.encode(format_prompt(instruction, input))


# cell 35
class InstructionDataset(Dataset):
    """(instruction, input, answer) triples as <bos> prompt answer <eos> ids; the collate function
    turns them into input_ids and labels, with -100 on the prompt when mask_prompt is True."""

    def __init__(self, examples, tokenizer, max_length=64, mask_prompt=True):
        self.items, self.mask_prompt = [], mask_prompt
        for instruction, input, answer in examples:
            prompt = encode_instruction(tokenizer, instruction, input)
            ids = prompt + tokenizer.encode(answer) + [tokenizer.eos_token_id]
            if len(ids) - 1 > max_length:  # n ids give n - 1 (input, target) pairs
                raise ValueError(
                    f"example {instruction!r}/{input!r} is {len(ids) - 1} tokens, over max_length="
                    f"{max_length}; shorten it or raise max_length (at most the model's max_seq_len)"
                )
            # how many leading ids are never targets: the prompt, or only <bos> without masking
            skip = len(prompt) if mask_prompt else 1
            self.items.append({"input_ids": torch.tensor(ids), "prompt_length": skip})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


# cell 36
def instruction_collate(batch, pad_token_id=0):
    """Pad InstructionDataset items into input_ids, attention_mask and labels (B, T): labels[:, t]
    is the id after input_ids[:, t], and -100 where that id belongs to the prompt or is padding."""
    seqs = [item["input_ids"] for item in batch]
    B, T = len(seqs), max(len(s) for s in seqs) - 1
    input_ids = torch.full((B, T), pad_token_id, dtype=torch.long)  # (B, T)
    labels = torch.full((B, T), -100, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((B, T), dtype=torch.long)  # (B, T)
    for row, (seq, item) in enumerate(zip(seqs, batch)):
        n = len(seq) - 1
        input_ids[row, :n], attention_mask[row, :n] = seq[:-1], 1
        labels[row, :n] = seq[1:]
        labels[row, : item["prompt_length"] - 1] = -100  # targets that are prompt tokens
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
