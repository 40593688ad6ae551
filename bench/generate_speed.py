"""Generation speed of tinylm_core.generation on CPU: tokens/s, measured side by side in one run.

    python bench/generate_speed.py            # both shapes (about two minutes on 2 cores)
    python bench/generate_speed.py --quick    # shape (i) only

Setting (issue 5): 2 threads, fp32, a 16-token prompt, random weights, no eos (every run produces
all its tokens). Shapes: (i) 4 layers, 256 dim, vocab 65, 128 new tokens; (ii) GPT-2 small,
12 layers, 768 dim, vocab 50,257, 64 new tokens. Each figure is the best of a few runs after a
short warm-up, which filters out some of the noise from other processes on a shared machine.

The REFERENCE figures are Hugging Face `generate` on the same shapes, measured earlier on this
2-core machine type and copied from the issue; they are NOT re-measured here (transformers is not
installed). Ratios against them are only meaningful when this machine is otherwise idle.
"per CPU-s" divides by the CPU time of this process instead of the wall-clock time: with
--threads 1 it estimates what an idle core would give even while other processes compete (with
more threads it also counts time spent waiting between threads).
"""

import argparse
import os
import time
from functools import partial

import torch

from tinylm_core.generation import Generator
from tinylm_core.model import TransformerLM

SHAPES = {
    "(i) 4 layers, 256 dim, vocab 65": dict(
        model=dict(vocab_size=65, d_model=256, num_layers=4, num_heads=4, d_ff=1024),
        new_tokens=128,
        reference={"greedy + cache": 176, "greedy, no cache": 70, "beam 4": 103, "sampling": 150},
        target=4.0,
    ),
    "(ii) GPT-2 small shape": dict(
        model=dict(
            vocab_size=50257,
            d_model=768,
            num_layers=12,
            num_heads=12,
            d_ff=3072,
            activation="gelu_tanh",
        ),  # fmt: skip
        new_tokens=64,
        reference={"greedy + cache": 18, "beam 4": 8},
        target=1.3,
    ),
}

STRATEGIES = {
    "greedy + cache": dict(),
    "greedy, no cache": dict(use_cache=False),
    "sampling": dict(do_sample=True, top_k=50, seed=0),  # top_k=50: what HF's do_sample uses
    "beam 4": dict(num_beams=4),
}


@torch.inference_mode()
def bare_loop(model, prompt, new_tokens):
    """The floor: the model's forward with its KV cache and an argmax, nothing else. The gap
    between this and `greedy + cache` is the Generator's own per-token overhead."""
    batch, length = prompt.shape
    seq = torch.empty(batch, length + new_tokens, dtype=torch.long)
    seq[:, :length] = prompt
    cache = model.new_kv_cache(batch)
    logits = model(prompt, kv_cache=cache).logits[:, -1]  # (B, V)
    for t in range(length, length + new_tokens):
        seq[:, t] = logits.argmax(-1)
        if t + 1 < length + new_tokens:
            logits = model(seq[:, t : t + 1], kv_cache=cache).logits[:, -1]
    return seq


def tokens_per_second(generate, prompt, new_tokens, repeats):
    generate(prompt, 4)  # warm-up: first calls are slow
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = generate(prompt, new_tokens)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    assert out.shape[1] == prompt.size(1) + new_tokens
    return new_tokens / best, new_tokens / best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shape (i) only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the issue's setting is 2")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, CPU")
    # Other processes steal cores (and stall 2-thread ops badly): say how busy the machine was.
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("ref = Hugging Face generate, reference figures measured earlier on this machine type")
    print("      (copied from issue 5, not re-measured)\n")
    for name, shape in SHAPES.items():
        if args.quick and not name.startswith("(i)"):
            continue
        torch.manual_seed(0)
        new_tokens = shape["new_tokens"]
        model = TransformerLM(**shape["model"], max_seq_len=16 + new_tokens, dropout=0.0)
        generator = Generator(model.eval())
        prompt = torch.randint(0, shape["model"]["vocab_size"], (1, 16))
        repeats = args.repeats if name.startswith("(i)") else max(1, args.repeats - 2)
        print(f"{name}: {model.num_parameters() / 1e6:.1f}M parameters, {new_tokens} new tokens")
        print(f"  {'strategy':<18}{'tokens/s':>10}{'per CPU-s':>11}{'ref':>6}{'ratio':>8}")
        runs = {"bare model loop": partial(bare_loop, model)}
        for strategy, options in STRATEGIES.items():
            runs[strategy] = partial(generator.generate, eos_token_id=[], **options)
        for strategy, generate in runs.items():
            speed, cpu_speed = tokens_per_second(generate, prompt, new_tokens, repeats)
            ref = shape["reference"].get(strategy)
            ratio = f"{speed / ref:7.2f}x" if ref else f"{'-':>8}"
            print(f"  {strategy:<18}{speed:>10.1f}{cpu_speed:>11.1f}{ref or '-':>6}{ratio}")
        print(f"  target: tokens/s >= {shape['target']}x ref")
        print()
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
