# This file is generated from notebooks/08_putting_it_together.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "GPT2_CHECKPOINT_BASE_URL",
    "GPT2_CHECKPOINT_FILES",
    "download_gpt2_checkpoint",
    "load_gpt2_checkpoint",
    "load_gpt2",
]


# cell 37
import re
from pathlib import Path

import torch

from tinylm_core.downloads import download
from tinylm_core.model import ModelConfig, TransformerLM

try:  # optional: safetensors files are safer (no pickle) and faster to load
    import safetensors.torch as _safetensors
except ImportError:
    _safetensors = None


# cell 39
def _gpt2_key_map(num_layers):
    """(our name, GPT-2's name, is a Conv1D weight to transpose) for every tensor we load."""
    pairs = [("token_embedding.weight", "wte.weight", False)]
    pairs.append(("position_encoding.weight", "wpe.weight", False))
    for i in range(num_layers):
        for ours, theirs, conv1d in [
            ("ln_1.weight", "ln_1.weight", False),
            ("ln_1.bias", "ln_1.bias", False),
            ("attn.qkv.weight", "attn.c_attn.weight", True),
            ("attn.qkv.bias", "attn.c_attn.bias", False),
            ("attn.proj.weight", "attn.c_proj.weight", True),
            ("attn.proj.bias", "attn.c_proj.bias", False),
            ("ln_2.weight", "ln_2.weight", False),
            ("ln_2.bias", "ln_2.bias", False),
            ("mlp.fc.weight", "mlp.c_fc.weight", True),
            ("mlp.fc.bias", "mlp.c_fc.bias", False),
            ("mlp.proj.weight", "mlp.c_proj.weight", True),
            ("mlp.proj.bias", "mlp.c_proj.bias", False),
        ]:
            pairs.append((f"blocks.{i}.{ours}", f"h.{i}.{theirs}", conv1d))
    pairs += [("ln_f.weight", "ln_f.weight", False), ("ln_f.bias", "ln_f.bias", False)]
    return pairs


# cell 42
_IGNORED = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)$")  # causal-mask buffers, rebuilt by us


def _gpt2_config(sd, num_heads=None) -> ModelConfig:
    """GPT-2's sizes, read off the tensors' shapes in `sd` (hub names, no `transformer.` prefix).

    num_heads is the one size no shape reveals: it defaults to d_model // 64, true of every GPT-2.
    """
    if "wte.weight" not in sd or "wpe.weight" not in sd:
        raise ValueError(
            "not a GPT-2 state dict: it has no 'wte.weight'/'wpe.weight' (first keys: "
            f"{list(sd)[:5]}); load a GPT-2 checkpoint with load_gpt2_checkpoint(path)"
        )
    vocab_size, d_model = sd["wte.weight"].shape
    num_layers = len({k.split(".")[1] for k in sd if k.startswith("h.")})
    if num_layers == 0:
        raise ValueError("GPT-2 state dict has no transformer blocks ('h.0.*' tensors)")
    return ModelConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        num_layers=num_layers,
        num_heads=d_model // 64 if num_heads is None else num_heads,
        d_ff=sd["h.0.mlp.c_fc.weight"].shape[1] if "h.0.mlp.c_fc.weight" in sd else 4 * d_model,
        max_seq_len=sd["wpe.weight"].shape[0],
        dropout=0.0,
        positional_encoding="learned",
        bias=True,
        activation="gelu_tanh",  # GPT-2's "gelu_new"
        tie_weights=True,
    )


# cell 44
def _from_gpt2_state_dict(cls, state_dict, num_heads=None):
    """A TransformerLM holding GPT-2's weights, from a state dict in the Hugging Face layout.

    Accepts both the hub files' names (`wte.weight`, `h.0.attn.c_attn.weight`, ...) and those of a
    `GPT2LMHeadModel.state_dict()` (`transformer.` prefix, `lm_head.weight`). Dropout is 0: the
    model is ready for inference.
    """
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict of tensors, got {type(state_dict).__name__}")
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    config = _gpt2_config(sd, num_heads)
    model = cls(config=config)
    expected = model.state_dict()
    ours = {}
    for our_key, key, conv1d in _gpt2_key_map(config.num_layers):
        if key not in sd:
            raise ValueError(f"GPT-2 state dict is missing {key!r} (needed for {our_key!r})")
        tensor = sd.pop(key)
        tensor = tensor.t() if conv1d else tensor  # Conv1D stores (in, out), nn.Linear (out, in)
        if tensor.shape != expected[our_key].shape:
            raise ValueError(
                f"{key!r} has shape {tuple(tensor.shape)}, expected {tuple(expected[our_key].shape)}"
                f" for {our_key!r}; is num_heads={config.num_heads} right?"
            )
        ours[our_key] = tensor
    head = sd.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, ours["token_embedding.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight: this model's head is not tied")
    unknown = [k for k in sd if not _IGNORED.match(k)]
    if unknown:
        raise ValueError(f"unexpected tensors in the GPT-2 state dict: {unknown[:5]}")
    ours["lm_head.weight"] = ours["token_embedding.weight"]  # tied: the same tensor
    model.load_state_dict(ours)
    return model.eval()


# Attached here rather than in model.py: the model does not need to know about GPT-2's file layout.
TransformerLM.from_gpt2_state_dict = classmethod(_from_gpt2_state_dict)


# cell 48
# The public 124M checkpoint, pinned to one revision of the Hub repository so that the bytes (and
# so the checksums) never change. The sha256 values are those the Hub publishes for these files
# (their Git LFS object ids); a download is kept only if it matches.
GPT2_CHECKPOINT_BASE_URL = (
    "https://huggingface.co/openai-community/gpt2/resolve/607a30d783dfa663caf39e06633721c8d4cfcd7e"
)
GPT2_CHECKPOINT_FILES = {  # file name -> sha256
    "model.safetensors": "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707",  # 548 MB
    "pytorch_model.bin": "7c5d3f4b8b76583b422fcb9189ad6c89d5d97a094541ce8932dce3ecabde1421",  # 548 MB
}


def _default_checkpoint_file():
    return "model.safetensors" if _safetensors is not None else "pytorch_model.bin"


def download_gpt2_checkpoint(filename=None, base_url=GPT2_CHECKPOINT_BASE_URL) -> Path:
    """Path of GPT-2 124M's weights in the cache (cache_dir()/gpt2/), downloaded and checked once.

    filename: "model.safetensors" (the default when safetensors is installed) or
    "pytorch_model.bin". Raises ConnectionError when offline, ValueError on a checksum mismatch.
    """
    filename = filename or _default_checkpoint_file()
    if filename not in GPT2_CHECKPOINT_FILES:
        raise ValueError(
            f"unknown GPT-2 file {filename!r}; choose one of {list(GPT2_CHECKPOINT_FILES)}"
        )
    url = f"{base_url.rstrip('/')}/{filename}"
    return download(url, GPT2_CHECKPOINT_FILES[filename], f"gpt2/{filename}")


# cell 49
def load_gpt2_checkpoint(path) -> dict:
    """The state dict in a GPT-2 checkpoint: a `model.safetensors` or `pytorch_model.bin` file, or a
    folder holding one (model.safetensors first when the safetensors package is installed)."""
    path = Path(path)
    if path.is_dir():
        names = [_default_checkpoint_file(), "pytorch_model.bin"]
        found = [path / n for n in names if (path / n).is_file()]
        if not found:
            raise ValueError(
                f"{path} holds no {' or '.join(dict.fromkeys(names))}; pass the checkpoint file "
                "itself, or get one with download_gpt2_checkpoint()"
            )
        path = found[0]
    if not path.is_file():
        raise ValueError(f"no such checkpoint file: {path}; download_gpt2_checkpoint() fetches one")
    if path.suffix == ".safetensors":
        if _safetensors is None:
            raise ValueError(
                f"{path} is a safetensors file but the safetensors package is not installed; "
                "`pip install safetensors`, or use pytorch_model.bin instead"
            )
        load = _safetensors.load_file
    else:  # weights_only: a pickle may run code, so accept only tensors and plain containers
        load = lambda p: torch.load(p, map_location="cpu", weights_only=True)
    try:
        state_dict = load(path)
    except Exception as e:  # each format fails in its own way on a truncated or foreign file
        raise ValueError(
            f"cannot read {path} as a {path.suffix} checkpoint; the file may be truncated (an "
            f"interrupted download: delete it and download again) or not a checkpoint ({e})"
        ) from e
    if not isinstance(state_dict, dict) or not any(
        k.removeprefix("transformer.") == "wte.weight" for k in state_dict
    ):
        keys = list(state_dict)[:5] if isinstance(state_dict, dict) else type(state_dict).__name__
        raise ValueError(
            f"{path} is not a GPT-2 checkpoint (no 'wte.weight' tensor; found {keys}); for a "
            "checkpoint saved by this course's Trainer use load_checkpoint instead"
        )
    return state_dict


# cell 51
def load_gpt2(path=None, num_heads=None) -> TransformerLM:
    """GPT-2 as a TransformerLM: from a checkpoint file or folder, or the cached 124M download."""
    path = download_gpt2_checkpoint() if path is None else path
    return TransformerLM.from_gpt2_state_dict(load_gpt2_checkpoint(path), num_heads=num_heads)
