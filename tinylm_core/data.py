# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "TINYSHAKESPEARE_URL",
    "TINYSHAKESPEARE_SHA256",
    "GPT2_BASE_URL",
    "GPT2_FILES",
    "CORPORA",
    "cache_dir",
    "download",
    "load_corpus",
    "gpt2_vocab_files",
]


# cell 5
import hashlib
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

# The canonical Tiny Shakespeare (the file char-rnn and nanoGPT use) and GPT-2's tokenizer files,
# with the sha256 of the copies at these URLs. A download is only kept if its checksum matches.
TINYSHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
GPT2_BASE_URL = "https://openaipublic.blob.core.windows.net/gpt-2/models/124M"
GPT2_FILES = {  # file name -> sha256
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}
CORPORA = {"tinyshakespeare": (TINYSHAKESPEARE_URL, TINYSHAKESPEARE_SHA256, "tinyshakespeare.txt")}


def cache_dir() -> Path:
    """Where downloads live: $TINYLM_CACHE_DIR, or ~/.cache/tinylm."""
    return Path(os.environ.get("TINYLM_CACHE_DIR") or Path.home() / ".cache" / "tinylm")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# cell 6
def download(url: str, sha256: str, relative_path: str, timeout: float = 30.0) -> Path:
    """Fetch `url` into cache_dir()/relative_path once, check its sha256 and return the path.

    The bytes go to a temporary file in the same folder, which is renamed into place only after
    the checksum matches: the cache never holds a partial or wrong file. A cached file with the
    right checksum is reused without touching the network.
    Raises ConnectionError when the server cannot be reached, RuntimeError when it answers with
    an HTTP error status (404, 500, ...), ValueError on a checksum mismatch.
    """
    target = cache_dir() / relative_path
    if target.is_file() and _sha256(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
                while block := response.read(1 << 20):
                    f.write(block)
        except urllib.error.HTTPError as e:  # the server answered, with an error status
            e.close()  # the error response holds the connection open: release it
            raise RuntimeError(
                f"could not download {url}: the server answered HTTP {e.code} ({e.reason}). "
                "This is not a network problem: check the URL, or try again later if the"
                " server is failing (5xx)"
            ) from e
        except (urllib.error.URLError, OSError) as e:  # no answer: offline, DNS, timeout
            raise ConnectionError(
                f"could not download {url} ({e}); check your network connection, or copy the "
                f"file to {target} by hand"
            ) from e
        got = _sha256(tmp)
        if got != sha256:
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; the file was "
                "not saved. The server sent a different file: check the URL"
            )
        tmp.replace(target)  # atomic on the same file system
    finally:
        tmp.unlink(missing_ok=True)
    return target


# cell 10
def _fallback_corpus() -> str:
    # The Python language reference that ships with every Python, as plain text.
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def load_corpus(name_or_path: str | os.PathLike, url: str | None = None) -> str:
    """The text of a named corpus ("tinyshakespeare") or of a local UTF-8 file.

    A named corpus is downloaded once into cache_dir() (`url` overrides where from, e.g. a local
    mirror). Offline, it warns and returns the Python language reference from `pydoc_data`
    instead, so the lessons still run; the warning says which corpus you got.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"load_corpus takes a corpus name or a path, got {type(name_or_path)}")
    if name_or_path in CORPORA:
        default_url, sha256, relative_path = CORPORA[name_or_path]
        try:
            path = download(url or default_url, sha256, relative_path)
        except ConnectionError as e:
            warnings.warn(
                f"{e}. Using the Python language reference (pydoc_data.topics) as the corpus "
                f"instead of {name_or_path!r}: results will differ from the lessons'.",
                stacklevel=2,
            )
            return _fallback_corpus()
        return path.read_text(encoding="utf-8")
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"{str(name_or_path)!r} is neither a known corpus ({', '.join(CORPORA)}) nor a file; "
            "pass one of those names or the path of a UTF-8 text file"
        )
    return path.read_text(encoding="utf-8")


# cell 11
def gpt2_vocab_files(base_url: str = GPT2_BASE_URL) -> tuple[Path, Path]:
    """Paths of GPT-2's `vocab.bpe` and `encoder.json` in the cache, downloaded (and checked) once."""
    vocab_bpe, encoder_json = (
        download(f"{base_url.rstrip('/')}/{name}", sha256, f"gpt2/{name}")
        for name, sha256 in GPT2_FILES.items()
    )
    return vocab_bpe, encoder_json
