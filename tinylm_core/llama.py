# This file is generated from notebooks/11_modern_architectures.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "llama_model_config",
    "read_safetensors",
    "write_safetensors",
    "LLAMA_CHECKPOINTS",
    "download_llama_checkpoint",
    "load_llama",
]


# cell 31
import json
import math
import struct
from pathlib import Path

import numpy as np
import torch

from tinylm_core.downloads import download
from tinylm_core.model import TransformerLM
from tinylm_core.model_config import SIZE_LIMITS, ModelConfig
from tinylm_core.positional import RotaryEmbedding


# cell 32
def llama_model_config(hf_config: dict, max_seq_len: int | None = None) -> ModelConfig:
    """The ModelConfig of a Hugging Face Llama model, from its config.json (as a dict).

    max_seq_len: the longest input to allow (default: the model's max_position_embeddings); it
    sizes the RoPE tables only, so a smaller value saves a little memory and changes nothing else.
    """
    c = dict(hf_config)
    if c.get("model_type", "llama") != "llama":
        raise ValueError(
            f"model_type is {c['model_type']!r}, not 'llama'; only Llama-style models map"
        )
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}  # transformers 5, and 4
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ValueError(
            f"RoPE scaling {rope} is not supported (Llama 3.1+ rescales long wavelengths); "
            "pick a model without rope_scaling, e.g. SmolLM2 or TinyLlama"
        )
    if c.get("hidden_act", "silu") != "silu" or c.get("attention_bias", False) != c.get(
        "mlp_bias", False
    ):
        raise ValueError("only silu MLPs with biases everywhere or nowhere map onto TransformerLM")
    C, H = c["hidden_size"], c["num_attention_heads"]
    if c.get("head_dim") not in (None, C // H):
        raise ValueError(f"head_dim={c['head_dim']} differs from hidden_size / num_attention_heads")
    positions = min(c.get("max_position_embeddings", 2048), SIZE_LIMITS["max_seq_len"])
    return ModelConfig(
        vocab_size=c["vocab_size"], d_model=C, num_layers=c["num_hidden_layers"], num_heads=H,
        d_ff=c["intermediate_size"], max_seq_len=max_seq_len or positions, dropout=0.0,
        positional_encoding="rope", bias=c.get("attention_bias", False), activation="silu",
        tie_weights=c.get("tie_word_embeddings", False), layer_norm_eps=c.get("rms_norm_eps", 1e-6),
        norm="rmsnorm", mlp="gated", num_kv_heads=c.get("num_key_value_heads") or H,
        rope_theta=float(rope.get("rope_theta", c.get("rope_theta", 10000.0))),
    )  # fmt: skip


# cell 36
def _llama_layer_map(i: int) -> list:
    """(our name, Hugging Face names) of layer i; several names are concatenated in order."""
    hf = f"layers.{i}."
    attn = [f"{hf}self_attn.{p}_proj" for p in "qkv"]
    return [
        (f"blocks.{i}.ln_1.weight", [f"{hf}input_layernorm.weight"]),
        (f"blocks.{i}.attn.qkv.weight", [f"{n}.weight" for n in attn]),
        (f"blocks.{i}.attn.qkv.bias", [f"{n}.bias" for n in attn]),
        (f"blocks.{i}.attn.proj.weight", [f"{hf}self_attn.o_proj.weight"]),
        (f"blocks.{i}.attn.proj.bias", [f"{hf}self_attn.o_proj.bias"]),
        (f"blocks.{i}.ln_2.weight", [f"{hf}post_attention_layernorm.weight"]),
        (f"blocks.{i}.mlp.fc.weight", [f"{hf}mlp.up_proj.weight"]),
        (f"blocks.{i}.mlp.fc.bias", [f"{hf}mlp.up_proj.bias"]),
        (f"blocks.{i}.mlp.gate.weight", [f"{hf}mlp.gate_proj.weight"]),
        (f"blocks.{i}.mlp.gate.bias", [f"{hf}mlp.gate_proj.bias"]),
        (f"blocks.{i}.mlp.proj.weight", [f"{hf}mlp.down_proj.weight"]),
        (f"blocks.{i}.mlp.proj.bias", [f"{hf}mlp.down_proj.bias"]),
    ]


# cell 38
def _llama_tensors(sd: dict, config: ModelConfig, expected: dict, dtype) -> dict:
    """Our state dict, built from `sd` (Hugging Face names, `model.` prefix removed), which it
    empties; every tensor's shape checked against `expected` (our model's state dict)."""
    pairs = [("token_embedding.weight", ["embed_tokens.weight"]), ("ln_f.weight", ["norm.weight"])]
    pairs += [p for i in range(config.num_layers) for p in _llama_layer_map(i)]
    if not config.tie_weights:
        pairs.append(("lm_head.weight", ["lm_head.weight"]))
    ours = {}
    for our_key, keys in pairs:
        if our_key not in expected:  # biases, when the model has none
            continue
        missing = [k for k in keys if k not in sd]
        if missing:
            raise ValueError(f"Llama state dict is missing {missing} (needed for {our_key!r})")
        tensor = torch.cat([sd.pop(k) for k in keys]).to(dtype)  # q, k, v stacked: our qkv
        if tensor.shape != expected[our_key].shape:
            raise ValueError(
                f"{keys[0]!r} has shape {tuple(tensor.shape)}, expected "
                f"{tuple(expected[our_key].shape)} for {our_key!r}; does the config match?"
            )
        ours[our_key] = tensor
    return ours


# cell 40
def _from_llama_state_dict(cls, state_dict: dict, hf_config: dict, dtype=torch.float32):
    """A TransformerLM holding a Hugging Face Llama model's weights (names of LlamaForCausalLM's
    state_dict, with or without the `model.` prefix), in eval mode, as `dtype` (default float32;
    checkpoints often store bfloat16)."""
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    config = llama_model_config(hf_config)
    sd = {k.removeprefix("model."): v for k, v in state_dict.items()}
    with torch.device("meta"):  # no memory, no random init: every tensor is replaced below
        model = cls(config=config)
    ours = _llama_tensors(sd, config, model.state_dict(), dtype)
    sd.pop("lm_head.weight", None)  # tied: the embedding, stored a second time by some files
    unknown = [k for k in sd if not k.endswith("rotary_emb.inv_freq")]  # recomputed by us
    if unknown:
        raise ValueError(f"unexpected tensors in the Llama state dict: {unknown[:5]}")
    model.load_state_dict(ours, strict=False, assign=True)  # assign: take our tensors as they are
    if config.tie_weights:
        model.lm_head.weight = model.token_embedding.weight
    head_dim = config.d_model // config.num_heads  # RoPE's tables were made on "meta": redo them
    model.rotary = RotaryEmbedding(head_dim, config.max_seq_len, base=config.rope_theta)
    assert not any(p.is_meta for p in model.parameters()), "a parameter was not loaded"
    return model.eval()


TransformerLM.from_llama_state_dict = classmethod(_from_llama_state_dict)


# cell 44
# safetensors' dtype names -> torch dtypes (the ones checkpoints use)
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


# cell 46
def read_safetensors(path) -> dict:
    """The tensors of a .safetensors file, without the safetensors package: 8 bytes (little-endian
    header length n), n bytes of JSON {name: {dtype, shape, data_offsets}}, then the raw
    little-endian bytes, offsets counted from the end of the header."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0] if size >= 8 else -1
        try:
            header = json.loads(f.read(n)) if 2 <= n <= size - 8 else None
        except ValueError:  # not JSON
            header = None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file, or it is truncated: no valid header")
    header.pop("__metadata__", None)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n) if size > 8 + n else b""
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        dtype, shape = _DTYPES[info["dtype"]], info["shape"]
        if end > len(data) or end - start != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} lies outside the file; is it truncated?")
        raw = torch.from_numpy(np.array(data[start:end], dtype=np.uint8))  # a copy in memory
        tensors[name] = raw.view(dtype).reshape(shape)
    return tensors


# cell 48
def write_safetensors(tensors: dict, path) -> None:
    """Write `tensors` ({name: tensor}) as a .safetensors file, the format read_safetensors reads."""
    names = {dtype: name for name, dtype in _DTYPES.items()}
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        raw = t.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}  # fmt: skip
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # pad the header so that the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.writelines(blobs)


# cell 51
# SmolLM2-135M, pinned to one revision of its Hub repository, so the bytes (and the sha256)
# never change; the sha256 is the file's Git LFS id. Its config.json is copied here.
LLAMA_CHECKPOINTS = {
    "SmolLM2-135M": dict(
        url="https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/"
        "93efa2f097d58c2a74874c7e644dbc9b0cee75a2/model.safetensors",
        sha256="80521b40281d6ce74e35c9282c22539e75aa0ac8578892b2a59955ef78d55da1",  # 270 MB
        config=dict(
            model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
            num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
            max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
            tie_word_embeddings=True, hidden_act="silu",
        ),
    ),
}  # fmt: skip


# cell 53
def download_llama_checkpoint(name: str = "SmolLM2-135M") -> Path:
    """Path of a LLAMA_CHECKPOINTS model's weights in the cache (cache_dir()/llama/name/),
    downloaded and checked once. Raises ConnectionError offline, ValueError on a bad checksum."""
    if name not in LLAMA_CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}; choose one of {list(LLAMA_CHECKPOINTS)}")
    entry = LLAMA_CHECKPOINTS[name]
    return download(entry["url"], entry["sha256"], f"llama/{name}/model.safetensors")


# cell 55
def load_llama(path=None, name: str = "SmolLM2-135M", dtype=torch.float32) -> TransformerLM:
    """A Llama-family model as a TransformerLM, from a folder holding config.json and
    model.safetensors (as the Hub and save_pretrained write them), or, without `path`, the
    cached download of LLAMA_CHECKPOINTS[name]."""
    if path is None:
        weights, hf_config = download_llama_checkpoint(name), LLAMA_CHECKPOINTS[name]["config"]
    else:
        folder = Path(path)
        weights = folder / "model.safetensors"
        if not (folder / "config.json").is_file() or not weights.is_file():
            raise ValueError(
                f"{folder} must hold config.json and model.safetensors (a checkpoint split into "
                "model-0000x-of-0000y.safetensors files is not supported: load a smaller model)"
            )
        hf_config = json.loads((folder / "config.json").read_text())
    return TransformerLM.from_llama_state_dict(read_safetensors(weights), hf_config, dtype=dtype)
