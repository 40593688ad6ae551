# This file is generated from notebooks/07_decoding.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["TextStreamer", "StopStrings"]


# cell 52
import codecs


# cell 53
class TextStreamer:
    """Turns new token ids into text pieces, never splitting a multi-byte UTF-8 character.

    A BPE token can end in the middle of a character (an emoji is 4 bytes, often 2 tokens), so with a
    byte-level tokenizer we push each token's bytes through an incremental UTF-8 decoder, which holds
    back an incomplete character until its last byte arrives. Other tokenizers (characters) decode
    whole characters, so we emit the growth of the decoded text.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.byte_level = hasattr(tokenizer, "decode_bytes")
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.ids: list[int] = []
        self.emitted = 0

    def push(self, token_id: int) -> str:
        if self.byte_level:
            return self.utf8.decode(self.tokenizer.decode_bytes([token_id]))
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        piece, self.emitted = text[self.emitted :], len(text)
        return piece

    def flush(self) -> str:
        """Whatever is still held back at the end (a truncated character becomes U+FFFD)."""
        return self.utf8.decode(b"", final=True) if self.byte_level else ""


# cell 54
class StopStrings:
    """Says when a row's generated text first contains one of the `stop` strings.

    Each row's tokens go through its own TextStreamer; we keep only the last characters of its
    text, as many as the longest stop string, so a stop string split across tokens is still found.
    """

    def __init__(self, tokenizer, stop: list[str], batch_size: int):
        self.stop = stop
        self.longest = max(map(len, stop))
        self.streamers = [TextStreamer(tokenizer) for _ in range(batch_size)]
        self.recent = [""] * batch_size

    def hit(self, row: int, token_id: int) -> bool:
        """Append `token_id` to row `row`; True when a stop string has appeared."""
        recent = self.recent[row] + self.streamers[row].push(token_id)
        self.recent[row] = recent[-self.longest :]
        return any(s in recent for s in self.stop)
