"""Tokenizer speed on the full Tiny Shakespeare, measured side by side in one run.

    python bench/tokenizer_speed.py            # a few minutes: the naive reference is slow
    python bench/tokenizer_speed.py --quick    # skip the naive reference and the seed's 64k run

Prints BPE training time (fast trainer on the full text; fast and naive reference on a 100 KB
slice), encode/decode throughput with GPT-2's vocabulary and with a trained one (cold = empty chunk
cache, warm = every chunk cached), and the ratios. Targets (issue 3, 2-core CPU): vocab 1024 on the
full text in under 3 s; GPT-2 encode at 2 MB/s or more. Then long chunks (issue 14, item 6): GPT-2
encoding of "a" * n with the seed's encoder, which rescanned the chunk after every merge (time
grows like n squared), against today's heap of merge ranks (n log n), and both encoders' cold
GPT-2 throughput on the whole text. Each figure is the best of a few runs, as wall time and as CPU
time of this process: on a shared machine the wall time also counts the time other processes held
the CPU, so compare CPU times when the load average is high.
"""

import argparse
import os
import time
from itertools import repeat

from tinylm_core.bpe_tokenizer import BPETokenizer
from tinylm_core.bpe_training import train_bpe, train_bpe_reference
from tinylm_core.downloads import gpt2_vocab_files, load_corpus
from tinylm_core.pretokenize import GPT2_SPLIT_PATTERN

_NO_MERGE = 1 << 62


class SeedEncoder(BPETokenizer):
    """The seed's encode_ordinary, kept here to compare: one merge per rescan of the chunk."""

    def encode_ordinary(self, text):
        cache, out = self._cache, []
        for chunk in self._split.findall(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = cache[chunk] = self._seed_chunk(chunk)
            out += ids
        return out

    def _seed_chunk(self, chunk):
        ids = list(chunk.encode("utf-8").translate(self._byte_table))
        rank = self.merges.get
        while len(ids) >= 2:
            ranks = list(map(rank, zip(ids, ids[1:]), repeat(_NO_MERGE)))
            new_id = min(ranks)
            if new_id == _NO_MERGE:
                break
            i = ranks.index(new_id)  # the leftmost pair of the lowest rank
            ids[i : i + 2] = [new_id]
        return ids


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


def fmt(t, digits=2):
    return f"{t[0]:{5 + digits}.{digits}f} s (CPU {t[1]:{4 + digits}.{digits}f} s)"


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
    print("\nLong chunks, GPT-2: the seed's encoder against the heap (issue 14, item 6)")
    seed = SeedEncoder.from_gpt2_files(*gpt2_vocab_files())
    for n in (4_000, 16_000, 64_000):
        chunk = "a" * n
        new, ids = timed(lambda c=chunk: gpt2.encode_ordinary(c), 3, before=gpt2._cache.clear)
        line = f"  'a' * {n:6,}: heap {fmt(new, 4)}"
        if not (args.quick and n > 16_000):
            old, old_ids = timed(lambda c=chunk: seed.encode_ordinary(c), before=seed._cache.clear)
            assert old_ids == ids, "the heap must give the seed's ids"
            line += f" | seed {fmt(old)} | seed / heap = {old[1] / new[1]:6.0f}x (CPU)"
        print(line)
    cold_new, ids = timed(lambda: gpt2.encode(text), 3, before=gpt2._cache.clear)
    cold_old, old_ids = timed(lambda: seed.encode(text), 3, before=seed._cache.clear)
    assert old_ids == ids and len(ids) == 338_025
    print(
        f"  whole text, cold cache: heap {mb / cold_new[0]:5.2f} MB/s (CPU {mb / cold_new[1]:5.2f})"
        f" | seed {mb / cold_old[0]:5.2f} MB/s (CPU {mb / cold_old[1]:5.2f})"
    )
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
