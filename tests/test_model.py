"""Tests for tinylm_core.model (notebook 05): the decoder-only transformer, its config and KV cache.

References are independent of the module: a forward pass written out with torch.nn.functional,
F.cross_entropy computed by hand, parameter counts from a formula, full forwards for the cache.
"""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, tiny_model

from tinylm_core.kv_cache import KVCache, LayerKVCache
from tinylm_core.model import DecoderAttention, LMOutput, TransformerLM
from tinylm_core.model_config import MAX_ALLOCATION, PRESETS, SIZE_LIMITS, ModelConfig
from tinylm_core.positional import RotaryEmbedding

POSITIONAL = ["sinusoidal", "learned", "rope"]
ATOL = 1e-5


def random_ids(B, T, vocab_size=TINY["vocab_size"], seed=1):
    return torch.randint(0, vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- config and shapes


def test_constructor_matches_config_and_seed_signature():
    model = TransformerLM(
        vocab_size=100,
        d_model=64,
        num_layers=2,
        num_heads=4,
        d_ff=128,
        max_seq_len=32,
        dropout=0.1,
        positional_encoding="learned",
    )
    assert model.config == ModelConfig(
        vocab_size=100, d_model=64, num_layers=2, num_heads=4, d_ff=128, max_seq_len=32,
        dropout=0.1, positional_encoding="learned",
    )  # fmt: skip
    again = TransformerLM.from_config(model.config)
    assert again.config == model.config
    assert sorted(again.state_dict()) == sorted(model.state_dict())
    # the seed's positional order, a config as first argument, and any other field by name
    assert TransformerLM(100, 64, 2, 4, 128, 32, 0.1, "learned").config == model.config
    assert TransformerLM(model.config).config == model.config
    eps = TransformerLM(vocab_size=10, d_model=32, layer_norm_eps=1e-6, bias=False)
    assert eps.config.layer_norm_eps == 1e-6 and eps.blocks[0].ln_1.eps == 1e-6
    assert eps.blocks[0].attn.qkv.bias is None


def test_state_dict_keys_are_unchanged():
    """Checkpoints and lesson 08's GPT-2 mapping rely on these exact names."""
    per_block = [
        "ln_1.weight", "ln_1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
        "attn.proj.bias", "ln_2.weight", "ln_2.bias", "mlp.fc.weight", "mlp.fc.bias",
        "mlp.proj.weight", "mlp.proj.bias",
    ]  # fmt: skip
    expected = ["token_embedding.weight", "position_encoding.weight"]
    expected += [f"blocks.{i}.{name}" for i in range(2) for name in per_block]
    expected += ["ln_f.weight", "ln_f.bias", "lm_head.weight"]
    assert list(tiny_model(positional_encoding="learned").state_dict()) == expected
    expected.remove("position_encoding.weight")  # sinusoidal and rope keep no weights
    for pe in ("sinusoidal", "rope"):
        assert list(tiny_model(positional_encoding=pe).state_dict()) == expected


@pytest.mark.parametrize("pe", POSITIONAL)
def test_forward_shapes_and_output_access(pe):
    model = tiny_model(positional_encoding=pe)
    ids = random_ids(3, 10)
    out = model(ids)
    assert isinstance(out, LMOutput)
    assert out.logits.shape == (3, 10, TINY["vocab_size"])
    assert out.loss is None and out["loss"] is None
    assert out["logits"] is out.logits
    out = model(ids, targets=ids)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    with pytest.raises(KeyError):
        out["hidden_states"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_heads=5), "divisible by num_heads"),
        (dict(positional_encoding="alibi"), "positional_encoding"),
        (dict(activation="swish"), "activation"),
        (dict(dropout=1.0), "dropout"),
        (dict(d_model=24, num_heads=8, positional_encoding="rope"), "even"),
        (dict(num_layers=0), "num_layers"),
        (dict(dropout=float("nan")), "dropout"),
        (dict(dropout=float("inf")), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(layer_norm_eps=float("inf")), "layer_norm_eps"),
        (dict(layer_norm_eps=float("nan")), "layer_norm_eps"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps"),
        (dict(layer_norm_eps=-1e-5), "layer_norm_eps"),
    ],
)
def test_bad_config_raises_value_error(overrides, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**{**TINY, **overrides})


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(bias="no"), "bias must be True or False"),
        (dict(tie_weights="no"), "tie_weights must be True or False"),
        (dict(tie_weights=1), "tie_weights must be True or False"),
        (dict(num_layers=True), "num_layers must be an int"),
        (dict(dropout="0.1"), "dropout must be a number"),
        (dict(layer_norm_eps=None), "layer_norm_eps must be a number"),
    ],
)
def test_wrong_types_in_config_raise_type_error(overrides, match):
    with pytest.raises(TypeError, match=match):
        ModelConfig(**{**TINY, **overrides})


@pytest.mark.parametrize("name", list(SIZE_LIMITS))
def test_sizes_above_their_limit_are_refused_naming_it(name):
    limit = SIZE_LIMITS[name]
    at_limit = {**TINY, name: limit, **({"d_model": limit} if name == "num_heads" else {})}
    assert getattr(ModelConfig(**at_limit), name) == limit  # the limit itself is allowed
    with pytest.raises(ValueError, match=rf"{name} must be between 1 and {limit:,}"):
        ModelConfig(**{**TINY, name: limit + 1})


def test_crafted_config_is_refused_before_anything_is_allocated():
    # each size within its limit, the whole far beyond: refused by the config, in no time
    with pytest.raises(ValueError, match="MAX_ALLOCATION"):
        ModelConfig(vocab_size=50_000, d_model=16_384, num_layers=256, num_heads=256)
    with pytest.raises(ValueError, match="max_seq_len must be between 1 and 131,072"):
        TransformerLM(vocab_size=10, max_seq_len=10**9)  # the old code tried to allocate 1 TB
    big = ModelConfig.from_preset("large", vocab_size=50_257)
    assert big.allocation_estimate() < MAX_ALLOCATION
    with torch.device("meta"):  # the estimate counts the weight matrices and the position table
        model = TransformerLM(big)
    assert (
        abs(model.num_parameters() + big.max_seq_len * big.d_model - big.allocation_estimate())
        < 0.01 * big.allocation_estimate()
    )


def test_bad_arguments():
    with pytest.raises(TypeError, match="d_model"):
        ModelConfig(vocab_size=10, d_model=32.0)
    with pytest.raises(ValueError, match="vocab_size"):
        TransformerLM(d_model=32)
    with pytest.raises(ValueError, match="not both"):
        TransformerLM(vocab_size=10, config=ModelConfig(vocab_size=10))
    with pytest.raises(ValueError, match="not both"):
        TransformerLM(ModelConfig(vocab_size=10), d_model=64)
    with pytest.raises(TypeError, match="ModelConfig"):
        TransformerLM(config=dict(vocab_size=10))
    with pytest.raises(ValueError, match="unknown preset"):
        ModelConfig.from_preset("huge", vocab_size=10)
    with pytest.raises(ValueError, match="unknown ModelConfig fields"):
        ModelConfig.from_preset("small", vocab_size=10, n_embd=3)
    model = tiny_model()
    with pytest.raises(ValueError, match="batch, seq_len"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        model(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="targets"):
        model(random_ids(2, 5), targets=random_ids(2, 4))


@pytest.mark.parametrize("bad_id", [TINY["vocab_size"], 10**6, -1])
def test_token_id_outside_the_vocabulary_names_its_size(bad_id):
    model = tiny_model()
    ids = random_ids(2, 6)
    ids[1, 3] = bad_id
    with pytest.raises(ValueError, match=rf"vocab_size={TINY['vocab_size']}"):
        model(ids)
    model(random_ids(2, 6, vocab_size=TINY["vocab_size"]))  # every id in range is fine
    assert model(torch.zeros(2, 0, dtype=torch.long)).logits.shape == (2, 0, TINY["vocab_size"])


@pytest.mark.parametrize("pe", POSITIONAL)
def test_longer_than_max_seq_len_raises(pe):
    model = tiny_model(positional_encoding=pe)
    model(random_ids(1, TINY["max_seq_len"]))  # exactly max_seq_len is fine
    with pytest.raises(ValueError, match="max_seq_len"):
        model(random_ids(1, TINY["max_seq_len"] + 1))
    cache = model.new_kv_cache(1)
    model(random_ids(1, TINY["max_seq_len"] - 2), kv_cache=cache)
    with pytest.raises(ValueError, match="max_seq_len"):  # cached positions count too
        model(random_ids(1, 3), kv_cache=cache)


# ---------------------------------------------------------------------------- what it computes


def reference_forward(model, ids):
    """The model's forward written out with functional ops and the model's own weights."""
    cfg = model.config
    B, T = ids.shape
    C, H = cfg.d_model, cfg.num_heads
    x = model.token_embedding.weight[ids]  # (B, T, C)
    if cfg.positional_encoding == "learned":
        x = x + model.position_encoding.weight[:T]
    else:  # sinusoidal: PE[p, 2i] = sin(p / 10000^(2i/C)), PE[p, 2i+1] = cos(...)
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        angle = pos / 10000 ** (torch.arange(0, C, 2, dtype=torch.float64) / C)
        pe = torch.zeros(T, C, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()
        x = x * math.sqrt(C) + pe.float()  # embeddings scaled as in Vaswani et al.
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for blk in model.blocks:
        h = F.layer_norm(x, (C,), blk.ln_1.weight, blk.ln_1.bias, cfg.layer_norm_eps)
        q, k, v = F.linear(h, blk.attn.qkv.weight, blk.attn.qkv.bias).split(C, dim=-1)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, blk.attn.proj.weight, blk.attn.proj.bias)
        h = F.layer_norm(x, (C,), blk.ln_2.weight, blk.ln_2.bias, cfg.layer_norm_eps)
        gelu = {"gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}.get(
            cfg.activation, torch.relu
        )
        h = gelu(F.linear(h, blk.mlp.fc.weight, blk.mlp.fc.bias))
        x = x + F.linear(h, blk.mlp.proj.weight, blk.mlp.proj.bias)
    x = F.layer_norm(x, (C,), model.ln_f.weight, model.ln_f.bias, cfg.layer_norm_eps)
    return x @ model.lm_head.weight.T  # (B, T, V)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(positional_encoding="learned", activation="gelu_tanh"),
        dict(activation="relu", bias=False, tie_weights=False),
    ],
)
def test_forward_matches_functional_reference(overrides):
    model = tiny_model(**overrides).eval()
    with torch.no_grad():
        # non-zero biases and LayerNorm affines, so a missing term would show
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name or name.startswith("ln_f"):
                p.add_(torch.randn_like(p) * 0.1)
        ids = random_ids(2, 12)
        torch.testing.assert_close(
            model(ids).logits, reference_forward(model, ids), atol=1e-5, rtol=1e-4
        )


@pytest.mark.parametrize("pe", POSITIONAL)
def test_whole_model_is_causal(pe):
    model = tiny_model(positional_encoding=pe).eval()
    ids = random_ids(2, 16)
    changed = ids.clone()
    changed[:, 9] = (changed[:, 9] + 1) % TINY["vocab_size"]
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    assert torch.equal(a[:, :9], b[:, :9])  # the past does not see the future
    assert not torch.allclose(a[:, 9:], b[:, 9:])  # ... and position 9 onwards does change


def test_loss_is_cross_entropy_ignoring_minus_100():
    model = tiny_model()
    ids = random_ids(3, 10)
    targets = random_ids(3, 10, seed=2)
    targets[0, 7:] = -100  # padding
    targets[2, :3] = -100
    out = model(ids, targets=targets)
    log_probs = out.logits.log_softmax(-1)  # (B, T, V)
    keep = targets != -100
    expected = -log_probs[keep].gather(1, targets[keep][:, None]).mean()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(
        out.loss, F.cross_entropy(out.logits.transpose(1, 2), targets, ignore_index=-100)
    )


def test_initial_loss_is_near_log_vocab():
    # GPT-2 init gives near-uniform predictions: loss ~ ln(V) before training
    model = tiny_model(vocab_size=200, d_model=64)
    loss = model(random_ids(8, 24, vocab_size=200), targets=random_ids(8, 24, 200, seed=3)).loss
    assert abs(loss.item() - math.log(200)) < 0.1


def test_gpt2_style_init():
    torch.manual_seed(0)
    model = TransformerLM(vocab_size=500, d_model=128, num_layers=8, num_heads=4, d_ff=512)
    residual_std = 0.02 / math.sqrt(2 * 8)
    for name, p in model.named_parameters():
        if name.endswith(("attn.proj.weight", "mlp.proj.weight")):
            assert abs(p.std().item() - residual_std) < 0.1 * residual_std, name
        elif name.endswith(("qkv.weight", "fc.weight")) or name == "token_embedding.weight":
            assert abs(p.std().item() - 0.02) < 0.002, name
        elif name.endswith("bias") and "ln_" not in name:
            assert torch.all(p == 0), name
        elif "ln_" in name:
            assert torch.all(p == (1 if name.endswith("weight") else 0)), name


# ---------------------------------------------------------------------------- weights and counts


def test_tied_weights_are_one_tensor():
    model = tiny_model()
    assert model.lm_head.weight is model.token_embedding.weight
    names = [n for n, _ in model.named_parameters()]
    assert "lm_head.weight" not in names  # parameters() yields the shared tensor once
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(random_ids(2, 8), targets=random_ids(2, 8, seed=5)).loss.backward()
    opt.step()
    assert model.lm_head.weight.data_ptr() == model.token_embedding.weight.data_ptr()
    untied = tiny_model(tie_weights=False)
    assert untied.lm_head.weight is not untied.token_embedding.weight
    V, C = TINY["vocab_size"], TINY["d_model"]
    assert untied.num_parameters() == model.num_parameters() + V * C
    # a state dict round trip keeps the tie
    again = tiny_model(seed=9)
    again.load_state_dict(model.state_dict())
    assert again.lm_head.weight is again.token_embedding.weight
    torch.testing.assert_close(again.lm_head.weight, model.token_embedding.weight)


def parameter_formula(cfg):
    """Count by hand: embeddings, L x (2 LayerNorms + qkv + proj + fc + proj), final LN, head."""
    C, F_, V, L, b = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.num_layers, int(cfg.bias)
    ln = C + b * C
    block = (
        2 * ln + (3 * C * C + b * 3 * C) + (C * C + b * C) + (C * F_ + b * F_) + (F_ * C + b * C)
    )
    embeddings = V * C + (cfg.max_seq_len * C if cfg.positional_encoding == "learned" else 0)
    head = 0 if cfg.tie_weights else V * C
    return embeddings + L * block + ln + head, L * block + ln + head


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(positional_encoding="learned"),
        dict(positional_encoding="rope", bias=False),
        dict(tie_weights=False, num_layers=3, d_ff=48),
    ],
)
def test_num_parameters_matches_formula(overrides):
    model = tiny_model(**overrides)
    total, non_embedding = parameter_formula(model.config)
    assert model.num_parameters() == total
    assert model.num_parameters(non_embedding=True) == non_embedding
    assert total == len(torch.nn.utils.parameters_to_vector(model.parameters()))


def test_presets_match_seed_sizes():
    # The seed README: small ~5M (256 dim, 4 layers), medium ~25M (512, 6), large ~85M (768, 12).
    # Its counts include a BPE vocabulary of roughly 8k tokens for the two smaller sizes; large's
    # 85M is the body without embeddings (GPT-2 small).
    assert set(PRESETS) == {"small", "medium", "large", "llama"}
    expected = {"small": (256, 4, 5e6), "medium": (512, 6, 25e6), "large": (768, 12, 85e6)}
    for name, (d_model, num_layers, size) in expected.items():
        cfg = ModelConfig.from_preset(name, vocab_size=8192)
        assert (cfg.d_model, cfg.num_layers) == (d_model, num_layers)
        total, non_embedding = parameter_formula(cfg)
        count = non_embedding if name == "large" else total
        assert abs(count - size) / size < 0.1, (name, count)
    cfg = ModelConfig.from_preset("small", vocab_size=65, dropout=0.0, positional_encoding="rope")
    assert (cfg.dropout, cfg.positional_encoding, cfg.vocab_size) == (0.0, "rope", 65)
    small = TransformerLM.from_config(cfg)
    assert small.num_parameters() == parameter_formula(cfg)[0]


# ---------------------------------------------------------------------------- training


def test_overfits_one_batch():
    model = tiny_model(d_model=64, d_ff=128)
    ids, targets = random_ids(4, 16), random_ids(4, 16, seed=7)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(80):
        loss = model(ids, targets=targets).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


@pytest.mark.parametrize(
    "overrides",
    [dict(positional_encoding=pe) for pe in POSITIONAL]
    + [dict(activation="relu", bias=False, tie_weights=False, dropout=0.1)],
)
def test_every_option_trains(overrides):
    # A counting sequence with a random start: the loss must fall far below its initial ln(V).
    model = tiny_model(**overrides).train()
    starts = torch.randint(0, 8, (8, 1), generator=torch.Generator().manual_seed(3))
    seq = (starts + torch.arange(17)) % 8
    ids, targets = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = model(ids, targets=targets).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_only_in_training():
    model = tiny_model(dropout=0.5)
    ids = random_ids(2, 8)
    model.eval()
    assert torch.equal(model(ids).logits, model(ids).logits)
    model.train()
    assert not torch.equal(model(ids).logits, model(ids).logits)


# ---------------------------------------------------------------------------- KV cache


def decode_incrementally(model, ids, cache, chunks):
    """Feed ids through the cache in chunks of the given sizes; return the concatenated logits."""
    out, start = [], 0
    for size in chunks:
        out.append(model(ids[:, start : start + size], kv_cache=cache).logits)
        start += size
    return torch.cat(out, dim=1)


@pytest.mark.parametrize("pe", POSITIONAL)
def test_kv_cache_matches_full_forward(pe):
    model = tiny_model(positional_encoding=pe).eval()
    ids = random_ids(3, 20)
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_kv_cache(3)
        assert isinstance(cache, KVCache) and cache.seq_len == 0
        # a prompt, single tokens, then a chunk of several tokens after a past (bottom-right mask)
        incremental = decode_incrementally(model, ids, cache, [6, 1, 1, 1, 5, 1, 6])
    assert cache.seq_len == 20
    assert all(layer.seq_len == 20 for layer in cache.layers)
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pe", POSITIONAL)
def test_last_only_gives_the_last_position_of_the_full_logits(pe):
    model = tiny_model(positional_encoding=pe).eval()
    ids = random_ids(3, 20)
    with torch.no_grad():
        full = model(ids).logits  # (B, T, V)
        last = model(ids, last_only=True).logits
        cache = model.new_kv_cache(3)
        model(ids[:, :12], kv_cache=cache)
        cached_last = model(ids[:, 12:], kv_cache=cache, last_only=True).logits
    assert last.shape == cached_last.shape == (3, 1, TINY["vocab_size"])
    torch.testing.assert_close(last, full[:, -1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(cached_last, full[:, -1:], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="last_only=False"):
        model(ids, targets=ids, last_only=True)


@pytest.mark.parametrize("pe", POSITIONAL)
def test_kv_cache_with_left_padding(pe):
    model = tiny_model(positional_encoding=pe).eval()
    ids = random_ids(2, 12)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :4] = 0  # row 1 is left-padded
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        cache = model.new_kv_cache(2)
        parts = [model(ids[:, :8], attention_mask=mask[:, :8], kv_cache=cache).logits]
        for t in range(8, 12):
            parts.append(
                model(ids[:, t : t + 1], attention_mask=mask[:, : t + 1], kv_cache=cache).logits
            )
    incremental = torch.cat(parts, dim=1)
    real = mask.bool()
    assert not incremental[real].isnan().any()
    torch.testing.assert_close(incremental[real], full[real], atol=1e-5, rtol=0)


def test_kv_cache_crop_reset():
    model = tiny_model(positional_encoding="rope").eval()
    ids = random_ids(2, 14)
    with torch.no_grad():
        cache = model.new_kv_cache(2)
        model(ids[:, :10], kv_cache=cache)
        assert cache.batch_size == 2 and cache.seq_len == 10
        # crop: forget the last 2 positions and continue with other tokens
        cache.crop(8)
        assert cache.seq_len == 8 and all(layer.seq_len == 8 for layer in cache.layers)
        other = ids.clone()
        other[:, 8:11] = (other[:, 8:11] + 3) % TINY["vocab_size"]
        step = model(other[:, 8:11], kv_cache=cache).logits
        torch.testing.assert_close(step, model(other[:, :11]).logits[:, 8:], atol=1e-5, rtol=0)
        cache.reset()
        assert cache.seq_len == 0
        torch.testing.assert_close(
            model(other[:, :5], kv_cache=cache).logits,
            model(other[:, :5]).logits,
            atol=1e-5,
            rtol=0,
        )
    with pytest.raises(ValueError, match="crop"):
        cache.crop(6)
    assert not hasattr(cache, "reorder")  # beam-search reordering belongs to lesson 07


def test_kv_cache_buffers_and_limits():
    model = tiny_model().to(torch.float64)
    cache = model.new_kv_cache(2, max_len=10)
    layer = cache.layers[0]
    H, hd = TINY["num_heads"], TINY["d_model"] // TINY["num_heads"]
    assert layer.k.shape == (2, H, 10, hd) and layer.k.dtype == torch.float64
    assert len(cache.layers) == TINY["num_layers"]
    ptr = layer.k.data_ptr()
    model(random_ids(2, 6), kv_cache=cache)
    model(random_ids(2, 1), kv_cache=cache)
    assert layer.k.data_ptr() == ptr  # preallocated: updates write in place
    with pytest.raises(ValueError, match="KV cache is full"):
        model(random_ids(2, 4), kv_cache=cache)
    with pytest.raises(ValueError, match="max_len"):
        model.new_kv_cache(1, max_len=TINY["max_seq_len"] + 1)


# ---------------------------------------------------------------------------- DecoderAttention


def decoder_attention(seed=0):
    torch.manual_seed(seed)
    return DecoderAttention(32, 4).eval()


@pytest.mark.parametrize("use_rotary", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("chunks", [[10], [1] * 10, [4, 1, 3, 2], [1, 6, 3]])
def test_chunk_by_chunk_with_cache_equals_all_at_once(use_rotary, need_weights, chunks):
    attn = decoder_attention()
    rotary = RotaryEmbedding(attn.head_dim, max_seq_len=16) if use_rotary else None
    x = torch.randn(2, 10, 32)
    full = attn(x, rotary=rotary)
    cache, outs, start = LayerKVCache(2, 4, 16, 8), [], 0
    for n in chunks:
        out = attn(
            x[:, start : start + n], rotary=rotary, kv_cache=cache, need_weights=need_weights
        )
        outs.append(out[0] if need_weights else out)
        start += n
    assert cache.seq_len == 10
    assert torch.allclose(torch.cat(outs, dim=1), full, atol=ATOL)


@pytest.mark.parametrize("use_rotary", [False, True])
def test_cache_with_padding_mask_over_all_keys(use_rotary):
    """Left-padded prompts, fed as a 3-token prompt, a 2-token chunk, then one token at a time;
    attention_mask always covers every key (cached + new)."""
    attn = decoder_attention()
    rotary = RotaryEmbedding(attn.head_dim, max_seq_len=8) if use_rotary else None
    x = torch.randn(2, 8, 32)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, :4] = 0
    full = attn(x, attention_mask=mask, rotary=rotary)
    cache, outs = LayerKVCache(2, 4, 8, 8), []
    for start, end in [(0, 3), (3, 5), (5, 6), (6, 7), (7, 8)]:
        outs.append(
            attn(x[:, start:end], attention_mask=mask[:, :end], rotary=rotary, kv_cache=cache)
        )
    got = torch.cat(outs, dim=1)
    real = mask.bool()
    assert not got.isnan().any()
    assert torch.allclose(got[real], full[real], atol=ATOL)


def test_rotary_makes_attention_shift_invariant():
    """With RoPE and no other positions, attention depends on distances only: the same tokens as
    if they sat 7 positions later (a cache that already counts 7) give the same outputs."""
    torch.manual_seed(0)
    attn = DecoderAttention(32, 4, causal=False).eval()
    rotary = RotaryEmbedding(attn.head_dim)
    x = torch.randn(1, 5, 32)

    class Shifted:  # the simplest cache the layer accepts: it only counts and passes through
        seq_len = 7

        def update(self, k, v):
            return k, v

    assert torch.allclose(
        attn(x, rotary=rotary, kv_cache=Shifted()), attn(x, rotary=rotary), atol=ATOL
    )


def test_decoder_attention_without_extras_is_lesson_01s_layer():
    attn = decoder_attention()
    x = torch.randn(2, 6, 32)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    assert torch.equal(attn(x, attention_mask=mask), super(DecoderAttention, attn).forward(x, mask))
    assert [name for name, _ in attn.named_parameters()] == [
        "qkv.weight", "qkv.bias", "proj.weight", "proj.bias"
    ]  # fmt: skip


# ---------------------------------------------------------------------------- loading


def test_from_checkpoint_loads_in_one_line(tmp_path):
    from tinylm_core.char_tokenizer import CharTokenizer
    from tinylm_core.checkpoint import save_checkpoint

    model = tiny_model(positional_encoding="rope")
    tokenizer = CharTokenizer().build_vocab(["hello world"])
    save_checkpoint(tmp_path / "checkpoint.pt", model, tokenizer)
    loaded = TransformerLM.from_checkpoint(tmp_path / "checkpoint.pt")
    assert isinstance(loaded, TransformerLM) and not loaded.training
    assert loaded.config == model.config
    ids = random_ids(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    assert loaded.lm_head.weight is loaded.token_embedding.weight  # still tied


# ---------------------------------------------------------------------------- lesson 11's switches
# norm, mlp (+ activation="silu"), num_kv_heads, qk_norm, bias, tie_weights, rope_theta, "llama"

OPTIONS = {
    "rmsnorm": dict(norm="rmsnorm"),
    "swiglu": dict(mlp="gated", activation="silu"),
    "geglu": dict(mlp="gated", activation="gelu"),
    "mqa": dict(num_kv_heads=1),
    "gqa": dict(num_kv_heads=2),
    "mha": dict(num_kv_heads=4),
    "qk_norm": dict(qk_norm=True),
    "no_bias": dict(bias=False),
    "untied": dict(tie_weights=False),
    "rope_theta": dict(positional_encoding="rope", rope_theta=500_000.0),
    "llama": dict(
        positional_encoding="rope", norm="rmsnorm", mlp="gated", activation="silu",
        num_kv_heads=2, qk_norm=True, bias=False, tie_weights=False,
    ),
}  # fmt: skip


def option_model(name, pe="rope", seed=0):
    return tiny_model(seed, **{"positional_encoding": pe, **OPTIONS[name]})


@pytest.mark.parametrize("name", OPTIONS)
def test_option_shapes_loss_and_gradients(name):
    model = option_model(name).train()
    ids = random_ids(2, 10)
    out = model(ids, targets=ids)
    assert out.logits.shape == (2, 10, TINY["vocab_size"])
    out.loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", OPTIONS)
def test_option_is_causal(name):
    model = option_model(name)
    ids = random_ids(2, 16)
    changed = ids.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % TINY["vocab_size"]
    with torch.no_grad():
        a, b = model(ids).logits, model(changed).logits
    torch.testing.assert_close(a[:, :10], b[:, :10], atol=1e-6, rtol=0)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


@pytest.mark.parametrize("pe", POSITIONAL)
@pytest.mark.parametrize("name", OPTIONS)
def test_option_kv_cache_matches_full_forward(name, pe):
    model = option_model(name, pe)
    ids = random_ids(3, 20)
    with torch.no_grad():
        full = model(ids).logits
        cache = model.new_kv_cache(3)
        incremental = decode_incrementally(model, ids, cache, [6, 1, 1, 1, 5, 1, 6])
    torch.testing.assert_close(incremental, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("num_kv_heads", [1, 2, 4])
def test_kv_cache_stores_only_the_kv_heads(num_kv_heads):
    model = tiny_model(num_kv_heads=num_kv_heads)
    hd = TINY["d_model"] // TINY["num_heads"]
    cache = model.new_kv_cache(2, max_len=8)
    assert cache.layers[0].k.shape == (2, num_kv_heads, 8, hd)
    assert model.blocks[0].attn.qkv.weight.shape == (TINY["d_model"] + 2 * num_kv_heads * hd, 32)
    ids = random_ids(2, 8)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, :3] = 0  # left padding through the cache, too
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        model(ids[:, :5], attention_mask=mask[:, :5], kv_cache=cache)
        last = model(ids[:, 5:], attention_mask=mask, kv_cache=cache).logits
    torch.testing.assert_close(last, full[:, 5:], atol=1e-5, rtol=0)


@pytest.mark.parametrize("num_kv_heads", [1, 2])
def test_grouped_query_equals_multi_head_with_repeated_kv_weights(num_kv_heads):
    """Independent reference: an ordinary multi-head model whose k and v weights repeat each k/v
    head for its group of query heads (k/v head j serves query heads j*g .. j*g + g - 1)."""
    gqa = tiny_model(num_kv_heads=num_kv_heads, positional_encoding="rope")
    mha = tiny_model(positional_encoding="rope")
    C, H = TINY["d_model"], TINY["num_heads"]
    hd, group = C // H, H // num_kv_heads
    sd = gqa.state_dict()
    for i in range(TINY["num_layers"]):
        for kind in ("weight", "bias"):
            q, k, v = sd[f"blocks.{i}.attn.qkv.{kind}"].split(
                [C, num_kv_heads * hd, num_kv_heads * hd]
            )
            k, v = (
                t.unflatten(0, (num_kv_heads, hd)).repeat_interleave(group, 0).flatten(0, 1)
                for t in (k, v)
            )
            sd[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([q, k, v])
    mha.load_state_dict(sd)
    ids = random_ids(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(gqa(ids).logits, mha(ids).logits, atol=1e-5, rtol=0)


def test_attend_keeps_its_signature_with_fewer_kv_heads():
    attn = DecoderAttention(32, 4, num_kv_heads=2).eval()
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 2, 7, 8), torch.randn(2, 2, 7, 8)
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[0, :2] = 0
    out = attn.attend(q, k, v, mask)
    out2, weights = attn.attend(q, k, v, mask, need_weights=True)
    assert out.shape == (2, 5, 32) and weights.shape == (2, 4, 5, 7)
    torch.testing.assert_close(out, out2, atol=1e-5, rtol=0)
    # the explicit reference: each k/v head copied for its two query heads
    ref = attn.attend(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="query heads"):
        attn.attend(q, torch.randn(2, 3, 7, 8), torch.randn(2, 3, 7, 8))
    with pytest.raises(ValueError, match="divide"):
        DecoderAttention(32, 4, num_kv_heads=3)


def test_default_options_keep_gpt2_names_and_outputs():
    """Old checkpoints load: the defaults, and num_kv_heads=num_heads, give GPT-2's layout."""
    names = ["token_embedding.weight"]
    for i in range(TINY["num_layers"]):
        for layer in ("ln_1", "attn.qkv", "attn.proj", "ln_2", "mlp.fc", "mlp.proj"):
            names += [f"blocks.{i}.{layer}.weight", f"blocks.{i}.{layer}.bias"]
    names += ["ln_f.weight", "ln_f.bias", "lm_head.weight"]
    default, explicit = tiny_model(positional_encoding="rope"), option_model("mha")
    assert list(default.state_dict()) == list(explicit.state_dict()) == names
    assert isinstance(default.blocks[0].ln_1, torch.nn.LayerNorm)
    ids = random_ids(2, 10)
    with torch.no_grad():
        assert torch.equal(default(ids).logits, explicit(ids).logits)


def test_rmsnorm_swiglu_and_qk_norm_compute_their_formulas():
    model = option_model("llama")
    block = model.blocks[0]
    x = torch.randn(2, 5, 32)
    rms = x / x.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt() * block.ln_1.weight
    torch.testing.assert_close(block.ln_1(x), rms, atol=1e-6, rtol=0)
    mlp = block.mlp
    swiglu = F.linear(
        F.silu(F.linear(x, mlp.gate.weight)) * F.linear(x, mlp.fc.weight), mlp.proj.weight
    )
    torch.testing.assert_close(mlp(x), swiglu, atol=1e-6, rtol=0)
    assert {n for n, _ in block.named_parameters()} == {
        "ln_1.weight", "attn.qkv.weight", "attn.proj.weight", "attn.q_norm.weight",
        "attn.k_norm.weight", "ln_2.weight", "mlp.fc.weight", "mlp.gate.weight", "mlp.proj.weight",
    }  # fmt: skip
    # QK-norm: scaling the query and key projections changes nothing (each head is normalised)
    with torch.no_grad():
        before = block.attn(x)
        block.attn.qkv.weight[:48] *= 7.0  # q (32 rows) and k (16 rows)
        torch.testing.assert_close(block.attn(x), before, atol=1e-4, rtol=0)  # eps aside


def test_rope_theta_sets_the_rotary_base():
    a, b = tiny_model(positional_encoding="rope"), option_model("rope_theta")
    assert a.rotary.base == 10_000.0 and b.rotary.base == 500_000.0
    ids = random_ids(1, 12)
    with torch.no_grad():
        assert not torch.allclose(a(ids).logits, b(ids).logits)


def test_llama_preset_and_allocation_estimate():
    cfg = ModelConfig.from_preset("llama", vocab_size=100)
    assert (cfg.norm, cfg.mlp, cfg.activation, cfg.kv_heads, cfg.bias) == (
        "rmsnorm",
        "gated",
        "silu",
        2,
        False,
    )
    assert cfg.d_ff == 704 and 704 % 64 == 0 and 704 >= 2 * 4 * 256 / 3  # the 2/3 rule
    model = TransformerLM(cfg)
    small = TransformerLM(ModelConfig.from_preset("small", vocab_size=100, bias=False))
    assert abs(model.num_parameters() / small.num_parameters() - 1) < 0.1  # about as many
    for c in (cfg, option_model("gqa").config, option_model("swiglu").config):
        matrices = sum(p.numel() for p in TransformerLM(c).parameters() if p.dim() == 2)
        assert c.allocation_estimate() == matrices + (c.max_seq_len * c.d_model) * (
            c.positional_encoding != "learned"
        )


@pytest.mark.parametrize(
    "overrides, error, fix",
    [
        (dict(num_kv_heads=3), ValueError, "divide num_heads"),
        (dict(num_kv_heads=8), ValueError, "divide num_heads"),
        (dict(num_kv_heads=0), ValueError, "divide num_heads"),
        (dict(num_kv_heads=2.0), TypeError, "int or None"),
        (dict(qk_norm="yes"), TypeError, "True or False"),
        (dict(mlp="swiglu"), ValueError, "mlp='gated' with activation='silu'"),
        (dict(mlp="moe"), ValueError, "'standard' or 'gated'"),
        (dict(norm="batchnorm"), ValueError, "'layernorm' or 'rmsnorm'"),
        (dict(activation="tanh"), ValueError, "'silu'"),
        (dict(rope_theta=0.0), ValueError, "rope_theta"),
        (dict(rope_theta=float("nan")), ValueError, "rope_theta"),
        (dict(rope_theta="big"), TypeError, "number"),
    ],
)
def test_bad_options_name_the_fix(overrides, error, fix):
    with pytest.raises(error, match=re.escape(fix)):
        ModelConfig(**{**TINY, **overrides})


def test_grouped_query_cache_reorders_for_beam_search():
    """Lesson 07's reorder_kv_cache works on a cache that holds fewer k/v heads."""
    from tinylm_core.beam_search import reorder_kv_cache

    model = option_model("llama")
    ids, new = random_ids(3, 6), random_ids(3, 1, seed=2)
    with torch.no_grad():
        cache = model.new_kv_cache(3)
        model(ids, kv_cache=cache)
        reorder_kv_cache(cache, [2, 0, 0])  # beams 0 and 1 continue old beam 0, ...
        step = model(new, kv_cache=cache).logits
        full = model(torch.cat([ids[[2, 0, 0]], new], dim=1)).logits[:, -1:]
    assert cache.layers[0].k.size(1) == 2
    torch.testing.assert_close(step, full, atol=1e-5, rtol=0)
