# This file is generated from notebooks/09_finetuning.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "save_lora", "load_lora"]


# cell 49
import math

import torch
import torch.nn as nn

from tinylm_core.checkpoint import checksum
from tinylm_core.files import atomic_file

FORMAT, VERSION = "tinylm-lora", 1


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: base(x) + (alpha / rank) * B A x."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.rank, self.alpha = base, rank, alpha
        self.scaling = alpha / rank
        base.requires_grad_(False)
        weight = base.weight
        self.lora_A = nn.Parameter(
            torch.empty(rank, base.in_features, dtype=weight.dtype, device=weight.device)
        )
        self.lora_B = nn.Parameter(
            torch.zeros(base.out_features, rank, dtype=weight.dtype, device=weight.device)
        )
        # A random, B zero (the paper's choice): the update B A is zero until B learns.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own initialisation

    # cell 50
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in)
        # x A^T B^T: two thin products, never the (out, in) matrix B A itself
        update = (x @ self.lora_A.T) @ self.lora_B.T  # (..., r) then (..., out)
        return self.base(x) + self.scaling * update  # (..., out)

    # cell 50
    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing the same function: W + (alpha / rank) B A."""
        base = self.base
        linear = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        linear.to(base.weight.device, base.weight.dtype)
        with torch.no_grad():
            update = self.scaling * (self.lora_B @ self.lora_A)  # (out, in)
            linear.weight.copy_(base.weight + update)
            if base.bias is not None:
                linear.bias.copy_(base.bias)
        return linear.requires_grad_(base.weight.requires_grad)


# cell 53
def _check_lora_args(rank, alpha):
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a positive integer (e.g. 8), got {rank!r}")
    if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive number (e.g. 16), got {alpha!r}")


def _find(model, names, kind):
    """{module name: module} for every module whose name ends with one of `names`."""
    found = {}
    for target in names:
        hits = {n: m for n, m in model.named_modules() if n == target or n.endswith("." + target)}
        if not hits:
            linear = sorted({n.split(".")[-2] + "." + n.split(".")[-1] for n, m in model.named_modules()
                             if isinstance(m, nn.Linear) and "." in n})  # fmt: skip
            raise ValueError(
                f"{kind} {target!r} matches no module of this model; linear layers here end with "
                f"{linear}"
            )
        found.update(hits)
    return found


# cell 54
def apply_lora(model, rank=8, alpha=16.0, target_modules=("attn.qkv", "attn.proj"), train_also=()):
    """Freeze `model` and wrap each nn.Linear named by `target_modules` in a LoRALinear, in place.
    Only the LoRA matrices (and the modules in `train_also`, e.g. a classifier's head) train."""
    _check_lora_args(rank, alpha)
    if isinstance(target_modules, str):
        target_modules = (target_modules,)
    targets = _find(model, target_modules, "target module")
    for name, module in targets.items():
        if not isinstance(module, nn.Linear):
            kind = "already has LoRA" if isinstance(module, LoRALinear) else "is not nn.Linear"
            raise ValueError(f"target module {name!r} {kind}; LoRA wraps plain nn.Linear layers")
        if any(module.weight is e.weight for e in model.modules() if isinstance(e, nn.Embedding)):
            raise ValueError(
                f"target module {name!r} shares its weight with an embedding (tied); leave it out"
            )
    model.requires_grad_(False)
    for name, module in targets.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(module, rank, alpha))
    for module in _find(model, train_also, "train_also module").values():
        module.requires_grad_(True)
    return model


# cell 57
def merge_lora(model):
    """Replace every LoRALinear in `model` by the equivalent plain nn.Linear, in place; return it."""
    wrapped = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    if not wrapped:
        raise ValueError("this model has no LoRA layers to merge; call apply_lora first")
    for name, module in wrapped:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.merged())
    return model


# cell 59
def save_lora(path, model):
    """Write the trainable tensors of a LoRA model (adapters and `train_also` modules)."""
    layers = {n: [m.rank, m.alpha] for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not layers:
        raise ValueError("this model has no LoRA layers; call apply_lora before save_lora")
    weights = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    adapters = {"format": FORMAT, "version": VERSION, "layers": layers, "weights": weights}
    adapters["checksum"] = checksum(adapters)
    with atomic_file(path) as f:
        torch.save(adapters, f)


# cell 60
def load_lora(path, model):
    """Load `save_lora`'s tensors into `model`, prepared with the same apply_lora call; return it."""
    try:  # weights_only: tensors and plain data only, never code
        adapters = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, foreign or unsafe files each fail in their own way
        raise ValueError(f"cannot read {path} as LoRA adapters ({type(e).__name__})") from None
    if not isinstance(adapters, dict) or adapters.get("format") != FORMAT:
        raise ValueError(f"{path} is not a LoRA adapter file written by save_lora")
    if adapters.pop("checksum", None) != checksum(adapters):
        raise ValueError(f"{path} is damaged: its checksum does not match its contents")
    layers = {n: [m.rank, m.alpha] for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    if layers != adapters["layers"]:
        raise ValueError(
            f"{path} holds adapters for other layers or ranks than this model's; call apply_lora "
            f"with the same rank, alpha and target_modules first (file: {len(adapters['layers'])} "
            f"layers, model: {len(layers)})"
        )
    params = dict(model.named_parameters())
    for name, tensor in adapters["weights"].items():
        if name not in params or params[name].shape != tensor.shape:
            raise ValueError(f"{path}: {name} {tuple(tensor.shape)} does not fit this model")
        with torch.no_grad():
            params[name].copy_(tensor)
    return model
