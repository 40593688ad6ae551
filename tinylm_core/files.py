# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = ["atomic_file"]


# cell 20
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Write the new content of `path` into a temporary file; put it in place only on success.

        with atomic_file("tokenizer.json") as f:
            f.write(b"...")  # if this raises, tokenizer.json keeps its old content

    The temporary file gets a unique, unguessable name in the same folder (a symlink planted
    at a predictable name cannot redirect the write), and `os.replace` renames it over `path`
    in one step: a reader, or a crash, sees the old file or the new one, never half of one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp, 0o644)  # mkstemp makes the file private to its owner
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
