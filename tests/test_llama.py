"""Llama weights in TransformerLM: equal to Hugging Face's LlamaForCausalLM on the same weights;
the safetensors reader; the loader's errors. transformers is a test-only dependency; everything
runs offline on small random models (no test touches the network).
"""

import pytest
import torch

from tinylm_core import llama
from tinylm_core.llama import (
    LLAMA_CHECKPOINTS,
    download_llama_checkpoint,
    llama_model_config,
    load_llama,
    read_safetensors,
    write_safetensors,
)
from tinylm_core.model import TransformerLM

transformers = pytest.importorskip("transformers")

VOCAB = 101
CONFIGS = {
    "gqa": dict(num_key_value_heads=2),
    "mqa_tied": dict(num_key_value_heads=1, tie_word_embeddings=True),
    "mha_bias_theta": dict(
        num_key_value_heads=4, attention_bias=True, mlp_bias=True, rope_theta=500_000.0
    ),
}


def hf_llama(seed=0, **overrides):
    """A small random LlamaForCausalLM; every parameter (norm gains too) drawn at random."""
    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**kwargs, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model.eval()


def ours_from(hf):
    return TransformerLM.from_llama_state_dict(hf.state_dict(), hf.config.to_dict())


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request):
    hf = hf_llama(**CONFIGS[request.param])
    return hf, ours_from(hf)


def test_config_is_read(pair):
    hf, ours = pair
    c, h = ours.config, hf.config
    assert (c.d_model, c.num_layers, c.num_heads, c.kv_heads, c.d_ff) == (
        h.hidden_size, h.num_hidden_layers, h.num_attention_heads, h.num_key_value_heads,
        h.intermediate_size,
    )  # fmt: skip
    assert (c.norm, c.mlp, c.activation, c.positional_encoding) == (
        "rmsnorm",
        "gated",
        "silu",
        "rope",
    )
    assert c.tie_weights == h.tie_word_embeddings and c.bias == h.attention_bias
    assert ours.rotary.base == h.to_dict()["rope_parameters"]["rope_theta"]
    assert (ours.lm_head.weight is ours.token_embedding.weight) == c.tie_weights


def test_logits_equal_hugging_face(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)


def test_padded_batch_equals_hugging_face(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, :5] = 0  # left padding; positions still count from the first column, as in ours
    with torch.no_grad():
        a, b = ours(ids, attention_mask=mask).logits, hf(ids, attention_mask=mask).logits
    torch.testing.assert_close(a[mask.bool()], b[mask.bool()], atol=1e-4, rtol=0)


def test_greedy_generation_equals_hugging_face(pair):
    hf, ours = pair
    prompt = torch.tensor([[5, 17, 42, 8]])
    with torch.no_grad():
        theirs = hf.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=30, do_sample=False,
            eos_token_id=None, pad_token_id=0,
        )[0].tolist()  # fmt: skip
        cache, step, mine = ours.new_kv_cache(1), prompt, prompt[0].tolist()
        for _ in range(30):
            step = ours(step, kv_cache=cache).logits[:, -1:].argmax(-1)
            mine.append(step.item())
    assert mine == theirs
    assert cache.layers[0].k.size(1) == hf.config.num_key_value_heads  # only the k/v heads


def test_generator_greedy_equals_hugging_face():
    from tinylm_core.generation import Generator

    hf = hf_llama(3)
    prompt = [5, 17, 42, 8]
    with torch.no_grad():
        ref = hf.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, 4, dtype=torch.long),
            max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0,
        )  # fmt: skip
    ours = Generator(ours_from(hf)).generate_greedy(prompt, 12, return_ids=True, eos_token_id=[])
    assert ours == ref[0].tolist()


def test_transformers_4_config_and_old_buffers_load():
    """config.json as transformers 4 wrote it (rope_theta at the top level), and state dicts
    with the rotary inv_freq buffers some older checkpoints carry."""
    hf = hf_llama(rope_theta=100_000.0)
    cfg = hf.config.to_dict()
    cfg.pop("rope_parameters")
    cfg.update(rope_theta=100_000.0, rope_scaling=None)
    sd = {k.removeprefix("model."): v for k, v in hf.state_dict().items()}
    sd["layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(8)
    ours = TransformerLM.from_llama_state_dict(sd, cfg)
    assert ours.config.rope_theta == 100_000.0
    ids = torch.randint(0, VOCAB, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)


def test_bfloat16_checkpoint_loads_as_float32():
    hf = hf_llama()
    sd = {k: v.to(torch.bfloat16) for k, v in hf.state_dict().items()}
    ours = TransformerLM.from_llama_state_dict(sd, hf.config.to_dict())
    assert all(p.dtype == torch.float32 for p in ours.parameters())
    half = TransformerLM.from_llama_state_dict(sd, hf.config.to_dict(), dtype=torch.bfloat16)
    assert half.lm_head.weight.dtype == torch.bfloat16


def test_bad_configs_and_state_dicts_are_named():
    hf = hf_llama()
    cfg, sd = hf.config.to_dict(), hf.state_dict()
    with pytest.raises(ValueError, match="not 'llama'"):
        llama_model_config({**cfg, "model_type": "gpt2"})
    with pytest.raises(ValueError, match="rope_scaling"):
        llama_model_config({**cfg, "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}})
    with pytest.raises(ValueError, match="silu"):
        llama_model_config({**cfg, "hidden_act": "gelu"})
    with pytest.raises(ValueError, match="head_dim"):
        llama_model_config({**cfg, "head_dim": 32})
    with pytest.raises(ValueError, match="missing"):
        TransformerLM.from_llama_state_dict({k: v for k, v in sd.items() if "k_proj" not in k}, cfg)
    with pytest.raises(ValueError, match="unexpected tensors"):
        TransformerLM.from_llama_state_dict({**sd, "model.extra.weight": torch.ones(1)}, cfg)
    with pytest.raises(ValueError, match="does the config match"):
        TransformerLM.from_llama_state_dict(sd, {**cfg, "num_key_value_heads": 4})
    with pytest.raises(TypeError, match="dict of tensors"):
        TransformerLM.from_llama_state_dict([1, 2], cfg)


# --- safetensors, on files we write ourselves -----------------------------------------------


def test_safetensors_round_trip(tmp_path):
    tensors = {
        "f32": torch.randn(3, 4), "bf16": torch.randn(2, 5).to(torch.bfloat16),
        "f16": torch.randn(7).half(), "i64": torch.arange(6).view(2, 3),
        "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(2.5),
    }  # fmt: skip
    path = tmp_path / "t.safetensors"
    write_safetensors(tensors, path)
    back = read_safetensors(path)
    assert list(back) == list(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t), name
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    assert (8 + header_len) % 8 == 0  # the data starts aligned


def test_safetensors_agrees_with_the_reference_package(tmp_path):
    st = pytest.importorskip("safetensors.torch")  # comes with transformers
    tensors = {"a": torch.randn(4, 3), "b": torch.randn(5).to(torch.bfloat16)}
    st.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"format": "pt"})
    write_safetensors(tensors, tmp_path / "ours.safetensors")
    for name, t in read_safetensors(tmp_path / "theirs.safetensors").items():
        assert torch.equal(t, tensors[name])
    for name, t in st.load_file(tmp_path / "ours.safetensors").items():
        assert torch.equal(t, tensors[name])


def test_safetensors_refuses_broken_files(tmp_path):
    path = tmp_path / "t.safetensors"
    write_safetensors({"w": torch.randn(100)}, path)
    data = path.read_bytes()
    (tmp_path / "short.safetensors").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_safetensors(tmp_path / "short.safetensors")
    for junk in (b"", b"abc", b"\xff" * 64, (4).to_bytes(8, "little") + b"nope"):
        (tmp_path / "junk").write_bytes(junk)
        with pytest.raises(ValueError, match="not a safetensors file"):
            read_safetensors(tmp_path / "junk")


# --- load_llama from a folder, and the download table ----------------------------------------


def test_load_llama_from_a_folder_equals_hugging_face(tmp_path):
    hf = hf_llama(**CONFIGS["mqa_tied"])
    hf.save_pretrained(tmp_path)  # config.json and model.safetensors, as on the Hub
    ours = load_llama(tmp_path)
    ids = torch.randint(0, VOCAB, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ValueError, match="config.json and model.safetensors"):
        load_llama(tmp_path)


def test_download_uses_the_pinned_table(tmp_path, monkeypatch):
    """download_llama_checkpoint hands the pinned URL and sha256 to downloads.download (which
    tests/test_gpt2.py tests against a local server); nothing here touches the network."""
    weights = tmp_path / "model.safetensors"
    hf = hf_llama()
    write_safetensors(dict(hf.state_dict()), weights)
    calls = []
    monkeypatch.setattr(llama, "download", lambda *args: calls.append(args) or weights)
    entry = dict(LLAMA_CHECKPOINTS["SmolLM2-135M"], config=hf.config.to_dict())
    monkeypatch.setitem(LLAMA_CHECKPOINTS, "tiny", entry)
    model = load_llama(name="tiny")
    assert calls == [(entry["url"], entry["sha256"], "llama/tiny/model.safetensors")]
    assert model.config.kv_heads == 2
    with pytest.raises(ValueError, match="unknown checkpoint"):
        download_llama_checkpoint("GPT-5")


def test_real_checkpoint_table_is_pinned():
    for entry in LLAMA_CHECKPOINTS.values():
        assert len(entry["sha256"]) == 64 and int(entry["sha256"], 16)
        revision = entry["url"].split("/resolve/")[1].split("/")[0]
        assert len(revision) == 40 and int(revision, 16)  # a commit, not a moving branch
        config = llama_model_config(entry["config"])
        with torch.device("meta"):
            n = TransformerLM(config).num_parameters()
        assert 134e6 < n < 135e6  # SmolLM2-135M: 134,515,008 parameters
