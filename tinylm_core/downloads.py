# This file is generated from notebooks/03_char_tokenizer.ipynb by `make export`.
# Do not edit it: edit the notebook, then run `make export`.

__all__ = [
    "TINYSHAKESPEARE_URL",
    "TINYSHAKESPEARE_SHA256",
    "GPT2_BASE_URL",
    "GPT2_FILES",
    "CORPORA",
    "DATA_DIR",
    "cache_dir",
    "course_copy",
    "OfflineError",
    "download",
    "load_corpus",
    "gpt2_vocab_files",
]


# cell 46
import hashlib
import http.client
import os
import ssl
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from tqdm import tqdm

import tinylm_core
from tinylm_core.files import atomic_file

# Where each file comes from, and the sha256 it must have. Tiny Shakespeare is the file char-rnn
# and nanoGPT use; GPT-2's two tokenizer files are OpenAI's.
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
# The course's copies of these files: the repository's data/ folder, beside the package.
DATA_DIR = Path(tinylm_core.__file__).resolve().parent.parent / "data"


# cell 48
def cache_dir() -> Path:
    """Where downloads live: $TINYLM_CACHE_DIR, or ~/.cache/tinylm."""
    return Path(os.environ.get("TINYLM_CACHE_DIR") or Path.home() / ".cache" / "tinylm")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def course_copy(relative_path: str, sha256: str) -> Path | None:
    """DATA_DIR/relative_path if it is there with the right sha256, else None (then download)."""
    path = DATA_DIR / relative_path
    if not path.is_file():  # e.g. the package was installed without the repository
        return None
    if _sha256(path) != sha256:
        warnings.warn(
            f"{path} is not the expected file (sha256 differs); ignoring it", stacklevel=2
        )
        return None
    return path


# cell 50
class OfflineError(ConnectionError):
    """The server could not be reached at all: no network, no DNS, connection refused."""


def _connect(url: str, timeout: float, target: Path):
    """urlopen(url), with each failure turned into the error that names its fix."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:  # the server answered, with an error status
        e.close()  # the error response holds the connection open: release it
        raise RuntimeError(
            f"could not download {url}: the server answered HTTP {e.code} ({e.reason}). "
            "This is not a network problem: check the URL, or try again later if the"
            " server is failing (5xx)"
        ) from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):  # reachable, but the secure connection failed
            raise ConnectionError(f"could not download {url}: TLS error ({reason})") from e
        raise OfflineError(
            f"could not download {url} ({reason}); check your network connection, or copy the "
            f"file to {target} by hand"
        ) from e


# cell 52
def _copy(response, f, url: str, timeout: float, deadline: float, min_rate: float, bar) -> str:
    """Copy the response body into `f`; returns its sha256. Too slow or too long: TimeoutError.

    `timeout` bounds each wait for data (a silent server); a server that drips a byte now
    and then never trips it, so every `timeout` seconds at least min_rate x timeout bytes
    must have arrived, and the whole copy must end within `deadline` seconds.
    """
    digest, start = hashlib.sha256(), time.monotonic()
    window_start, window_size = start, 0
    while True:
        try:
            block = response.read1(1 << 16)  # what has arrived, up to 64 KiB: never waits for more
        except TimeoutError as e:
            raise TimeoutError(f"no data from {url} for {timeout} s; try again later") from e
        except (OSError, http.client.HTTPException) as e:
            raise ConnectionError(f"the download of {url} broke off ({e!r}); try again") from e
        if not block:
            break
        f.write(block)  # an OSError here is a disk error: download() says so
        digest.update(block)
        bar.update(len(block))
        window_size, now = window_size + len(block), time.monotonic()
        if now - start > deadline:
            raise TimeoutError(f"the download of {url} took longer than {deadline} s; gave up")
        if now - window_start >= timeout:
            if window_size < min_rate * (now - window_start):
                raise TimeoutError(
                    f"the download of {url} is too slow ({window_size / (now - window_start):.0f}"
                    f" bytes/s, less than {min_rate:.0f}); try again later"
                )
            window_start, window_size = now, 0
    missing = getattr(response, "length", None)  # HTTP: counts down from the announced size
    if missing:
        raise ConnectionError(f"the download of {url} broke off {missing} bytes before the end")
    return digest.hexdigest()


# cell 53
def download(
    url: str,
    sha256: str,
    relative_path: str,
    timeout: float = 30.0,
    deadline: float = 3600.0,
    min_rate: float = 1024.0,
    progress: bool = True,
) -> Path:
    """Fetch `url` into cache_dir()/relative_path once, check its sha256 and return the path.

    A cached file with the right checksum is reused without touching the network. Otherwise
    the bytes go to a temporary file (`atomic_file`) that replaces the target only once the
    checksum matches: the cache never holds a partial or wrong file. A progress bar appears
    if the download takes more than a second (`progress=False`: never). Errors name the fix:
    OfflineError (a ConnectionError) when the server cannot be reached; ConnectionError when
    the transfer breaks off; TimeoutError when it stalls for `timeout` s, runs slower than
    `min_rate` bytes/s or longer than `deadline` s; RuntimeError for an HTTP error status;
    ValueError on a checksum mismatch; OSError when the file cannot be written (disk full).
    """
    target = cache_dir() / relative_path
    if target.is_file() and _sha256(target) == sha256:
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as f, _connect(url, timeout, target) as response:
            size = getattr(response, "length", None)  # None if the server does not say
            bar = tqdm(
                total=size,
                unit="B",
                unit_scale=True,
                desc=target.name,
                leave=False,
                disable=not progress,
                delay=1.0,
            )
            with bar:
                got = _copy(response, f, url, timeout, deadline, min_rate, bar)
            if got != sha256:
                raise ValueError(
                    f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; the file "
                    "was not saved. The server sent a different file: check the URL"
                )
    except (ConnectionError, TimeoutError):  # network errors: already clear
        raise
    except OSError as e:  # anything else that is an OSError happened on our disk
        raise OSError(
            e.errno,
            f"could not save {url} to {target}: {e.strerror or e}. This is a disk problem, not a "
            "network one: free some space, or set TINYLM_CACHE_DIR to a folder on another disk",
        ) from e
    return target


# cell 57
def _fallback_corpus() -> str:
    # The Python language reference that ships with every Python, as plain text.
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


# cell 58
def load_corpus(name_or_path: str | os.PathLike, url: str | None = None) -> str:
    """The text of a named corpus ("tinyshakespeare") or of a local UTF-8 file.

    A named corpus is read from the course's data/ folder when it is there (checksum-checked),
    else downloaded once into cache_dir() (`url` overrides where from, e.g. a local mirror).
    Only when the server cannot be reached at all (OfflineError) does it fall back, with a
    loud warning, to the Python language reference from `pydoc_data`, so that the lessons
    still run; every other failure (HTTP error, wrong file, disk full, ...) raises.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"load_corpus takes a corpus name or a path, got {type(name_or_path)}")
    if name_or_path in CORPORA:
        default_url, sha256, relative_path = CORPORA[name_or_path]
        path = course_copy(relative_path, sha256)
        if path is None:
            try:
                path = download(url or default_url, sha256, relative_path)
            except OfflineError as e:
                warnings.warn(
                    f"OFFLINE: {e}. NOT USING {name_or_path!r}: the corpus is the Python language"
                    " reference (pydoc_data.topics) instead, and results will differ from the"
                    " lessons'.",
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


# cell 59
def gpt2_vocab_files(base_url: str = GPT2_BASE_URL) -> tuple[Path, Path]:
    """Paths of GPT-2's `vocab.bpe` and `encoder.json`: the course's copies in data/gpt2/, or
    else downloaded (from `base_url`) and checked once."""
    vocab_bpe, encoder_json = (
        course_copy(f"gpt2/{name}", sha256)
        or download(f"{base_url.rstrip('/')}/{name}", sha256, f"gpt2/{name}")
        for name, sha256 in GPT2_FILES.items()
    )
    return vocab_bpe, encoder_json
