# This file is generated from notebooks/10_inside_the_model.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "AttentionOnlyBlock",
    "attention_only",
    "repeated_random_tokens",
    "per_position_loss",
    "prefix_matching_score",
    "induction_head_by_hand",
]


# cell 49
import torch
import torch.nn as nn
import torch.nn.functional as F

from tinylm_core.model import TransformerBlock, TransformerLM
from tinylm_core.model_config import ModelConfig


# cell 50
class AttentionOnlyBlock(nn.Module):
    """A TransformerBlock without its MLP sub-layer: x + attn(ln_1(x))."""

    def __init__(self, block: TransformerBlock):
        super().__init__()
        self.ln_1, self.attn, self.dropout = block.ln_1, block.attn, block.dropout

    def forward(self, x, attention_mask=None, rotary=None, kv_cache=None):  # x: (B, T, C)
        a = self.attn(self.ln_1(x), attention_mask, rotary=rotary, kv_cache=kv_cache)
        return x + self.dropout(a)


# cell 52
def attention_only(model: TransformerLM) -> TransformerLM:
    """The same model with every block's MLP removed (in place; returns it). Its checkpoints
    load only into a model built the same way."""
    model.blocks = nn.ModuleList(AttentionOnlyBlock(block) for block in model.blocks)
    return model


# cell 54
def repeated_random_tokens(num_sequences, block_len, vocab, generator=None, distinct=False):
    """(num_sequences, 2 * block_len) long: a block of random tokens, then the same block again.
    vocab: a vocabulary size, or a 1-D tensor of the token ids to draw from. distinct: no token
    twice in a block, so that what followed a token earlier has a single answer."""
    vocab = torch.arange(vocab) if isinstance(vocab, int) else torch.as_tensor(vocab)
    if block_len < 1 or num_sequences < 1 or vocab.numel() < 1:
        raise ValueError("num_sequences, block_len and the vocabulary must all be at least 1")
    if distinct and block_len > vocab.numel():
        raise ValueError(f"{block_len} distinct tokens need a vocabulary of at least {block_len}")
    if distinct:  # a random permutation of the vocabulary per sequence, cut to block_len
        picks = torch.rand(num_sequences, vocab.numel(), generator=generator).argsort(dim=-1)
        picks = picks[:, :block_len]
    else:
        picks = torch.randint(vocab.numel(), (num_sequences, block_len), generator=generator)
    block = vocab[picks]  # (N, n)
    return torch.cat([block, block], dim=1)  # (N, 2n)


# cell 56
@torch.no_grad()
def per_position_loss(model, input_ids):
    """(T - 1,): the mean loss (nats) of predicting token t + 1 from tokens 0..t, per position t."""
    logits = model(input_ids[:, :-1]).logits  # (B, T - 1, V)
    losses = F.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:], reduction="none")
    return losses.mean(dim=0)  # (T - 1,)


# cell 58
def prefix_matching_score(weights, input_ids):
    """(..., H): per head, the weight a token puts on keys right after earlier occurrences of
    itself, averaged over the queries that have such a key. weights: (..., B, H, T, T)."""
    B, T = input_ids.shape
    same = input_ids[:, :, None] == input_ids[:, None, :]  # (B, T, T): token t equals token s
    follows = torch.zeros(B, T, T, dtype=torch.bool)
    follows[:, :, 1:] = same[:, :, :-1]  # key j follows an occurrence of token t at j - 1
    follows &= torch.ones(T, T, dtype=torch.bool).tril()  # j <= t: j - 1 came before t
    has_match = follows.any(dim=-1)  # (B, T)
    score = (weights * follows[:, None]).sum(dim=-1)  # (..., B, H, T)
    return (score * has_match[:, None]).sum(dim=(-3, -1)) / has_match.sum().clamp(min=1)


# cell 60
def induction_head_by_hand(vocab_size, max_seq_len, sharpness=20.0) -> TransformerLM:
    """A 2-layer attention-only model with one head per layer, weights set by hand: layer 0 is a
    previous-token head, layer 1 an induction head. No LayerNorm, no biases."""
    V, T = vocab_size, max_seq_len
    C = 3 * V + T  # channels: token | position | previous token | prediction
    tok, pos, prev, pred = (
        slice(0, V),
        slice(V, V + T),
        slice(V + T, 2 * V + T),
        slice(2 * V + T, C),
    )
    config = ModelConfig(V, d_model=C, num_layers=2, num_heads=1, d_ff=1, max_seq_len=T,
                         dropout=0.0, positional_encoding="learned", bias=False, tie_weights=False)  # fmt: skip
    model = attention_only(TransformerLM(config)).eval()
    model.ln_f = nn.Identity()
    s, eye_V = sharpness * C**0.5, torch.eye(V)  # scores are divided by sqrt(head_dim = C)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.token_embedding.weight[:, tok] = eye_V
        model.position_encoding.weight[:, pos] = torch.eye(T)
        for block in model.blocks:
            block.ln_1 = nn.Identity()
        # layer 0: the query of position t matches the key of position t - 1; copy its token
        q, k, v = model.blocks[0].attn.qkv.weight.view(3, C, C)  # each (out, in)
        q[pos, pos] = s * torch.eye(T)
        k[V + 1 : V + T, V : V + T - 1] = torch.eye(T - 1)  # key j looks like query j + 1
        v[tok, tok] = eye_V
        model.blocks[0].attn.proj.weight[prev, tok] = eye_V
        # layer 1: the query of token A matches keys whose previous token is A; copy their token
        q, k, v = model.blocks[1].attn.qkv.weight.view(3, C, C)
        q[tok, tok] = s * eye_V
        k[tok, prev] = eye_V
        k[tok, V] = -2.0  # position 0 has no previous token (layer 0 gave it its own): no match
        v[tok, tok] = eye_V
        model.blocks[1].attn.proj.weight[pred, tok] = eye_V
        model.lm_head.weight[:, pred] = sharpness * eye_V
    return model
