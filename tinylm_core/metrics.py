# This file is generated from notebooks/06_training.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "append_metrics",
    "write_metrics",
    "read_metrics",
    "MetricsWindow",
    "plot_metrics",
    "summarize",
]


# cell 82
import json
import time
from pathlib import Path

from tinylm_core.files import atomic_file


def append_metrics(path, record):
    """Add one record as a JSON line to metrics.jsonl."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def write_metrics(path, records):
    """Replace metrics.jsonl with `records`, atomically."""
    with atomic_file(path) as f:
        f.write("".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))


# cell 83
def read_metrics(path_or_dir):
    """The records of a metrics.jsonl (the file or its directory), as a list of dicts. A torn last
    line (a run killed mid-write) is skipped; a bad line elsewhere is an error naming it."""
    path = Path(path_or_dir)
    path = path / "metrics.jsonl" if path.is_dir() else path
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line)) if line.strip() else None
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn: the writer was killed mid-line
            raise ValueError(
                f"{path}, line {number}: not a JSON record; delete that line"
            ) from None
    return records


# cell 86
class MetricsWindow:
    """The steps since the last metrics record: summed loss and step count (saved in
    checkpoints), and a clock for tokens/s and ms/step (restarted, never saved)."""

    def __init__(self, loss=0.0, steps=0):
        self.loss, self.steps = loss, steps
        self.tokens, self.timed_steps, self.start = 0, 0, time.perf_counter()

    def add(self, loss, tokens):
        self.loss, self.steps = self.loss + loss, self.steps + 1
        self.tokens, self.timed_steps = self.tokens + tokens, self.timed_steps + 1

    def record(self, step, **values):
        """The window as one record (step, mean loss, `values`, speed); then an empty window."""
        seconds = time.perf_counter() - self.start
        record = {"step": step, "loss": self.loss / self.steps, **values}
        record["tokens_per_sec"] = self.tokens / seconds
        record["ms_per_step"] = 1000 * seconds / self.timed_steps
        self.__init__()
        return record

    def state_dict(self):
        return {"loss": self.loss, "steps": self.steps}


# cell 89
def plot_metrics(metrics):
    """Train/val loss, learning rate and gradient norm against step. `metrics` is a list of
    records (`trainer.history`) or a path to metrics.jsonl / its directory. Returns the figure."""
    import matplotlib.pyplot as plt  # in the `course` extra, not needed by the library

    records = metrics if isinstance(metrics, list) else read_metrics(metrics)
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_loss" in r]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    axes[0].plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val")
    axes[0].set(title="loss", xlabel="step")
    axes[0].legend()
    axes[1].plot([r["step"] for r in train], [r["lr"] for r in train])
    axes[1].set(title="learning rate", xlabel="step")
    axes[2].plot([r["step"] for r in train], [r["grad_norm"] for r in train])
    axes[2].set(title="gradient norm (before clipping)", xlabel="step", yscale="log")
    fig.tight_layout()
    return fig


# cell 131
def summarize(history, step, seconds, stopped):
    """train()'s summary; a loss is None until measured (a run stopped before its first record)."""
    losses = [r["loss"] for r in history if "loss" in r]
    evals = [r["val_loss"] for r in history if "val_loss" in r]
    return {
        "step": step,
        "train_loss": losses[-1] if losses else None,
        "val_loss": evals[-1] if evals else None,
        "elapsed_s": seconds,
        "stopped_early": stopped,
    }
