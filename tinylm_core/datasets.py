# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "TokenWindowDataset",
    "TextDataset",
    "collate_fn",
    "ResumableSampler",
    "shard_loader",
    "BatchStream",
]


# cell 9
import itertools

import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)


# cell 10
class TokenWindowDataset(Dataset):
    """Windows of `block_size` + 1 consecutive tokens cut from one long token stream.

    Window i starts at token i * stride: stride 1 gives every start position (for training, where a
    shuffled sampler turns them into random windows), stride = block_size gives non-overlapping
    windows that cover each token once (for evaluation). Items are already aligned:
    labels[t] = input_ids[t + 1].
    """

    def __init__(self, tokens, block_size, stride=1):
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be one flat stream, got shape {tuple(tokens.shape)}")
        if block_size < 1 or stride < 1:
            raise ValueError(f"block_size and stride must be >= 1, got {block_size} and {stride}")
        if len(tokens) < block_size + 1:
            raise ValueError(
                f"the stream has {len(tokens)} tokens, too few for one window of block_size "
                f"{block_size} (+1 target); use a smaller block_size or more text"
            )
        self.tokens, self.block_size, self.stride = tokens, block_size, stride

    # cell 12
    def __len__(self):
        return (len(self.tokens) - self.block_size - 1) // self.stride + 1

    # cell 12
    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        start = index * self.stride
        chunk = self.tokens[start : start + self.block_size + 1]
        return {"input_ids": chunk[:-1], "labels": chunk[1:]}  # (T,), (T,)

    # cell 15
    @classmethod
    def train_val(cls, tokens, block_size, val_fraction=0.1):
        """Split by position: the first part trains (every window), the last part validates
        (non-overlapping windows). No window crosses the split, so no val token leaks into training."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        tokens = torch.as_tensor(tokens, dtype=torch.long)
        split = int(len(tokens) * (1.0 - val_fraction))
        train = cls(tokens[:split], block_size, stride=1)
        val = cls(tokens[split:], block_size, stride=block_size)
        return train, val


# cell 20
class TextDataset(Dataset):
    """A list of documents, each encoded once and cut to at most `max_length` + 1 tokens.

    One token more than the model sees, because n tokens give n - 1 (input, next token) pairs:
    `collate_fn` shifts them into `input_ids` and `labels`. The tokenizer's end-of-text token
    (if it has one) closes every document, so the model learns where a document stops.
    """

    def __init__(self, texts, tokenizer, max_length=128):
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string; wrap it: [text]")
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        self.max_length = max_length
        self.examples = []
        for text in texts:
            ids = (tokenizer.encode(text) + eos)[: max_length + 1]
            if len(ids) >= 2:  # a single token has no next token to predict
                self.examples.append(torch.tensor(ids, dtype=torch.long))
        if not self.examples:
            raise ValueError("no text gave at least 2 tokens; pass non-empty texts")

    # cell 21
    def __len__(self):
        return len(self.examples)

    # cell 21
    def __getitem__(self, index):
        return {"input_ids": self.examples[index]}


# cell 23
def collate_fn(batch, pad_token_id=0):
    """Pad a list of `TextDataset` items into one batch of aligned inputs and targets.

    labels[:, t] is the token that follows input_ids[:, t] (already shifted, as the model's
    `targets` expect) and -100 on padding, which the loss ignores. Padding goes on the right, where
    causal attention keeps real tokens from ever seeing it; attention_mask marks it anyway.
    """
    seqs = [item["input_ids"] for item in batch]
    B, T = len(seqs), max(len(s) for s in seqs) - 1
    input_ids = torch.full((B, T), pad_token_id, dtype=torch.long)  # (B, T)
    labels = torch.full((B, T), -100, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((B, T), dtype=torch.long)  # (B, T)
    for i, seq in enumerate(seqs):
        n = len(seq) - 1
        input_ids[i, :n] = seq[:-1]
        labels[i, :n] = seq[1:]
        attention_mask[i, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# cell 100
class ResumableSampler(DistributedSampler):
    """DistributedSampler (also used with one process) that can start part-way into an epoch.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches as an
    uninterrupted one, and every rank takes its own slice (rank, rank + world, ...) of it.
    """

    start = 0  # samples of this epoch (on this rank) already consumed

    def __iter__(self):
        return iter(list(super().__iter__())[self.start :])

    def __len__(self):
        return self.num_samples - self.start


# cell 103
def shard_loader(loader, world_size=1, rank=0, seed=0, shuffle=None):
    """-> (loader, sampler): a standard DataLoader rebuilt on a ResumableSampler (this rank's
    shard; shuffle=None keeps the loader's choice), or (loader, None) for anything else."""
    standard = isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset)
    samplers = RandomSampler | SequentialSampler
    if not (standard and loader.batch_size is not None and isinstance(loader.sampler, samplers)):
        return loader, None
    if shuffle is None:
        shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = ResumableSampler(loader.dataset, world_size, rank, shuffle=shuffle, seed=seed)
    rebuilt = DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        generator=torch.Generator().manual_seed(seed),
    )
    return rebuilt, sampler


# cell 104
class BatchStream:
    """Micro-batches forever, epoch after epoch, from where a resumed run left off; `epoch` and
    `batches_in_epoch` are its position, saved in checkpoints."""

    def __init__(self, loader, world_size=1, rank=0, seed=0):
        self.loader, self.sampler = shard_loader(loader, world_size, rank, seed)
        self.epoch, self.batches_in_epoch = 0, 0

    def __len__(self):
        return len(self.loader)  # batches per epoch; TypeError for a loader without a length

    def __iter__(self):
        while True:
            if self.sampler is not None:
                self.sampler.set_epoch(self.epoch)
                self.sampler.start = self.batches_in_epoch * self.loader.batch_size
                batches = iter(self.loader)
            else:
                batches = itertools.islice(self.loader, self.batches_in_epoch, None)
            for batch in batches:
                self.batches_in_epoch += 1
                yield batch
            self.epoch, self.batches_in_epoch = self.epoch + 1, 0
