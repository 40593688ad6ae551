# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "CHECKPOINT_NAME",
    "checksum",
    "save_checkpoint",
    "CheckpointError",
    "checkpoint_path",
    "read_checkpoint",
    "model_from_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "check_resumable",
]


# cell 37
import hashlib
import pickle
import random
import re
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from tinylm_core.files import atomic_file
from tinylm_core.model import TransformerLM
from tinylm_core.model_config import ModelConfig
from tinylm_core.tokenizer import Tokenizer

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT, VERSION = "tinylm-checkpoint", 2


# cell 39
def checksum(obj):
    """sha256 (hex) of a checkpoint's contents: tensors by dtype, shape and bytes, the rest by repr."""
    h = hashlib.sha256()

    def walk(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().contiguous()
            h.update(f"T{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            h.update(f"D{len(x)}".encode())
            for key, value in x.items():
                walk(key)
                walk(value)
        elif isinstance(x, list | tuple):
            h.update(f"L{len(x)}".encode())
            for value in x:
                walk(value)
        else:
            h.update(f"V{type(x).__name__}:{x!r};".encode())

    walk(obj)
    return h.hexdigest()


# cell 42
def _unwrap(model):
    """The plain module under torch.compile and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile keeps the original here
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# cell 43
def save_checkpoint(path, model, tokenizer=None, **state):
    """Write the weights, their ModelConfig, the tokenizer (as a dict) and any extra `state`
    (plain values and tensors) atomically, with a checksum. Refuses non-finite weights."""
    model = _unwrap(model)
    weights = model.state_dict()
    floats = [w for w in weights.values() if w.is_floating_point()]
    bad = sum(int((~torch.isfinite(w)).sum()) for w in floats)
    if bad:
        raise FloatingPointError(
            f"refusing to write {path}: {bad:,} of {sum(w.numel() for w in floats):,} weights are "
            "NaN or infinite (training diverged); any previous checkpoint there is kept"
        )
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "model": weights,
        "model_config": asdict(model.config),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        **state,
    }
    checkpoint["checksum"] = checksum(checkpoint)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        torch.save(checkpoint, f)
    return Path(path)


# cell 45
class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file, the problem and the fix."""


def checkpoint_path(path_or_dir):
    """The checkpoint file itself: `path_or_dir`, or checkpoint.pt inside it."""
    path = Path(path_or_dir)
    path = path / CHECKPOINT_NAME if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}; pass a checkpoint file or a training output directory "
            f"holding {CHECKPOINT_NAME}"
        )
    return path


# cell 46
def _load_error(path, error):
    """A CheckpointError for what torch.load raised, without PyTorch's advice to disable safety."""
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
    if unsafe:
        return CheckpointError(
            f"{path} holds objects that are not plain data (it asks for {unsafe.group(1)}); the "
            "safe loader refused it and nothing in it ran. It is not a tinylm checkpoint: do not "
            "try to load it another way unless you wrote it yourself"
        )
    kind = "pickled objects the safe loader refuses" if "weights_only" in str(error) else error
    return CheckpointError(
        f"{path} is damaged (truncated or corrupted: {kind}); use another checkpoint or re-train"
    )


# cell 47
def read_checkpoint(path_or_dir):
    """The contents of a checkpoint file, on the CPU, after every check: safe loading, the
    format marker and the checksum. Adds "path". Raises FileNotFoundError or CheckpointError."""
    path = checkpoint_path(path_or_dir)
    try:
        with warnings.catch_warnings():  # PyTorch's pickle-protocol warnings say nothing useful
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        raise _load_error(path, e) from None  # `from None`: PyTorch's message is not relayed
    except Exception as e:  # any other parse failure of a damaged file
        raise _load_error(path, e) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a tinylm checkpoint (no format marker); pass a file written by "
            "save_checkpoint or a Trainer"
        )
    if checkpoint.get("version", 1) >= 2:  # version 1 files predate checksums
        stored = checkpoint.pop("checksum", None)
        if stored != checksum(checkpoint):
            raise CheckpointError(
                f"{path} is damaged: its checksum does not match its contents (a flipped bit or "
                "an incomplete copy); use another checkpoint or re-train"
            )
    checkpoint["path"] = str(path)
    return checkpoint


# cell 49
def model_from_checkpoint(checkpoint):
    """The TransformerLM a checkpoint describes, weights loaded, after checking its config
    against the stored tensors (names, shapes, buffer sizes) without allocating anything."""
    path, weights = checkpoint["path"], checkpoint.get("model")
    try:
        config = ModelConfig(**checkpoint["model_config"])
        with torch.device("meta"):  # shapes only, no memory
            skeleton = TransformerLM.from_config(config)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{path} has an invalid model_config ({e}); use another checkpoint or re-train"
        ) from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items()} if isinstance(weights, dict) else {}
    if expected != found:
        wrong = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise CheckpointError(
            f"{path}: its model_config does not match its weights ({wrong}); use another "
            "checkpoint or re-train"
        )
    model = TransformerLM.from_config(config)
    model.load_state_dict(weights)
    return model


# cell 50
def load_checkpoint(path_or_dir, device="cpu"):
    """Load a checkpoint written by `save_checkpoint` -> (model in eval mode, tokenizer, info).

    `info` holds everything else that was saved (step, metrics, training config, ...) and `path`.
    The file is read on the CPU, then the model moves to `device`.
    """
    checkpoint = read_checkpoint(path_or_dir)
    model = model_from_checkpoint(checkpoint)
    d = checkpoint.get("tokenizer")
    try:
        tokenizer = Tokenizer.from_dict(d) if d is not None else None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{checkpoint['path']} holds an invalid tokenizer ({e}); use another checkpoint or re-train"
        ) from None
    try:
        model.to(device)
    except (AssertionError, RuntimeError) as e:  # no CUDA build, no such GPU, ...
        raise RuntimeError(
            f"device {device!r} is not available here ({e}); the checkpoint "
            f"{checkpoint['path']} is fine: load it with device='cpu'"
        ) from None
    skip = {"format", "version", "model", "tokenizer", "optimizer", "scheduler", "rng", "window"}
    info = {k: v for k, v in checkpoint.items() if k not in skip}
    return model.eval(), tokenizer, info


# cell 53
def rng_state():
    """Every random number generator training touches, as tensors and plain Python values only."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state):
    """Put back what `rng_state()` returned."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# cell 122
def check_resumable(checkpoint, model, tokenizer):
    """CheckpointError unless `checkpoint` holds training state for this model and tokenizer."""
    path, ours = checkpoint["path"], asdict(model.config)
    theirs = checkpoint.get("model_config") or {}
    diff = [f"{k} {theirs.get(k)} there, {v} here" for k, v in ours.items() if theirs.get(k) != v]
    if diff:
        raise CheckpointError(
            f"cannot resume from {path}: it holds another model ({'; '.join(diff)}; max_seq_len "
            "is the block size); resume with the same settings as the first run"
        )
    saved = checkpoint.get("tokenizer")
    if tokenizer is not None and saved is not None and tokenizer.to_dict() != saved:
        kinds = f"{saved.get('type')} there, {tokenizer.to_dict().get('type')} here"
        raise CheckpointError(
            f"cannot resume from {path}: its tokenizer differs from this run's ({kinds}; even the "
            "same kind and size can map ids to other characters); resume with the same corpus "
            "and tokenizer as the first run"
        )
    if "optimizer" not in checkpoint or "rng" not in checkpoint:
        raise CheckpointError(
            f"cannot resume from {path}: it holds weights only, no training state; resume "
            "from a checkpoint a Trainer wrote"
        )
