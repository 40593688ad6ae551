"""tinylm_core.downloads: the course's data/ copies, the cache folder, checksum-verified downloads
with deadlines, and load_corpus.

Downloads are tested against a local HTTP server on 127.0.0.1; any other connection fails the test.
"""

import hashlib
import http.server
import os
import signal
import socket
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from tinylm_core import downloads
from tinylm_core.downloads import (
    OfflineError,
    cache_dir,
    download,
    gpt2_vocab_files,
    load_corpus,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse every connection except to 127.0.0.1: no test may touch the network."""
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach the network: {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for the test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def no_course_data(tmp_path, monkeypatch):
    """As if the package were installed without the repository: data/ is empty."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setattr(downloads, "DATA_DIR", empty)
    return empty


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, plus misbehaving paths: /drip, /steady and /short."""

    def log_message(self, *args):
        pass

    def _headers(self, length):
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        try:
            if self.path == "/drip":  # one byte every 0.2 s, for at most 5 s
                self._headers(25)
                for _ in range(25):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            elif self.path == "/steady":  # 10 KB every 0.1 s (100 KB/s) for 3 s
                self._headers(300_000)
                for _ in range(30):
                    self.wfile.write(b"y" * 10_000)
                    self.wfile.flush()
                    time.sleep(0.1)
            elif self.path == "/short":  # announces 1,000 bytes, sends 10, hangs up
                self._headers(1000)
                self.wfile.write(b"z" * 10)
            elif self.path == "/pauses":  # 3 blocks, 0.6 s apart: long enough for a progress bar
                self._headers(3 * 4096)
                for _ in range(3):
                    self.wfile.write(b"p" * 4096)
                    self.wfile.flush()
                    time.sleep(0.6)
            else:
                super().do_GET()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: expected here
            pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a folder; yields (folder, base_url, stop)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _Handler(*a, directory=str(root), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            stopped.append(True)

    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", stop
    stop()


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() or p.is_symlink())


@contextmanager
def file_size_limit(max_bytes):
    """Writes beyond `max_bytes` fail with EFBIG, as on a full disk (Linux/macOS only)."""
    resource = pytest.importorskip("resource")
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, old_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


# ----------------------------------------------------------------------------- the course's data


def test_course_data_is_used_offline_and_never_copied(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback, no "ignoring" warning
        text = load_corpus("tinyshakespeare")
        vocab_bpe, encoder_json = gpt2_vocab_files()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == downloads.TINYSHAKESPEARE_SHA256
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\n")
    assert downloads.DATA_DIR == ROOT / "data"
    assert (vocab_bpe, encoder_json) == (
        ROOT / "data/gpt2/vocab.bpe",
        ROOT / "data/gpt2/encoder.json",
    )
    assert not cache.exists()  # nothing downloaded, nothing copied


def test_a_modified_course_copy_is_ignored_loudly(server, cache, no_course_data):
    root, url, _ = server
    good = (ROOT / "data" / "tinyshakespeare.txt").read_bytes()
    (no_course_data / "tinyshakespeare.txt").write_bytes(good.replace(b"Citizen", b"Citizan"))
    (root / "input.txt").write_bytes(good)
    with pytest.warns(UserWarning, match="sha256 differs"):
        text = load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert text.encode("utf-8") == good and (cache / "tinyshakespeare.txt").is_file()


# ----------------------------------------------------------------------------- download


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("TINYLM_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "tinylm"


def test_download_good_file(server, cache):
    root, url, stop = server
    content = b"first line\nsecond line \xe2\x9c\x93\n" * 1000
    (root / "f.txt").write_bytes(content)
    path = download(f"{url}/f.txt", sha(content), "sub/f.txt")
    assert path == cache / "sub" / "f.txt" and path.read_bytes() == content
    assert leftovers(cache) == ["f.txt"]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o644  # an ordinary file, not mkstemp's private one
    stop()  # a cached file with the right checksum never touches the network again
    assert download(f"{url}/f.txt", sha(content), "sub/f.txt").read_bytes() == content


def test_download_wrong_checksum_keeps_nothing(server, cache):
    root, url, _ = server
    (root / "f.txt").write_bytes(b"not what we expect")
    with pytest.raises(ValueError, match="checksum mismatch"):
        download(f"{url}/f.txt", sha(b"something else"), "f.txt")
    assert not cache.exists() or leftovers(cache) == []


def test_download_replaces_a_corrupted_cached_file(server, cache):
    root, url, _ = server
    (root / "f.txt").write_bytes(b"good")
    cache.mkdir()
    (cache / "f.txt").write_bytes(b"goo")  # e.g. an interrupted copy by hand
    assert download(f"{url}/f.txt", sha(b"good"), "f.txt").read_bytes() == b"good"


def test_download_unreachable_is_offline(server, cache):
    root, url, stop = server
    (root / "f.txt").write_bytes(b"x")
    stop()
    with pytest.raises(OfflineError, match="could not download") as info:
        download(f"{url}/f.txt", sha(b"x"), "f.txt")
    assert isinstance(info.value, ConnectionError)
    assert str(cache / "f.txt") in str(info.value)  # says where to put the file by hand
    assert not cache.exists() or leftovers(cache) == []


def test_http_error_names_status_and_url_and_is_not_offline(server, cache, no_course_data):
    _, url, _ = server  # the server runs but holds no file: it answers 404
    with pytest.raises(RuntimeError, match="HTTP 404") as info:
        download(f"{url}/f.txt", sha(b"x"), "f.txt")
    assert f"{url}/f.txt" in str(info.value)
    assert not isinstance(info.value, ConnectionError)
    assert not cache.exists() or leftovers(cache) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: a 404 is not "offline"
        with pytest.raises(RuntimeError, match="HTTP 404"):
            load_corpus("tinyshakespeare", url=f"{url}/input.txt")


def test_a_dripping_server_times_out(server, cache):
    # One byte every 0.2 s never trips a 0.5 s read timeout; the minimum rate (1 KB/s by
    # default, measured over every `timeout` seconds) does.
    _, url, _ = server
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="too slow"):
        download(f"{url}/drip", sha(b"x" * 25), "drip.txt", timeout=0.5)
    assert time.monotonic() - start < 3
    assert not cache.exists() or leftovers(cache) == []


def test_the_total_deadline(server, cache):
    _, url, _ = server  # 100 KB/s, fast enough, but 3 s in all
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="longer than 1.0 s"):
        download(f"{url}/steady", sha(b"y" * 300_000), "steady.txt", deadline=1.0)
    assert time.monotonic() - start < 2.5
    assert not cache.exists() or leftovers(cache) == []


def test_a_transfer_that_breaks_off_is_not_offline(server, cache, no_course_data):
    _, url, _ = server
    with pytest.raises(ConnectionError, match="broke off") as info:
        download(f"{url}/short", sha(b"z" * 1000), "short.txt")
    assert not isinstance(info.value, OfflineError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to another corpus
        with pytest.raises(ConnectionError, match="broke off"):
            load_corpus("tinyshakespeare", url=f"{url}/short")


def test_a_full_disk_is_a_disk_error_not_a_network_one(server, cache, no_course_data):
    root, url, _ = server
    content = b"0123456789" * 30_000  # 300 KB
    (root / "input.txt").write_bytes(content)
    with file_size_limit(100_000):
        with pytest.raises(OSError, match="disk problem, not a network one") as info:
            download(f"{url}/input.txt", sha(content), "big.txt")
        assert not isinstance(info.value, ConnectionError)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and load_corpus does not switch corpus
            with pytest.raises(OSError, match="disk problem"):
                load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert not cache.exists() or leftovers(cache) == []


def test_a_symlink_at_the_old_temporary_name_is_not_followed(server, cache, tmp_path):
    root, url, _ = server
    (root / "f.txt").write_bytes(b"downloaded")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    cache.mkdir()
    planted = cache / f".f.txt.{os.getpid()}.part"  # the predictable name the old code used
    planted.symlink_to(victim)
    assert download(f"{url}/f.txt", sha(b"downloaded"), "f.txt").read_bytes() == b"downloaded"
    assert victim.read_bytes() == b"precious" and planted.is_symlink()


def test_download_shows_a_progress_bar_when_it_takes_time(server, cache, capsys):
    _, url, _ = server
    content = b"p" * (3 * 4096)
    download(f"{url}/pauses", sha(content), "pauses.txt")
    assert "pauses.txt" in capsys.readouterr().err  # tqdm's bar, on stderr
    (cache / "pauses.txt").unlink()
    download(f"{url}/pauses", sha(content), "pauses.txt", progress=False)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- load_corpus


def test_load_corpus_downloads_tinyshakespeare(server, cache, no_course_data):
    root, url, _ = server
    (root / "input.txt").write_bytes((ROOT / "data" / "tinyshakespeare.txt").read_bytes())
    text = load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\n")
    assert (cache / "tinyshakespeare.txt").is_file()


def test_load_corpus_offline_falls_back_loudly(server, cache, no_course_data):
    _, url, stop = server
    stop()
    with pytest.warns(UserWarning, match="OFFLINE") as record:
        text = load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert "could not download" in str(record[0].message)
    assert "NOT USING 'tinyshakespeare'" in str(record[0].message)
    assert "lambda" in text and len(text) > 100_000  # the Python language reference


def test_load_corpus_local_path_and_bad_input(tmp_path):
    (tmp_path / "mine.txt").write_text("to be or not to be ✓", encoding="utf-8")
    assert load_corpus(tmp_path / "mine.txt") == "to be or not to be ✓"
    assert load_corpus(str(tmp_path / "mine.txt")) == "to be or not to be ✓"
    with pytest.raises(ValueError, match="neither a known corpus"):
        load_corpus("tinyshakespear")
    with pytest.raises(TypeError):
        load_corpus(42)


def test_gpt2_vocab_files_from_a_local_mirror(server, cache, no_course_data):
    root, url, _ = server
    for name in downloads.GPT2_FILES:
        (root / name).write_bytes((ROOT / "data" / "gpt2" / name).read_bytes())
    vocab_bpe, encoder_json = gpt2_vocab_files(base_url=url + "/")
    assert (
        vocab_bpe == cache / "gpt2" / "vocab.bpe"
        and encoder_json == cache / "gpt2" / "encoder.json"
    )
    assert vocab_bpe.read_text(encoding="utf-8").startswith("#version: 0.2")
