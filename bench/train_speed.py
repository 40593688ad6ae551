"""Training speed on CPU: nanoGPT's character-level Tiny Shakespeare recipe, and ours.

It trains recipes of tinylm_core.RECIPES with the package's Trainer and prints ms/step
(median), tokens/s, model FLOPs utilisation (MFU) against an fp32 matmul peak measured on the spot
with torch.mm, and the validation loss reached (over the whole held-out 10%, in non-overlapping
windows) with the wall time it took. Runs: nanogpt-cpu (2,000 steps), then the recommended
shakespeare-char recipe for 1,000 steps and for 2,000 steps.

With --nanogpt DIR (a checkout of karpathy/nanoGPT; never committed here) it also times nanoGPT's
own train.py at its CPU shape (4 layers, 128 dim, context 64, batch 12, no dropout) against our
nanogpt-cpu recipe, alternating nanoGPT, ours, nanoGPT, ours... in one sitting, and prints the ratio
of each pair: figures from another day or machine are never compared.

    python bench/train_speed.py                      # full runs: several minutes of CPU
    python bench/train_speed.py --quick              # 60 steps per recipe: throughput only
    python bench/train_speed.py --recipe nanogpt-cpu --steps 500
    python bench/train_speed.py --nanogpt ../nanoGPT --rounds 3   # side by side, ms/step only
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tinylm_core import (
    RECIPES,
    CharTokenizer,
    ModelConfig,
    TokenWindowDataset,
    Trainer,
    TrainingConfig,
    TransformerLM,
    load_corpus,
)

NANOGPT_CPU_ARGS = [  # nanoGPT's README: "baby GPT" on a CPU, dropout off as in our recipe
    "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=1",
    "--eval_interval=1000000", "--log_interval=1", "--block_size=64", "--batch_size=12",
    "--n_layer=4", "--n_head=4", "--n_embd=128", "--lr_decay_iters=2000", "--dropout=0.0",
]  # fmt: skip
CORPUS = Path(__file__).resolve().parent.parent / "data" / "tinyshakespeare.txt"


def matmul_peak_gflops(n=1024, repeats=20):
    """Best fp32 torch.mm throughput over a few square sizes: what 'peak' means for MFU here."""
    best = 0.0
    for size in (n // 2, n, 2 * n):
        a, b = torch.randn(size, size), torch.randn(size, size)
        reps = max(3, round(repeats * (n / size) ** 3))  # about the same work for every size
        for _ in range(3):
            a @ b  # warm up
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * size**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def flops_per_token(config, block_size):
    """nanoGPT's estimate (PaLM appendix B): 6 N for the weights' forward + backward, plus the
    attention scores and their use, 12 L C T (N counts the tied embedding once, as the LM head)."""
    model = TransformerLM.from_config(config)
    n = model.num_parameters()
    if model.position_encoding is not None:  # lookup tables do no matmul work
        n -= sum(p.numel() for p in model.position_encoding.parameters())
    return 6 * n + 12 * config.num_layers * config.d_model * block_size


def run(name, tokenizer, tokens, steps, peak, evaluate=True):
    recipe = RECIPES[name]
    block_size, batch_size = recipe["block_size"], recipe["batch_size"]
    steps = steps or recipe["max_steps"]
    train, val = TokenWindowDataset.train_val(tokens, block_size)
    config = ModelConfig(
        tokenizer.get_vocab_size(), max_seq_len=block_size, **recipe["model"]
    )  # the recipe gives the full shape, no preset needed
    torch.manual_seed(1337)
    trainer = Trainer(
        TransformerLM.from_config(config),
        DataLoader(train, batch_size=batch_size, shuffle=True),
        DataLoader(val, batch_size=64) if evaluate else None,
        output_dir=None,
        config=TrainingConfig(**recipe["training"], log_interval=1, progress=False),
    )
    peak = max(peak, matmul_peak_gflops())  # re-measured: on a shared machine the peak drifts
    summary = trainer.train(max_steps=steps)
    step_ms = [r["ms_per_step"] for r in trainer.history if "ms_per_step" in r]
    median_ms = statistics.median(step_ms[min(10, len(step_ms) // 2) :])  # skip warm-up steps
    tokens_per_s = batch_size * block_size / (median_ms / 1000)
    mfu = flops_per_token(config, block_size) * tokens_per_s / (peak * 1e9)
    return {
        "name": name,
        "steps": steps,
        "shape": f"{config.num_layers}L {config.d_model}d, {batch_size}x{block_size}",
        "ms": median_ms,
        "tok_s": tokens_per_s,
        "mfu": mfu,
        "peak": peak,
        "val": summary["val_loss"],
        "train_s": sum(step_ms) / 1000,  # optimizer steps only
        "total_s": summary["elapsed_s"],  # including the final evaluation
    }


def prepare_nanogpt(directory):
    """nanoGPT's char-level data files, made by its own prepare.py from our copy of the corpus
    (so nothing is downloaded)."""
    data = Path(directory) / "data" / "shakespeare_char"
    if not (data / "train.bin").exists():
        shutil.copy(CORPUS, data / "input.txt")
        subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)


def nanogpt_ms_per_step(directory, steps, warmup=10):
    """Median of the per-iteration times nanoGPT's train.py prints ("iter 12: ..., time 23.1ms")."""
    out = subprocess.run(
        [sys.executable, "train.py", *NANOGPT_CPU_ARGS, f"--max_iters={steps}"],
        cwd=directory, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    times = [float(t) for t in re.findall(r"^iter \d+: .*time ([\d.]+)ms", out, re.M)]
    return statistics.median(times[warmup:])


def side_by_side(directory, tokenizer, tokens, steps, rounds, peak):
    """nanoGPT's train.py and our Trainer at the same shape, alternated; prints each pair's ratio."""
    prepare_nanogpt(directory)
    print(f"\nside by side with nanoGPT ({directory}), {steps} steps each, median ms/step:")
    ratios = []
    for i in range(rounds):
        theirs = nanogpt_ms_per_step(directory, steps)
        ours = run("nanogpt-cpu", tokenizer, tokens, steps, peak, evaluate=False)["ms"]
        ratios.append(theirs / ours)
        print(f"round {i + 1}: nanoGPT {theirs:.1f} ms, tinylm {ours:.1f} ms -> {ratios[-1]:.2f}x")
    print(f"tinylm is {statistics.median(ratios):.2f}x nanoGPT's step speed (median of {rounds})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 steps per recipe, no val loss")
    parser.add_argument(
        "--recipe", action="append", choices=sorted(RECIPES), help="recipes to run (default: all)"
    )
    parser.add_argument("--steps", type=int, help="override each recipe's max_steps")
    parser.add_argument("--nanogpt", metavar="DIR", help="time nanoGPT's train.py side by side")
    parser.add_argument("--rounds", type=int, default=3, help="side-by-side pairs (--nanogpt)")
    args = parser.parse_args()

    text = load_corpus("tinyshakespeare")
    tokenizer = CharTokenizer().build_vocab(text)
    tokens = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    peak = matmul_peak_gflops()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"fp32 matmul peak (torch.mm) {peak:.1f} GFLOP/s"
    )
    header = f"{'recipe':<18}{'shape':<20}{'steps':>6}{'ms/step':>9}{'tokens/s':>10}{'MFU':>6}"
    print(header + f"{'(peak GF/s)':>12}{'val loss':>10}{'train s':>9}{'total s':>9}")
    runs = [("nanogpt-cpu", None), ("shakespeare-char", 1000), ("shakespeare-char", None)]
    if args.quick or args.steps:
        runs = [(name, 60 if args.quick else args.steps) for name in RECIPES]
    runs = [(name, steps) for name, steps in runs if name in (args.recipe or RECIPES)]
    if args.nanogpt and not args.recipe:
        runs = []  # side by side only, unless recipes are asked for too
    for name, steps in runs:
        r = run(name, tokenizer, tokens, steps, peak, not args.quick)
        val = f"{r['val']:.3f}" if r["val"] is not None else "-"
        print(
            f"{r['name']:<18}{r['shape']:<20}{r['steps']:>6}{r['ms']:>9.1f}{r['tok_s']:>10,.0f}"
            f"{r['mfu']:>6.0%}{r['peak']:>12.1f}{val:>10}{r['train_s']:>9.1f}{r['total_s']:>9.1f}",
            flush=True,
        )

    if args.nanogpt:
        side_by_side(args.nanogpt, tokenizer, tokens, args.steps or 200, args.rounds, peak)


if __name__ == "__main__":
    main()
