"""GPT-2 weights in TransformerLM: equal to Hugging Face's GPT2LMHeadModel on the same weights.

transformers is a test-only dependency; everything runs offline on randomly initialised models.
"""

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from tinylm_core import gpt2
from tinylm_core.gpt2 import (
    GPT2_CHECKPOINT_FILES,
    download_gpt2_checkpoint,
    load_gpt2,
    load_gpt2_checkpoint,
)
from tinylm_core.model import TransformerLM

transformers = pytest.importorskip("transformers")

VOCAB, POSITIONS, EMBD, LAYERS, HEADS = 101, 24, 64, 3, 4


@pytest.fixture(scope="module")
def hf_model():
    """A small random GPT-2, every parameter (LayerNorms and biases too) drawn at random."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=POSITIONS,
        n_embd=EMBD,
        n_layer=LAYERS,
        n_head=HEADS,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def hub_layout(hf_model):
    """The names of the files on the Hub: no `transformer.` prefix, no lm_head, mask buffers."""
    sd = {k.removeprefix("transformer."): v.clone() for k, v in hf_model.state_dict().items()}
    del sd["lm_head.weight"]
    for i in range(LAYERS):
        sd[f"h.{i}.attn.bias"] = torch.ones(1, 1, POSITIONS, POSITIONS).tril()
    return sd


def test_config_read_from_shapes(hf_model):
    model = TransformerLM.from_gpt2_state_dict(hf_model.state_dict(), num_heads=HEADS)
    c = model.config
    assert (c.vocab_size, c.d_model, c.num_layers, c.num_heads) == (VOCAB, EMBD, LAYERS, HEADS)
    assert (c.d_ff, c.max_seq_len, c.positional_encoding) == (4 * EMBD, POSITIONS, "learned")
    assert (c.activation, c.bias, c.tie_weights, c.dropout) == ("gelu_tanh", True, True, 0.0)
    assert model.lm_head.weight is model.token_embedding.weight
    assert not model.training


@pytest.mark.parametrize("layout", ["GPT2LMHeadModel", "hub"])
def test_logits_equal_hugging_face(hf_model, layout):
    sd = hf_model.state_dict() if layout == "GPT2LMHeadModel" else hub_layout(hf_model)
    model = TransformerLM.from_gpt2_state_dict(sd, num_heads=HEADS)
    ids = torch.randint(0, VOCAB, (3, POSITIONS), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(ids).logits
        theirs = hf_model(ids).logits
    assert ours.shape == theirs.shape == (3, POSITIONS, VOCAB)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_padded_batch_equals_hugging_face(hf_model):
    """Right padding with an attention mask: real positions agree with Hugging Face."""
    model = TransformerLM.from_gpt2_state_dict(hf_model.state_dict(), num_heads=HEADS)
    ids = torch.randint(0, VOCAB, (2, 10), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).logits
        theirs = hf_model(ids, attention_mask=mask).logits
    torch.testing.assert_close(ours[mask.bool()], theirs[mask.bool()], atol=1e-4, rtol=0)


def test_greedy_decoding_equals_hugging_face(hf_model):
    """Our cached decoding loop picks the tokens Hugging Face's logits pick, step by step."""
    model = TransformerLM.from_gpt2_state_dict(hf_model.state_dict(), num_heads=HEADS)
    prompt = torch.tensor([[5, 17, 42, 8]])
    new_tokens = 8
    with torch.no_grad():
        ref = prompt
        for _ in range(new_tokens):  # reference: full forward pass of HF's model at every step
            next_id = hf_model(ref).logits[:, -1].argmax(-1, keepdim=True)
            ref = torch.cat([ref, next_id], dim=1)
        ours = _greedy_with_cache(model, prompt, new_tokens)
    assert ours.tolist() == ref.tolist()


def _greedy_with_cache(model, prompt, new_tokens):
    cache = model.new_kv_cache(prompt.size(0))
    ids, step = prompt, prompt
    for _ in range(new_tokens):
        logits = model(step, kv_cache=cache).logits  # only the new tokens go through the model
        step = logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, step], dim=1)
    return ids


def test_generator_greedy_equals_hugging_face(hf_model):
    """generation.Generator (KV cache, our decoding loop) against Hugging Face's generate()."""
    from tinylm_core.generation import Generator

    model = TransformerLM.from_gpt2_state_dict(hf_model.state_dict(), num_heads=HEADS)
    prompt = [5, 17, 42, 8]
    with torch.no_grad():
        ref = hf_model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
    ours = Generator(model).generate_greedy(prompt, 12, return_ids=True, eos_token_id=[])
    assert ours == ref[0].tolist()


def test_default_num_heads_is_head_dim_64():
    """Every GPT-2 size has 64-dimensional heads, so num_heads defaults to d_model // 64."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=8, n_embd=128, n_layer=1, n_head=2, bos_token_id=0
    )
    hf = transformers.GPT2LMHeadModel(config).eval()
    model = TransformerLM.from_gpt2_state_dict(hf.state_dict())
    assert model.config.num_heads == 2
    ids = torch.randint(0, VOCAB, (1, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, hf(ids).logits, atol=1e-4, rtol=0)


def test_bad_state_dicts_are_named(hf_model):
    sd = hf_model.state_dict()
    with pytest.raises(ValueError, match="not a GPT-2 state dict"):
        TransformerLM.from_gpt2_state_dict({"weight": torch.zeros(3)})
    with pytest.raises(ValueError, match="no transformer blocks"):
        TransformerLM.from_gpt2_state_dict(
            {"wte.weight": torch.zeros(3, 64), "wpe.weight": torch.zeros(2, 64)}
        )
    with pytest.raises(TypeError, match="dict of tensors"):
        TransformerLM.from_gpt2_state_dict([1, 2])
    missing = {k: v for k, v in sd.items() if k != "transformer.h.1.mlp.c_fc.bias"}
    with pytest.raises(ValueError, match=r"missing 'h\.1\.mlp\.c_fc\.bias'"):
        TransformerLM.from_gpt2_state_dict(missing, num_heads=HEADS)
    extra = {**sd, "transformer.h.0.attn.rotary.inv_freq": torch.zeros(4)}
    with pytest.raises(ValueError, match="unexpected tensors"):
        TransformerLM.from_gpt2_state_dict(extra, num_heads=HEADS)
    untied = {**sd, "lm_head.weight": sd["lm_head.weight"] + 1}
    with pytest.raises(ValueError, match="not tied"):
        TransformerLM.from_gpt2_state_dict(untied, num_heads=HEADS)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TransformerLM.from_gpt2_state_dict(sd, num_heads=5)
    wrong = {**sd, "transformer.h.0.attn.c_proj.weight": torch.zeros(EMBD, EMBD + 1)}
    with pytest.raises(ValueError, match=r"'h\.0\.attn\.c_proj\.weight' has shape"):
        TransformerLM.from_gpt2_state_dict(wrong, num_heads=HEADS)


# --- checkpoint files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint_dir(hf_model, tmp_path_factory):
    """The two files of a Hub checkpoint, in the Hub's layout."""
    folder = tmp_path_factory.mktemp("gpt2")
    sd = hub_layout(hf_model)
    torch.save(sd, folder / "pytorch_model.bin")
    safetensors = pytest.importorskip("safetensors.torch")
    safetensors.save_file(sd, folder / "model.safetensors")
    return folder


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_load_checkpoint_file(checkpoint_dir, hf_model, name):
    sd = load_gpt2_checkpoint(checkpoint_dir / name)
    expected = hub_layout(hf_model)
    assert sd.keys() == expected.keys()
    assert all(torch.equal(sd[k], expected[k]) for k in sd)


def test_load_gpt2_from_folder_equals_hugging_face(checkpoint_dir, hf_model):
    model = load_gpt2(checkpoint_dir, num_heads=HEADS)
    ids = torch.randint(0, VOCAB, (1, POSITIONS), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, hf_model(ids).logits, atol=1e-4, rtol=0)


def test_without_safetensors_the_folder_gives_the_pickle(checkpoint_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(gpt2, "_safetensors", None)
    assert (
        load_gpt2_checkpoint(checkpoint_dir).keys()
        == load_gpt2_checkpoint(checkpoint_dir / "pytorch_model.bin").keys()
    )
    with pytest.raises(ValueError, match="safetensors package is not installed"):
        load_gpt2_checkpoint(checkpoint_dir / "model.safetensors")
    only_safetensors = tmp_path / "only"
    only_safetensors.mkdir()
    (only_safetensors / "model.safetensors").write_bytes(
        (checkpoint_dir / "model.safetensors").read_bytes()
    )
    with pytest.raises(ValueError, match="holds no pytorch_model.bin"):
        load_gpt2_checkpoint(only_safetensors)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_checkpoint_is_a_clear_error(checkpoint_dir, tmp_path, name):
    data = (checkpoint_dir / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_gpt2_checkpoint(cut)


@pytest.mark.parametrize("name", ["model.safetensors", "pytorch_model.bin"])
def test_foreign_file_is_a_clear_error(tmp_path, name):
    text = tmp_path / name
    text.write_text("this is not a checkpoint\n")
    with pytest.raises(ValueError, match="cannot read"):
        load_gpt2_checkpoint(text)


def test_foreign_checkpoint_is_a_clear_error(tmp_path):
    other = TransformerLM(vocab_size=11, d_model=16, num_layers=1, num_heads=2, d_ff=32)
    torch.save(other.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="not a GPT-2 checkpoint"):
        load_gpt2_checkpoint(tmp_path / "pytorch_model.bin")
    torch.save({"model": _NotATensor()}, tmp_path / "pickled.bin")
    with pytest.raises(ValueError, match="cannot read"):  # weights_only refuses arbitrary objects
        load_gpt2_checkpoint(tmp_path / "pickled.bin")


class _NotATensor:
    pass


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such checkpoint file"):
        load_gpt2_checkpoint(tmp_path / "nope.bin")
    with pytest.raises(ValueError, match="holds no"):
        load_gpt2_checkpoint(tmp_path)


# --- downloader, against a server on 127.0.0.1 (tests never touch the network) ---------------


@pytest.fixture
def local_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_checks_sha256_and_caches(local_server, checkpoint_dir, tmp_path, monkeypatch):
    served, url = local_server
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    data = (checkpoint_dir / "pytorch_model.bin").read_bytes()
    (served / "pytorch_model.bin").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(GPT2_CHECKPOINT_FILES, "pytorch_model.bin", sha)

    path = download_gpt2_checkpoint("pytorch_model.bin", base_url=url)
    assert path == tmp_path / "cache" / "gpt2" / "pytorch_model.bin"
    assert path.read_bytes() == data
    (served / "pytorch_model.bin").unlink()  # a second call must not need the server
    assert download_gpt2_checkpoint("pytorch_model.bin", base_url=url) == path
    assert load_gpt2_checkpoint(path).keys() == torch.load(path, weights_only=True).keys()


def test_download_refuses_a_wrong_file(local_server, tmp_path, monkeypatch):
    served, url = local_server
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path / "cache"))
    (served / "model.safetensors").write_bytes(b"not the real weights")
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_gpt2_checkpoint("model.safetensors", base_url=url)
    assert not (tmp_path / "cache" / "gpt2" / "model.safetensors").exists()
    with pytest.raises(ValueError, match="unknown GPT-2 file"):
        download_gpt2_checkpoint("tf_model.h5", base_url=url)


def test_real_checkpoint_table_is_pinned():
    assert set(GPT2_CHECKPOINT_FILES) == {"model.safetensors", "pytorch_model.bin"}
    assert all(len(sha) == 64 and int(sha, 16) for sha in GPT2_CHECKPOINT_FILES.values())
    assert "/resolve/" in gpt2.GPT2_CHECKPOINT_BASE_URL  # a fixed revision, not a moving branch
    assert not gpt2.GPT2_CHECKPOINT_BASE_URL.rstrip("/").endswith("/main")
