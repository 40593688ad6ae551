"""tinylm_core.data: the cache folder, checksum-verified downloads and load_corpus.

Downloads are tested against a local HTTP server on 127.0.0.1; any other connection fails the test.
"""

import hashlib
import http.server
import socket
import threading
import warnings
from pathlib import Path

import pytest

from tinylm_core import data
from tinylm_core.data import cache_dir, download, gpt2_vocab_files, load_corpus

SEEDED = cache_dir()  # the real cache (seeded by CI), read before any test changes the env var


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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over a folder; yields (folder, base_url, stop)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _QuietHandler(*a, directory=str(root), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
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
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


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


def test_download_unreachable(server, cache):
    root, url, stop = server
    (root / "f.txt").write_bytes(b"x")
    stop()
    with pytest.raises(ConnectionError, match="could not download") as info:
        download(f"{url}/f.txt", sha(b"x"), "f.txt")
    assert str(cache / "f.txt") in str(info.value)  # says where to put the file by hand
    assert not cache.exists() or leftovers(cache) == []


def test_http_error_names_status_and_url_and_is_not_offline(server, cache):
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


def test_load_corpus_downloads_tinyshakespeare(server, cache):
    root, url, _ = server
    (root / "input.txt").write_bytes((SEEDED / "tinyshakespeare.txt").read_bytes())
    text = load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\n")
    assert (cache / "tinyshakespeare.txt").is_file()


def test_load_corpus_offline_falls_back_with_a_warning(server, cache):
    _, url, stop = server
    stop()
    with pytest.warns(UserWarning, match="pydoc_data") as record:
        text = load_corpus("tinyshakespeare", url=f"{url}/input.txt")
    assert "could not download" in str(record[0].message)
    assert "lambda" in text and len(text) > 100_000  # the Python language reference


def test_load_corpus_from_the_seeded_cache_without_warnings(monkeypatch):
    monkeypatch.setenv("TINYLM_CACHE_DIR", str(SEEDED))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = load_corpus("tinyshakespeare")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == data.TINYSHAKESPEARE_SHA256


def test_load_corpus_local_path_and_bad_input(tmp_path):
    (tmp_path / "mine.txt").write_text("to be or not to be ✓", encoding="utf-8")
    assert load_corpus(tmp_path / "mine.txt") == "to be or not to be ✓"
    assert load_corpus(str(tmp_path / "mine.txt")) == "to be or not to be ✓"
    with pytest.raises(ValueError, match="neither a known corpus"):
        load_corpus("tinyshakespear")
    with pytest.raises(TypeError):
        load_corpus(42)


def test_gpt2_vocab_files_from_a_local_mirror(server, cache):
    root, url, _ = server
    for name in data.GPT2_FILES:
        (root / name).write_bytes((SEEDED / "gpt2" / name).read_bytes())
    vocab_bpe, encoder_json = gpt2_vocab_files(base_url=url + "/")
    assert (
        vocab_bpe == cache / "gpt2" / "vocab.bpe"
        and encoder_json == cache / "gpt2" / "encoder.json"
    )
    assert vocab_bpe.read_text(encoding="utf-8").startswith("#version: 0.2")
