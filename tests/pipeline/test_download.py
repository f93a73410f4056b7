"""Downloads against a real HTTP server on 127.0.0.1: mirrors, checksums, resumed downloads."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from pipeline.io.download import download
from pipeline.errors import DataError
from pipeline.progress import ListProgress
from plugins.datasets import MNIST_10K, DatasetSource


def served_folder() -> Path:
    """The shared copy of mnist-10k when NNPIPE_DATA points at it, else the bundled one."""
    shared = Path(os.environ.get("NNPIPE_DATA", "/nonexistent")) / "mnist-10k"
    return shared if shared.is_dir() else MNIST_10K.bundled_dir


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with single-range support (206), recording the ranges asked for; the next
    ``corrupt`` responses are served with their first byte flipped."""

    ranges: list[str] = []
    corrupt = 0

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        if type(self).corrupt > 0:
            type(self).corrupt -= 1
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        header = self.headers.get("Range")
        if header:
            type(self).ranges.append(header)
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 serving the mnist-10k files; yields its base URL."""
    folder = served_folder()
    RangeHandler.ranges = []
    RangeHandler.corrupt = 0

    def handler(*args, **kwargs):
        return RangeHandler(*args, directory=str(folder), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a mirror that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


LABELS = "t10k-labels-idx1-ubyte.gz"
SHA = MNIST_10K.sha256[LABELS]


def test_first_mirror_down_second_serves(server, tmp_path):
    path = download(LABELS, [closed_port_url(), server], SHA, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA
    assert not (tmp_path / f"{LABELS}.part").exists()


def test_checksum_mismatch_deletes_the_file_and_says_so(server, tmp_path):
    RangeHandler.corrupt = 1
    progress = ListProgress()
    with pytest.raises(DataError) as caught:
        download(LABELS, [server], SHA, tmp_path, progress)
    assert "checksum mismatch" in str(caught.value) and "deleted" in str(caught.value)
    assert any("checksum mismatch" in line for line in progress.lines)
    assert list(tmp_path.iterdir()) == []  # nothing half-right is left behind


def test_checksum_mismatch_on_one_mirror_falls_back_to_the_next(server, tmp_path):
    RangeHandler.corrupt = 1  # the first mirror serves a corrupt file, the second a good one
    path = download(LABELS, [server, server.replace("127.0.0.1", "localhost")], SHA, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA


def test_partial_download_is_resumed(server, tmp_path):
    whole = (served_folder() / LABELS).read_bytes()
    (tmp_path / f"{LABELS}.part").write_bytes(whole[:400])
    path = download(LABELS, [server], SHA, tmp_path)
    assert RangeHandler.ranges == ["bytes=400-"]
    assert path.read_bytes() == whole


def test_registered_dataset_downloads_into_the_data_dir(server, tmp_path):
    source = DatasetSource(name="mini", files=MNIST_10K.files, sha256=MNIST_10K.sha256,
                           urls=(closed_port_url(), server))
    folder = source.locate(tmp_path)
    assert folder == tmp_path / "mini"
    assert sorted(p.name for p in folder.iterdir()) == sorted(source.file_names())
    source.verify(folder)
