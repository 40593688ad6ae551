"""Tokenizer speed on the full Tiny Shakespeare, measured side by side in one run.

    python bench/tokenizer_speed.py            # a few minutes: the naive reference is slow
    python bench/tokenizer_speed.py --quick    # skip the naive reference

Prints BPE training time (fast trainer on the full text; fast and naive reference on a 100 KB
slice), encode/decode throughput with GPT-2's vocabulary and with a trained one (cold = empty chunk
cache, warm = every chunk cached), and the ratios. Targets (issue 3, 2-core CPU): vocab 1024 on the
full text in under 3 s; GPT-2 encode at 2 MB/s or more. Each figure is the best of a few runs, as
wall time and as CPU time of this process: on a shared machine the wall time also counts the time
other processes held the CPU, so compare CPU times when the load average is high.
"""

import argparse
import os
import time

from tinylm_core.bpe_tokenizer import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    train_bpe,
    train_bpe_reference,
)
from tinylm_core.downloads import gpt2_vocab_files, load_corpus


def timed(fn, repeat=1, before=None):
    """Best (wall seconds, CPU seconds) over `repeat` runs, and the last result."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        if before:
            before()
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return (wall, cpu), result


def fmt(t):
    return f"{t[0]:7.2f} s (CPU {t[1]:6.2f} s)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the naive reference trainer")
    args = parser.parse_args()

    text = load_corpus("tinyshakespeare")
    mb = len(text.encode("utf-8")) / 1e6
    piece = text[:100_000]
    print(f"Tiny Shakespeare: {mb:.3f} MB; slice for the reference: {len(piece):,} characters")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")

    print("BPE training (GPT-2 split pattern)")
    full = {}
    for vocab_size in (512, 1024):
        full[vocab_size], _ = timed(lambda v=vocab_size: train_bpe(text, v, GPT2_SPLIT_PATTERN), 3)
        print(f"  fast, full text, vocab {vocab_size:4}: {fmt(full[vocab_size])}")
    for vocab_size in (512, 1024):
        fast, merges = timed(lambda v=vocab_size: train_bpe(piece, v, GPT2_SPLIT_PATTERN), 3)
        line = f"  fast, 100 KB,    vocab {vocab_size:4}: {fmt(fast)}"
        if not args.quick:
            ref, ref_merges = timed(
                lambda v=vocab_size: train_bpe_reference(piece, v, GPT2_SPLIT_PATTERN)
            )
            assert ref_merges == merges, "the fast trainer must learn the reference's merges"
            line += (
                f" | naive reference {fmt(ref)} | reference / fast = {ref[1] / fast[1]:4.0f}x (CPU)"
            )
        print(line)
    wall, cpu = full[1024]
    print(
        f"  target vocab 1024, full text < 3 s: wall {wall:.2f} s, CPU {cpu:.2f} s "
        f"({'met' if wall < 3 else 'met in CPU time' if cpu < 3 else 'MISSED'})\n"
    )

    print("Encode / decode, full text (MB/s of UTF-8 input; wall, CPU in brackets)")
    gpt2 = BPETokenizer.from_gpt2_files(*gpt2_vocab_files())
    trained = BPETokenizer().train(text, 1024)
    speed = {}
    for name, tok in (("GPT-2 (50,257)", gpt2), ("trained (1,025)", trained)):
        cold, ids = timed(lambda t=tok: t.encode(text), 3, before=tok._cache.clear)
        warm, _ = timed(lambda t=tok: t.encode(text), 3)
        dec, back = timed(lambda t=tok, i=ids: t.decode(i), 3)
        assert back == text
        speed[name] = [mb / s for s in cold]
        print(
            f"  {name:16} {len(ids):9,} tokens | encode cold {mb / cold[0]:5.2f} ({mb / cold[1]:5.2f})"
            f" | warm {mb / warm[0]:5.2f} ({mb / warm[1]:5.2f}) | decode {mb / dec[0]:5.1f} ({mb / dec[1]:5.1f})"
        )
    assert len(gpt2.encode(text)) == 338_025, "GPT-2 must give 338,025 tokens for Tiny Shakespeare"
    wall, cpu = speed["GPT-2 (50,257)"]
    print(
        f"  target GPT-2 encode >= 2 MB/s (cold cache): wall {wall:.2f} MB/s ({wall / 2:.2f}x target), "
        f"CPU {cpu:.2f} MB/s ({cpu / 2:.2f}x target)"
    )
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
