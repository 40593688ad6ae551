"""Generation speed of tinylm_core.generation on CPU: tokens/s, measured side by side in one run.

    python bench/generate_speed.py            # both shapes (about two minutes on 2 cores)
    python bench/generate_speed.py --quick    # shape (i) only

Setting (issue 5): 2 threads, fp32, a 16-token prompt, random weights, no eos (every run produces
all its tokens). Shapes: (i) 4 layers, 256 dim, vocab 65, 128 new tokens; (ii) GPT-2 small,
12 layers, 768 dim, vocab 50,257, 64 new tokens, max_seq_len 1024 as GPT-2 has. Each figure is the
best of a few runs after a short warm-up, which filters out some of the noise from other processes
on a shared machine.

"HF now" is Hugging Face `generate` with a GPT2LMHeadModel of the same shape (random weights),
timed in this run, taking turns with ours (pip install -e .[dev] installs transformers; --no-hf
skips it). "HF issue" are the figures issue 5 quotes for this machine type, with older transformers;
they are not re-measured, so ratios against them only mean something on an otherwise idle machine.

"per CPU-s" divides by the CPU time of this process instead of the wall-clock time: with
--threads 1 it estimates what an idle core would give even while other processes compete (with
more threads it also counts time spent waiting between threads).

"no-cache ceiling": without a cache every step runs the model on the whole context again, so that
strategy is bound by matrix-multiply speed, not by overhead. The ceiling is the tokens/s it would
reach if everything but the Linear layers were free: the same steps' Linear layers, timed on their
own in this run (one call per layer per step at the average context length; the LM head on the last
position only).
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
            max_seq_len=1024,  # GPT-2's: the KV cache is allocated (and reordered) at this size
        ),  # fmt: skip
        new_tokens=64,
        reference={"greedy + cache": 18, "greedy, no cache": 6.3, "beam 4": 8},
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


@torch.inference_mode()
def no_cache_ceiling(model, prompt_len, new_tokens, repeats):
    """Tokens/s of greedy without a cache if only its Linear layers cost time (see the docstring)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    # Each step feeds the whole context (prompt_len .. prompt_len + new_tokens - 1 tokens); the
    # Linear layers' cost grows linearly with it, so the average length stands for every step.
    average = prompt_len + (new_tokens - 1) // 2
    inputs = {m.in_features: torch.randn(average, m.in_features) for m in linears}

    def one_step():
        for m in linears:
            rows = 1 if m is model.lm_head else average  # logits for the last position only
            torch.nn.functional.linear(inputs[m.in_features][:rows], m.weight, m.bias)

    one_step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(8):
            one_step()
        best = min(best, (time.perf_counter() - start) / 8)
    return 1 / best


def hugging_face_model(shape, max_len):
    """Hugging Face's GPT-2 with the same shape (random weights), or None without transformers."""
    try:
        import transformers
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()  # no warnings about the missing eos token
    sizes = shape["model"]
    config = transformers.GPT2Config(
        vocab_size=sizes["vocab_size"],
        n_positions=max_len,
        n_embd=sizes["d_model"],
        n_layer=sizes["num_layers"],
        n_head=sizes["num_heads"],
        n_inner=sizes["d_ff"],
        activation_function="gelu_new" if sizes.get("activation") == "gelu_tanh" else "gelu",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,  # no eos: every run produces all its tokens, as ours do
        pad_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config).eval()


def hugging_face_generate(model, options, prompt, new_tokens):
    options = {
        "use_cache": options.get("use_cache", True),
        "do_sample": options.get("do_sample", False),
        "num_beams": options.get("num_beams", 1),
        **({"top_k": options["top_k"]} if "top_k" in options else {}),
    }
    with torch.inference_mode():
        return model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, **options
        )


def best_speeds(runs, prompt, new_tokens, repeats):
    """{name: (tokens/s, tokens per CPU-second)}, best of `repeats` runs each. The runs take turns,
    so a burst of load from another program hits all of them alike."""
    for generate in runs.values():
        generate(prompt, 4)  # warm-up: first calls are slow
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, generate in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            out = generate(prompt, new_tokens)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
            assert out.shape[1] == prompt.size(1) + new_tokens
            best[name] = (min(best[name][0], seconds), min(best[name][1], cpu_seconds))
    return {name: (new_tokens / s, new_tokens / cpu) for name, (s, cpu) in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shape (i) only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the issue's setting is 2")
    parser.add_argument(
        "--no-hf", action="store_true", help="skip Hugging Face; compare with issue 5's figures"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, CPU")
    # Other processes steal cores (and stall 2-thread ops badly): say how busy the machine was.
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        "HF now = Hugging Face generate on the same shape, timed in this run, taking turns with ours"
    )
    print("HF issue = the figures issue 5 quotes for this machine type (not re-measured)\n")
    for name, shape in SHAPES.items():
        if args.quick and not name.startswith("(i)"):
            continue
        torch.manual_seed(0)
        new_tokens = shape["new_tokens"]
        max_len = shape["model"].get("max_seq_len", 16 + new_tokens)  # (i): prompt + new tokens
        model = TransformerLM(**{**shape["model"], "max_seq_len": max_len}, dropout=0.0)
        generator = Generator(model.eval())
        hf = None if args.no_hf else hugging_face_model(shape, max_len)
        prompt = torch.randint(0, shape["model"]["vocab_size"], (1, 16))
        repeats = args.repeats if name.startswith("(i)") else max(1, args.repeats - 2)
        print(f"{name}: {model.num_parameters() / 1e6:.1f}M parameters, {new_tokens} new tokens")
        print(
            f"  {'strategy':<18}{'tokens/s':>10}{'per CPU-s':>11}{'HF now':>8}{'ratio':>8}"
            f"{'HF issue':>10}{'ratio':>8}"
        )
        speed, _ = best_speeds({"bare": partial(bare_loop, model)}, prompt, new_tokens, repeats)[
            "bare"
        ]
        print(f"  {'bare model loop':<18}{speed:>10.1f}")
        for strategy, options in STRATEGIES.items():
            runs = {"ours": partial(generator.generate, eos_token_id=[], **options)}
            if hf is not None:
                runs["hf"] = partial(hugging_face_generate, hf, options)
            speeds = best_speeds(runs, prompt, new_tokens, repeats)
            speed, cpu_speed = speeds["ours"]
            now = speeds["hf"][0] if hf is not None else None
            ref = shape["reference"].get(strategy)
            columns = [
                f"{now:8.1f}{speed / now:7.2f}x" if now else f"{'-':>8}{'-':>8}",
                f"{ref:10}{speed / ref:7.2f}x" if ref else f"{'-':>10}{'-':>8}",
            ]
            print(f"  {strategy:<18}{speed:>10.1f}{cpu_speed:>11.1f}" + "".join(columns))
        if "greedy, no cache" in shape["reference"]:
            ceiling = no_cache_ceiling(model, prompt.size(1), new_tokens, repeats)
            print(f"  {'no-cache ceiling':<18}{ceiling:>10.1f}")
        print(f"  target: tokens/s >= {shape['target']}x Hugging Face")
        print()
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
