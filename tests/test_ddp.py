"""DDP: two processes under torchrun (gloo backend, CPU) train like one process with the combined
batch. Each rank gets its own shard of every epoch and only rank 0 writes files."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from tinylm_core.metrics import read_metrics

WORKER = textwrap.dedent(
    """
    import os
    import sys

    import torch
    from torch.utils.data import DataLoader

    from tinylm_core import ModelConfig, TokenWindowDataset, Trainer, TransformerLM

    out, batch_size = sys.argv[1], int(sys.argv[2])
    # a time budget (argv[3]) differs between ranks here, so that their clocks run out apart
    budget = float(sys.argv[3]) * (1 + int(os.environ.get("RANK", 0))) if sys.argv[3:] else None
    torch.manual_seed(0)
    stream = torch.randint(0, 20, (801,), generator=torch.Generator().manual_seed(1))
    train, val = TokenWindowDataset.train_val(stream, 8, val_fraction=0.2)  # 20 val windows
    config = ModelConfig(20, d_model=16, num_layers=1, num_heads=2, d_ff=32, max_seq_len=8,
                         dropout=0.0)
    trainer = Trainer(
        TransformerLM.from_config(config),
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(val, batch_size=4),
        output_dir=out, log_interval=1, progress=False, learning_rate=1e-2, warmup_steps=1,
        time_budget=budget,
    )
    trainer.train(max_steps=4 if budget is None else 1_000_000)
    # one write per line: both ranks share the pipe, and print() writes its pieces separately
    sys.stdout.write(f"rank {trainer.rank} of {trainer.world_size} step {trainer.step} val "
                     f"{trainer.history[-1]['val_loss']}\\n")
    if trainer.ddp:
        torch.distributed.destroy_process_group()
    """
)


ROOT = str(Path(__file__).resolve().parent.parent)
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
}


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_ranks_match_one_process_with_the_combined_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "single"), "8"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path / "ddp"),
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert ddp.returncode == 0, ddp.stderr
    assert "rank 0 of 2" in ddp.stdout and "rank 1 of 2" in ddp.stdout

    a = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for name, weight in a["model"].items():
        torch.testing.assert_close(b["model"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
    # Evaluation is all-reduced over the ranks' shards: the same number as one process.
    val = lambda d: [r["val_loss"] for r in read_metrics(d) if "val_loss" in r]
    assert val(tmp_path / "ddp") == pytest.approx(val(tmp_path / "single"), rel=1e-4)
    # Only rank 0 wrote: one record per step, not two.
    assert [r["step"] for r in read_metrics(tmp_path / "ddp") if "loss" in r] == [1, 2, 3, 4]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ranks_with_clocks_apart_stop_at_the_same_step(tmp_path):
    # Rank 0's budget is half rank 1's: alone, it would stop first and leave rank 1 waiting for
    # its gradients forever. The ranks agree instead, and stop together when the first runs out.
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ddp = subprocess.run(
        [*command, str(script), str(tmp_path / "ddp"), "4", "1.0"],
        capture_output=True,
        text=True,
        timeout=180,
        env=ENV,
    )
    assert ddp.returncode == 0, ddp.stderr
    steps = {line.split()[1]: int(line.split()[5]) for line in ddp.stdout.splitlines()}
    assert set(steps) == {"0", "1"} and steps["0"] == steps["1"] > 1, ddp.stdout
    saved = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == steps["0"]
    assert saved["scheduler"]["lr_lambdas"][0]["spent"] <= 1.0  # rank 0's budget, kept
