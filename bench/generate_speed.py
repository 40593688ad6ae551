"""Generation speed of tinylm_core.generation on CPU: tokens/s, measured side by side in one run.

    python bench/generate_speed.py            # both shapes + lesson 12 (about 4 minutes on 2 cores)
    python bench/generate_speed.py --quick    # shape (i) only
    python bench/generate_speed.py --only-lesson12   # int8 (GPT-2 shape) and speculative rows only

Setting (issue 5): 2 threads, fp32, a 16-token prompt, random weights, no eos (every run produces
all its tokens). Shapes: (i) 4 layers, 256 dim, vocab 65, 128 new tokens; (ii) GPT-2 small,
12 layers, 768 dim, vocab 50,257, 64 new tokens, max_seq_len 1024 as GPT-2 has. Each figure is the
best of a few runs after a short warm-up, which filters out some of the noise from other processes
on a shared machine.

"HF now" is Hugging Face `generate` with a GPT2LMHeadModel of the same shape (random weights),
timed in this run, taking turns with ours (pip install -e .[dev] installs transformers; --no-hf
skips it). Figures from another day or machine are never compared with.

"per CPU-s" divides by the CPU time of this process instead of the wall-clock time: with
--threads 1 it estimates what an idle core would give even while other processes compete (with
more threads it also counts time spent waiting between threads).

Lesson 12 (fast inference) adds, unless --no-lesson12:
- "int8 greedy": the same model through `quantize_int8` (int8 weights, fbgemm kernel), next to fp32
  and HF's fp32 greedy, with the roofline (measured bandwidth / bytes read per token) of each.
- (iii) speculative decoding on a pair of course-trained character models: notebook 12's 6-layer
  target and 1-layer draft, read from --checkpoints (default notebooks/runs/12, written by running
  notebook 12), or, when they are missing, trained here for --train-steps steps (a weaker pair:
  lower acceptance than the notebook's). Plain greedy of the target against speculative greedy
  (identical output checked) and plain against speculative sampling, with acceptance rates.

"no-cache ceiling": without a cache every step runs the model on the whole context again, so that
strategy is bound by matrix-multiply speed, not by overhead. The ceiling is the tokens/s it would
reach if everything but the Linear layers were free: the same steps' Linear layers, timed on their
own in this run (one call per layer per step at the average context length; the LM head on the last
position only).
"""

import argparse
import math
import os
import time
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from tinylm_core import (
    RECIPES,
    CharTokenizer,
    GenerationConfig,
    ModelConfig,
    Trainer,
    TrainingConfig,
    load_checkpoint,
    load_corpus,
)
from tinylm_core.datasets import TokenWindowDataset
from tinylm_core.generation import Generator
from tinylm_core.model import TransformerLM
from tinylm_core.quantize import quantize_int8
from tinylm_core.roofline import measure_bandwidth, model_bytes, roofline
from tinylm_core.speculative import speculative_decode

SHAPES = {
    "(i) 4 layers, 256 dim, vocab 65": dict(
        model=dict(vocab_size=65, d_model=256, num_layers=4, num_heads=4, d_ff=1024),
        new_tokens=128,
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
    ),
}

NOTEBOOK_12_SHAPES = {  # notebook 12's target and draft, for training them here when needed
    "target": dict(d_model=256, num_layers=6, num_heads=8, d_ff=1024),
    "draft": dict(d_model=128, num_layers=1, num_heads=4, d_ff=512),
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


def int8_rows(model, generator, hf, prompt, new_tokens, repeats, bandwidth):
    """Lesson 12: greedy with int8 weights against our fp32 and HF's fp32, taking turns; the
    roofline of each (bandwidth / bytes read per token, at the average context)."""
    quantized = quantize_int8(model)
    runs = {
        "fp32": partial(generator.generate, eos_token_id=[]),
        "int8": partial(Generator(quantized).generate, eos_token_id=[]),
    }
    if hf is not None:
        runs["hf"] = partial(hugging_face_generate, hf, {})
    speeds = best_speeds(runs, prompt, new_tokens, repeats)
    (speed, cpu_speed), fp32 = speeds["int8"], speeds["fp32"][0]
    now = speeds["hf"][0] if hf is not None else None
    ratio = f"{now:8.1f}{speed / now:7.2f}x" if now else f"{'-':>8}{'-':>8}"
    print(
        f"  {'int8 greedy':<18}{speed:>10.1f}{cpu_speed:>11.1f}{ratio}   {speed / fp32:.2f}x our fp32"
    )
    context = prompt.size(1) + new_tokens // 2
    for name, m, measured in (("fp32", model, fp32), ("int8", quantized, speed)):
        limit = roofline(m, bandwidth, context)
        print(
            f"  roofline {name}: {limit:8.1f} tokens/s ({model_bytes(m) / 1e6:.1f} MB of weights); "
            f"ours reach {measured / limit:.0%} of it"
        )
    print(f"  int8 model {model_bytes(model) / model_bytes(quantized):.2f}x smaller")


def course_pair(args):
    """Notebook 12's target and draft and their tokenizer, from --checkpoints, else trained here."""
    root = Path(args.checkpoints)
    if all((root / name / "checkpoint.pt").exists() for name in ("target", "draft")):
        target, tokenizer, _ = load_checkpoint(root / "target")
        draft, _, _ = load_checkpoint(root / "draft")
        return target.eval(), draft.eval(), tokenizer, f"notebook 12's checkpoints in {root}"
    text = load_corpus("tinyshakespeare")
    tokenizer = CharTokenizer().build_vocab(text)
    ids = torch.tensor(tokenizer.encode(text[: int(0.9 * len(text))]))
    recipe = RECIPES["shakespeare-char"]
    models = []
    for shape in NOTEBOOK_12_SHAPES.values():
        config = ModelConfig.from_preset(
            "small", tokenizer.get_vocab_size(), max_seq_len=128, **{**recipe["model"], **shape}
        )
        torch.manual_seed(1337)
        loader = DataLoader(TokenWindowDataset(ids, 128), batch_size=8, shuffle=True)
        training = TrainingConfig(
            **recipe["training"], log_interval=args.train_steps, eval_interval=None, progress=False
        )
        trainer = Trainer(TransformerLM.from_config(config), loader, None, None, config=training)
        trainer.train(max_steps=args.train_steps)
        models.append(trainer.raw_model.eval())
    return (
        *models,
        tokenizer,
        f"trained here for {args.train_steps} steps (no checkpoints in {root})",
    )


def bits_per_char(model, ids, windows):
    """Validation bits per character over `windows` non-overlapping windows of 128 characters."""
    batch = ids[: windows * 129].view(-1, 129)
    with torch.inference_mode():
        logits = model(batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
    return loss.item() / math.log(2)


def lesson12_speculative(args, repeats):
    """(iii): speculative greedy and sampling on notebook 12's course-trained pair."""
    target, draft, tokenizer, source = course_pair(args)
    print(f"(iii) speculative decoding, course-trained character models ({source})")
    print(
        f"  target {target.num_parameters() / 1e6:.2f}M parameters "
        f"({target.config.num_layers} layers), draft {draft.num_parameters() / 1e6:.2f}M "
        f"({draft.config.num_layers} layer), {args.spec_tokens} new tokens"
    )
    text = load_corpus("tinyshakespeare")
    val = torch.tensor(tokenizer.encode(text[int(0.9 * len(text)) :]))
    fp32, int8 = bits_per_char(target, val, 200), bits_per_char(quantize_int8(target), val, 200)
    print(f"  bits/char (25,600 validation characters): fp32 {fp32:.4f}, int8 weights {int8:.4f} "
          f"({int8 / fp32 - 1:+.2%})")  # fmt: skip
    generator = Generator(target, tokenizer)
    prompt = torch.tensor([tokenizer.encode("ROMEO:\n")])
    n = args.spec_tokens
    for mode, options in (
        ("greedy", {}),
        ("sampling", dict(do_sample=True, temperature=0.8, seed=0)),
    ):
        config = GenerationConfig(max_new_tokens=n, eos_token_id=[], **options)
        runs = {"plain": partial(generator.generate, config=config)}
        for k in args.k:
            runs[k] = partial(
                generator.generate, config=config, draft_model=draft, num_speculative_tokens=k
            )
        speeds = best_speeds(runs, prompt, n, repeats)
        plain = speeds["plain"][0]
        print(f"  {mode}: target alone {plain:.1f} tokens/s")
        for k in args.k:
            _, stats = speculative_decode(target, draft, prompt, config, k, generator.context_drop)
            drafted, kept = map(sum, zip(*stats))
            same = ""
            if mode == "greedy":
                identical = torch.equal(runs[k](prompt, n), runs["plain"](prompt, n))
                same = ", output identical" if identical else ", OUTPUT DIFFERS"
            print(
                f"    k={k}: {speeds[k][0]:7.1f} tokens/s = {speeds[k][0] / plain:.2f}x, acceptance "
                f"{kept / max(drafted, 1):.2f}, {n / len(stats):.2f} tokens per target pass{same}"
            )
    print("  target: speculative greedy >= 1.5x plain greedy, identical output")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shape (i) only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="the issue's setting is 2")
    parser.add_argument(
        "--no-hf", action="store_true", help="skip Hugging Face (ours only, no ratios)"
    )
    parser.add_argument(
        "--no-lesson12", action="store_true", help="skip the int8 and speculative rows (lesson 12)"
    )
    parser.add_argument(
        "--only-lesson12", action="store_true", help="GPT-2 shape int8 rows and (iii) only"
    )
    parser.add_argument("--checkpoints", default="notebooks/runs/12", help="notebook 12's pair")
    parser.add_argument(
        "--train-steps", type=int, default=300, help="training steps when no checkpoints exist"
    )
    parser.add_argument("--k", type=int, nargs="+", default=[3, 4], help="drafts per pass")
    parser.add_argument("--spec-tokens", type=int, default=200, help="new tokens in (iii)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, CPU")
    # Other processes steal cores (and stall 2-thread ops badly): say how busy the machine was.
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        "HF now = Hugging Face generate on the same shape, timed in this run, taking turns with ours"
    )
    print()
    bandwidth = None if args.no_lesson12 else measure_bandwidth()
    if bandwidth:
        print(f"memory bandwidth (sum of a 512 MB buffer): {bandwidth / 1e9:.1f} GB/s\n")
    for name, shape in SHAPES.items():
        if args.quick and not name.startswith("(i)"):
            continue
        if args.only_lesson12 and name.startswith("(i)"):
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
        print(f"  {'strategy':<18}{'tokens/s':>10}{'per CPU-s':>11}{'HF now':>8}{'ratio':>8}")
        if args.only_lesson12:
            int8_rows(model, generator, hf, prompt, new_tokens, repeats, bandwidth)
            print()
            continue
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
            column = f"{now:8.1f}{speed / now:7.2f}x" if now else f"{'-':>8}{'-':>8}"
            print(f"  {strategy:<18}{speed:>10.1f}{cpu_speed:>11.1f}" + column)
        ceiling = no_cache_ceiling(model, prompt.size(1), new_tokens, repeats)
        print(f"  {'no-cache ceiling':<18}{ceiling:>10.1f}")
        if bandwidth:
            int8_rows(model, generator, hf, prompt, new_tokens, repeats, bandwidth)
        if bandwidth and not name.startswith("(i)"):
            print("  lesson 12: int8 never slower than fp32, 4x smaller; stretch >= 1.8x HF fp32")
        print()
    if not (args.no_lesson12 or args.quick):
        lesson12_speculative(args, max(1, args.repeats - 1))
    print(f"load average after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
