# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "resolve_device",
    "autocast_dtype",
    "autocast",
    "join_process_group",
    "wrap_model",
    "seed_everything",
    "StopSignals",
    "any_rank",
    "RunDirectoryInUse",
    "process_alive",
    "RunLock",
    "FinalLine",
    "progress_bar",
]


# cell 59
import os
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


# cell 60
def resolve_device(device="auto", local_rank=None):
    """'auto' -> cuda, then mps (Apple GPUs), then cpu. Under DDP (`local_rank` given) each
    process takes its own GPU. A device that is not there is a ValueError naming the fix."""
    if device == "auto":
        has_mps = torch.backends.mps.is_available()
        device = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    present = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not present.get(device.type, True):
        raise ValueError(f"device {str(device)!r} is not available here; use 'cpu' or 'auto'")
    if local_rank is not None and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


# cell 62
def autocast_dtype(precision, device):
    """torch.bfloat16 for 'bf16', and for 'auto' on a GPU that supports it; None means fp32."""
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if precision == "bf16" or (precision == "auto" and cuda_bf16) else None


def autocast(device, dtype):
    """The autocast context for `dtype`, or a no-op for fp32."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


# cell 64
def join_process_group():
    """-> (ddp, rank, world_size, local_rank). Under torchrun (WORLD_SIZE > 1) join the process
    group, NCCL on GPUs and gloo on CPUs; otherwise one process: (False, 0, 1, None)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False, 0, 1, None
    return True, dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


# cell 65
def wrap_model(model, device, ddp, compile):
    """The model as training runs it: in DistributedDataParallel under torchrun (it broadcasts rank
    0's weights, then averages gradients in backward()), then compiled if asked."""
    if ddp:
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(model) if compile else model


def seed_everything(seed, rank=0):
    """Seed Python's, NumPy's and PyTorch's generators; each rank draws other dropout masks."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed + rank)


# cell 67
class StopSignals:
    """Within `with StopSignals() as stop:`, Ctrl-C (SIGINT) and SIGTERM set `stop.requested` (the
    signal's name) instead of killing the process; a second Ctrl-C raises KeyboardInterrupt.
    Handlers can only be set from the main thread; elsewhere it does nothing."""

    def __init__(self):
        self.requested, self._previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    # cell 69
    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user really wants out now
        self.requested = {"SIGINT": "Ctrl-C"}.get(signal.Signals(signum).name, "SIGTERM")
        print(
            f"\n{self.requested}: stopping after this step and saving a checkpoint", file=sys.stderr
        )

    # cell 72
    def agreed(self, ddp, device):
        """Whether a stop was requested on this rank or, under DDP, on any rank."""
        return any_rank(self.requested is not None, ddp, device)


# cell 72
def any_rank(flag, ddp, device):
    """Whether `flag` holds on this rank or, under DDP, on any rank. Every rank gets the same
    answer, so all of them leave the loop at the same step."""
    if not ddp:
        return bool(flag)
    flag = torch.tensor([float(flag)], device=device)
    dist.all_reduce(flag)  # the sum of every rank's 0 or 1
    return bool(flag.item())


# cell 74
class RunDirectoryInUse(RuntimeError):
    """Another live process holds the run directory's lock."""


def process_alive(pid):
    """Whether process `pid` exists (on Windows, where the check would be a signal, assume so)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


# cell 75
class RunLock:
    """`with RunLock(directory):` claims the directory for this process (file run.lock, holding
    the PID). A lock held by a live process raises RunDirectoryInUse; a dead one's is taken over.
    Nested claims by one process are fine (the outer one releases)."""

    def __init__(self, directory):
        self.path, self._held = Path(directory) / "run.lock", False

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._held:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._live_owner()
                if owner == os.getpid():
                    return self  # held by this process already (an outer `with RunLock`)
                if owner is not None:
                    raise RunDirectoryInUse(
                        f"{self.path.parent} is in use by another training run (PID {owner}, "
                        f"lock file {self.path}); wait for it to end or use another directory (if no "
                        "run is active, delete the lock file)"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self._held = True
        return self

    def __exit__(self, *exc):
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    # cell 76
    def _live_owner(self):
        """The PID holding the lock, or None when the lock is stale (its process died) or gone."""
        try:
            text, age = self.path.read_text().strip(), time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        if not text.isdigit():  # being written by a process that just created it, or junk
            return "unknown" if age < 10 else None
        pid = int(text)
        return pid if pid == os.getpid() or process_alive(pid) else None


# cell 79
class FinalLine:
    """A progress 'bar' that prints one line when closed: steps, time and the last postfix."""

    def __init__(self, total, initial=0, enabled=True):
        self.total, self.n, self.enabled, self.postfix = total, initial, enabled, {}
        self.start = time.perf_counter()

    def update(self, n=1):
        self.n += n

    def set_postfix(self, refresh=False, **values):
        self.postfix = values

    def close(self):
        if self.enabled:
            extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
            seconds = time.perf_counter() - self.start
            print(f"{self.n}/{self.total} steps in {seconds:.0f} s{extra}", file=sys.stderr)


# cell 80
def progress_bar(total, initial=0, enabled=True):
    """A live tqdm bar in a terminal (or a Jupyter widget when ipywidgets is installed), else FinalLine."""
    if enabled and sys.stderr.isatty():
        from tqdm.std import tqdm

        return tqdm(total=total, initial=initial, unit="step", mininterval=1.0, dynamic_ncols=True)
    try:
        import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
        from IPython import get_ipython

        if enabled and "IPKernelApp" in getattr(get_ipython(), "config", {}):
            from tqdm.notebook import tqdm

            return tqdm(total=total, initial=initial, unit="step")
    except ImportError:
        pass
    return FinalLine(total, initial, enabled)
