"""The 5-minute CPU speedrun (lesson 11): validation loss against training time, side by side.

Runs `python -m tinylm_core train --recipe speedrun` (the same settings, through the same code)
with several seeds, and the two baselines, each recipe as it stands: `shakespeare-char` (2,000
steps) and the nanoGPT-shaped `nanogpt-cpu` (2,000 steps). Every run keeps a copy of its weights
each 30 s of training time (--every) (copying takes about a millisecond, inside the speedrun's budget);
after the run every copy is scored on the whole held-out 10% of Tiny Shakespeare in
non-overlapping windows, as the command line scores its final model. Runs alternate (speedrun,
baseline, speedrun, baseline...) so that a machine getting busier or quieter hits all alike.

    python bench/speedrun.py                     # 3 seeds and both baselines: about 20 minutes
    python bench/speedrun.py --seeds 0 --no-baselines --budget 60
    python bench/speedrun.py --no-baselines --variant="--lr 3e-3"   # a change, side by side

--variant runs the recipe a second time for each seed with extra command-line flags, alternated
with the recipe as it stands (A, B, A, B): how to judge a change to the recipe.
"""

import argparse
import shlex
import statistics
import time

import torch

from tinylm_core import cli
from tinylm_core.trainer import Trainer


class CurveTrainer(Trainer):
    """A Trainer that keeps a copy of the weights every `every` seconds of training steps."""

    every = 30.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trained_s, self.copies = 0.0, []  # [(seconds, step, state_dict)]

    def _train_step(self, batches):
        start = time.perf_counter()
        result = super()._train_step(batches)
        self.trained_s += time.perf_counter() - start
        if self.trained_s >= self.every * (len(self.copies) + 1):
            weights = {k: v.detach().clone() for k, v in self.raw_model.state_dict().items()}
            self.copies.append((self.trained_s, self.step + 1, weights))
        return result


def run(recipe, seed, budget, tokens, tokenizer, out, extra=()):
    """Train one recipe, with `extra` command-line flags
    -> {"curve": [(seconds, step, val loss)], "final": ..., "steps": ...}."""
    flags = ["--recipe", recipe, "--seed", str(seed), "--out", out, "--overwrite", "--no-progress"]
    if recipe == "speedrun":
        flags += ["--time-budget", str(budget)]
    flags += list(extra)
    run_settings, model_fields, training = cli.train_settings(
        cli.add_train_arguments(argparse.ArgumentParser()).parse_args(flags)
    )
    cli.Trainer = CurveTrainer  # the command line's own _build_trainer, with our subclass
    try:
        trainer = cli._build_trainer(run_settings, model_fields, training, tokens, tokenizer)
    finally:
        cli.Trainer = Trainer
    summary = trainer.train(max_steps=run_settings.max_steps)
    final_weights = {k: v.clone() for k, v in trainer.raw_model.state_dict().items()}
    curve = []
    for seconds, step, weights in trainer.copies:
        trainer.raw_model.load_state_dict(weights)
        curve.append((seconds, step, trainer.evaluate()["val_loss"]))
    trainer.raw_model.load_state_dict(final_weights)
    clock = getattr(trainer.scheduler.lr_lambdas[0], "spent", None)
    return {
        "curve": curve,
        "final": summary["val_loss"],
        "steps": summary["step"],
        "trained_s": trainer.trained_s,
        "counted_s": clock,  # the TimeBudget's clock: steps and checkpoints
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds (speedrun)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between scores")
    parser.add_argument("--out", default="/tmp/tinylm_speedrun")
    parser.add_argument(
        "--variant", metavar="FLAGS", help='flags for a second speedrun per seed, e.g. "--lr 3e-3"'
    )
    args = parser.parse_args()
    CurveTrainer.every = args.every
    torch.set_num_threads(args.threads)
    text_run = cli.TrainRun()  # the default corpus: tinyshakespeare, characters
    tokens, tokenizer = cli._tokenize(text_run)
    baselines = [] if args.no_baselines else ["shakespeare-char", "nanogpt-cpu"]
    variant = shlex.split(args.variant or "")
    jobs = []  # (recipe, label, seed, extra flags)
    for i, seed in enumerate(args.seeds):
        jobs.append(("speedrun", "speedrun", seed, []))
        if variant:
            jobs.append(("speedrun", f"speedrun {args.variant}", seed, variant))
        if i < len(baselines):
            jobs.append((baselines[i], baselines[i], 1337, []))
    jobs += [(name, name, 1337, []) for name in baselines[len(args.seeds) :]]
    order = [(label, seed) for _, label, seed, _ in jobs]
    print(f"{args.threads} threads; budget {args.budget:.0f} s; runs in this order: {order}")
    results = {}
    for recipe, label, seed, extra in jobs:
        started = time.perf_counter()
        out = f"{args.out}/{recipe}-{seed}{'-variant' if extra else ''}"
        result = run(recipe, seed, args.budget, tokens, tokenizer, out, extra)
        results[label, seed] = result
        counted = f", budget clock {result['counted_s']:.1f} s" if result["counted_s"] else ""
        print(
            f"{label} seed {seed}: val loss {result['final']:.4f} after {result['steps']} steps, "
            f"{result['trained_s']:.1f} s of steps{counted}, {time.perf_counter() - started:.0f} s "
            "with scoring",
            flush=True,
        )
    names = [f"{r} s{s}" for r, s in results]
    print("\nval loss (whole held-out split) after t seconds of training")
    print(f"{'t':>5} " + " ".join(f"{n:>20}" for n in names))
    rows = max(len(r["curve"]) for r in results.values())
    for row in range(rows):
        cells = []
        for r in results.values():
            curve = r["curve"]
            cells.append(f"{curve[row][2]:>20.4f}" if row < len(curve) else " " * 20)
        print(f"{args.every * (row + 1):>5.0f} " + " ".join(cells))
    print(f"{'final':>5} " + " ".join(f"{r['final']:>20.4f}" for r in results.values()))
    print()
    for label in dict.fromkeys(label for _, label, _, _ in jobs if label.startswith("speedrun")):
        finals = [r["final"] for (name, _), r in results.items() if name == label]
        print(
            f"{label}, {len(finals)} seeds: median {statistics.median(finals):.4f} "
            f"(min {min(finals):.4f}, max {max(finals):.4f})"
        )
    print("targets of lesson 11's issue for the speedrun: must <= 1.60, stretch <= 1.55")


if __name__ == "__main__":
    main()
