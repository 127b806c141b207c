"""Tests of synthsep_lib.pipeline.downloads against a local HTTP server on 127.0.0.1.

Small archives in the real layouts (LJSpeech-1.1/ tar.bz2, ESC-50-<commit>/ zip) are
built in the test, served from a temporary folder, and fetched with their computed
checksums. Nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_scripts.download import main
from synthsep_lib.pipeline.downloads import (
    CORPORA,
    MIRROR_ENV,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    fetch_corpora,
    fetch_corpus,
)

REPO = Path(__file__).resolve().parents[1]
LJ = CORPORA["ljspeech"]
ESC = CORPORA["esc50"]


# --------------------------------------------------------------------------- archives


def _wav_bytes(sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.linspace(-0.1, 0.1, 32, dtype=np.float32), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _tar_bz2(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def lj_archive(top: str = "LJSpeech-1.1") -> bytes:
    return _tar_bz2(
        {
            f"{top}/README": b"tiny LJ Speech\n",
            f"{top}/metadata.csv": b"LJ001-0001|Printing, in the only sense|Printing, in the only sense\n",
            f"{top}/wavs/LJ001-0001.wav": _wav_bytes(22050),
        }
    )


def esc_archive(top: str = ESC.top_folder) -> bytes:
    return _zip(
        {
            f"{top}/README.md": b"tiny ESC-50\n",
            f"{top}/meta/esc50.csv": (
                b"filename,fold,target,category,esc10,src_file,take\n"
                b"1-100032-A-0.wav,1,0,dog,True,100032,A\n"
            ),
            f"{top}/audio/1-100032-A-0.wav": _wav_bytes(44100),
        }
    )


def _big_lj_archive() -> bytes:
    """An LJ Speech archive spanning several bzip2 blocks (900 kB each), so that a
    truncated copy fails part-way through extraction, not when it is opened."""
    noise = np.random.default_rng(0).bytes(1_200_000)  # incompressible
    return _tar_bz2(
        {
            "LJSpeech-1.1/metadata.csv": b"LJ001-0001|a|a\n",
            "LJSpeech-1.1/wavs/LJ001-0001.wav": _wav_bytes(22050),
            "LJSpeech-1.1/wavs/LJ001-0002.wav": noise,
        }
    )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- server


@pytest.fixture
def server(tmp_path, local_server):
    root = tmp_path / "served"
    root.mkdir()
    return local_server(root)


@pytest.fixture
def dest(tmp_path) -> Path:
    return tmp_path / "data"


def leftovers(dest: Path) -> list[str]:
    """Temporary extraction folders and pooch temporary files left in ``dest``."""
    found = [p.name for p in dest.glob(".extract-*")]
    downloads = dest / ".downloads"
    if downloads.is_dir():
        found += [p.name for p in downloads.iterdir() if p.name.startswith("tmp")]
    return found


# --------------------------------------------------------------------------- success


def test_fetch_both_corpora(server, dest):
    lj, esc = lj_archive(), esc_archive()
    urls = {"ljspeech": server.put(LJ.archive_name, lj), "esc50": server.put(ESC.archive_name, esc)}
    hashes = {"ljspeech": sha256(lj), "esc50": md5(esc)}

    folders = fetch_corpora(
        ["ljspeech", "esc50"], dest, urls=urls, known_hashes=hashes, progress=False
    )

    assert folders == {"ljspeech": dest / "LJSpeech-1.1", "esc50": dest / "ESC-50-master"}
    assert (dest / "LJSpeech-1.1/metadata.csv").read_text().startswith("LJ001-0001|")
    data, sr = sf.read(dest / "LJSpeech-1.1/wavs/LJ001-0001.wav")
    assert sr == 22050 and len(data) == 32
    assert (dest / "ESC-50-master/meta/esc50.csv").is_file()
    assert sf.info(str(dest / "ESC-50-master/audio/1-100032-A-0.wav")).samplerate == 44100
    assert not (dest / ESC.top_folder).exists()
    assert leftovers(dest) == []
    assert sorted(p.name for p in (dest / ".downloads").iterdir()) == sorted(
        [LJ.archive_name, ESC.archive_name]
    )


def test_second_call_downloads_nothing(server, dest):
    lj = lj_archive()
    url = server.put(LJ.archive_name, lj)
    first = fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    hits = sum(server.hits.values())
    assert hits == 1
    # even with the archive gone, the complete folder is recognised and returned
    (dest / ".downloads" / LJ.archive_name).unlink()
    second = fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert second == first
    assert sum(server.hits.values()) == hits


def test_remove_archive_after_unpacking(server, dest):
    esc = esc_archive()
    url = server.put(ESC.archive_name, esc)
    fetch_corpus("esc50", dest, url=url, known_hash=md5(esc), progress=False, keep_archive=False)
    assert (dest / "ESC-50-master/audio").is_dir()
    assert not (dest / ".downloads" / ESC.archive_name).exists()


def test_mirror_environment_variable(server, dest, monkeypatch):
    lj, esc = lj_archive(), esc_archive()
    server.put(LJ.archive_name, lj)
    server.put(ESC.archive_name, esc)
    monkeypatch.setenv(MIRROR_ENV, server.url + "/")
    folders = fetch_corpora(
        ["ljspeech", "esc50"],
        dest,
        known_hashes={"ljspeech": sha256(lj), "esc50": md5(esc)},
        progress=True,  # the progress bars must not get in the way
    )
    assert all(path.is_dir() for path in folders.values())
    assert server.hits[f"/{LJ.archive_name}"] == 1
    assert server.hits[f"/{ESC.archive_name}"] == 1


def test_registry_matches_datasets_md():
    assert LJ.url == "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
    assert (
        LJ.known_hash == "sha256:be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"
    )
    assert (LJ.top_folder, LJ.final_folder) == ("LJSpeech-1.1", "LJSpeech-1.1")
    sha = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"
    assert ESC.url == f"https://github.com/karolpiczak/ESC-50/archive/{sha}.zip"
    assert ESC.known_hash == "md5:071b44018315e034b2c6e8064543d19c"
    assert (ESC.top_folder, ESC.final_folder) == (f"ESC-50-{sha}", "ESC-50-master")


# --------------------------------------------------------------------------- failures


def test_wrong_checksum(server, dest):
    lj = lj_archive()
    url = server.put(LJ.archive_name, lj)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch_corpus("ljspeech", dest, url=url, known_hash=wrong, progress=False)
    message = str(info.value)
    assert "ljspeech" in message and url in message
    assert wrong in message and sha256(lj) in message
    assert not (dest / "LJSpeech-1.1").exists()
    assert not (dest / ".downloads" / LJ.archive_name).exists()
    assert leftovers(dest) == []


def test_stale_archive_with_wrong_checksum_is_not_kept(server, dest):
    """A file already under the archive's name that fails the checksum is replaced or removed."""
    esc = esc_archive()
    url = server.put(ESC.archive_name, b"something else entirely")
    (dest / ".downloads").mkdir(parents=True)
    (dest / ".downloads" / ESC.archive_name).write_bytes(b"old partial junk")
    with pytest.raises(ChecksumMismatchError):
        fetch_corpus("esc50", dest, url=url, known_hash=md5(esc), progress=False)
    assert not (dest / ".downloads" / ESC.archive_name).exists()


@pytest.mark.parametrize(
    ("corpus", "make_bytes"),
    [
        ("ljspeech", lambda: _big_lj_archive()[:-20_000]),  # truncated after some members
        ("ljspeech", lambda: b"\x00garbage, not a bzip2 stream" * 100),
        ("esc50", lambda: esc_archive()[:-40]),  # truncated zip (central directory cut)
        ("esc50", lambda: b"PK\x03\x04 but garbage afterwards" * 50),
    ],
    ids=["lj-truncated", "lj-garbage", "esc-truncated", "esc-garbage"],
)
def test_corrupt_archive(server, dest, corpus, make_bytes):
    entry = CORPORA[corpus]
    data = make_bytes()
    url = server.put(entry.archive_name, data)
    with pytest.raises(CorruptArchiveError) as info:
        fetch_corpus(corpus, dest, url=url, known_hash=sha256(data), progress=False)
    assert entry.archive_name in str(info.value)
    assert not (dest / entry.final_folder).exists()
    assert not (dest / entry.top_folder).exists()
    assert leftovers(dest) == []
    # the corrupt archive is not kept, so the next call downloads afresh
    assert not (dest / ".downloads" / entry.archive_name).exists()


def test_corrupt_zip_member_crc(server, dest):
    """A zip whose member data is damaged (CRC mismatch) fails during extraction."""
    esc = bytearray(esc_archive())
    with zipfile.ZipFile(io.BytesIO(bytes(esc))) as zf:
        info = zf.getinfo(f"{ESC.top_folder}/audio/1-100032-A-0.wav")
    name_len, extra_len = struct.unpack(
        "<HH", esc[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len
    esc[start + info.compress_size // 2] ^= 0xFF  # damage the compressed wav data
    data = bytes(esc)
    url = server.put(ESC.archive_name, data)
    with pytest.raises(CorruptArchiveError) as info:
        fetch_corpus("esc50", dest, url=url, known_hash=md5(data), progress=False)
    assert ESC.archive_name in str(info.value)
    assert not (dest / "ESC-50-master").exists()
    assert leftovers(dest) == []


def test_wrong_top_folder(server, dest):
    esc = esc_archive(
        top="ESC-50-master"
    )  # e.g. a master.zip served where the pinned one was expected
    url = server.put(ESC.archive_name, esc)
    with pytest.raises(CorruptArchiveError) as info:
        fetch_corpus("esc50", dest, url=url, known_hash=md5(esc), progress=False)
    message = str(info.value)
    assert (
        ESC.archive_name in message
        and ESC.top_folder in message
        and "found: ESC-50-master" in message
    )
    assert not (dest / "ESC-50-master").exists()
    assert leftovers(dest) == []


def test_missing_content(server, dest):
    lj = _tar_bz2({"LJSpeech-1.1/wavs/LJ001-0001.wav": _wav_bytes(22050)})
    url = server.put(LJ.archive_name, lj)
    with pytest.raises(CorruptArchiveError, match="metadata.csv"):
        fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert not (dest / "LJSpeech-1.1").exists()
    assert leftovers(dest) == []


@pytest.mark.parametrize(
    "bad_name", ["../evil.txt", "/tmp/evil.txt", "LJSpeech-1.1/../../evil.txt"]
)
def test_unsafe_member_rejected(server, dest, bad_name):
    lj = _tar_bz2({"LJSpeech-1.1/metadata.csv": b"x|y|z\n", bad_name: b"evil"})
    url = server.put(LJ.archive_name, lj)
    with pytest.raises(CorruptArchiveError, match="unsafe"):
        fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert not (dest.parent / "evil.txt").exists()
    assert not (dest / "LJSpeech-1.1").exists()
    assert leftovers(dest) == []


def test_unsafe_zip_member_rejected(server, dest):
    esc = _zip({f"{ESC.top_folder}/meta/esc50.csv": b"a\n", "../evil.txt": b"evil"})
    url = server.put(ESC.archive_name, esc)
    with pytest.raises(CorruptArchiveError, match="unsafe"):
        fetch_corpus("esc50", dest, url=url, known_hash=md5(esc), progress=False)
    assert leftovers(dest) == []


def test_symlink_zip_member_is_refused_and_the_archive_deleted(server, dest):
    """A symlink member could point anywhere once unpacked: the archive is not trusted."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{ESC.top_folder}/meta/esc50.csv", b"a\n")
        link = zipfile.ZipInfo(f"{ESC.top_folder}/audio/1-100032-A-0.wav")
        link.external_attr = 0o120777 << 16  # a symlink (S_IFLNK) whose data is its target
        zf.writestr(link, "/etc/passwd")
    esc = buf.getvalue()
    url = server.put(ESC.archive_name, esc)
    with pytest.raises(CorruptArchiveError) as info:
        fetch_corpus("esc50", dest, url=url, known_hash=md5(esc), progress=False)
    message = str(info.value)
    assert ESC.archive_name in message and "symlink members are refused" in message
    assert f"{ESC.top_folder}/audio/1-100032-A-0.wav" in message
    assert "The archive was deleted." in message
    assert not (dest / ".downloads" / ESC.archive_name).exists()  # the next run downloads afresh
    assert not (dest / "ESC-50-master").exists()
    assert leftovers(dest) == []


def test_stale_extraction_folders_are_removed(server, dest, caplog):
    """A run killed while unpacking leaves ``.extract-<name>-*``; the next run removes it."""
    stale = dest / ".extract-ljspeech-k1ll3d" / "LJSpeech-1.1" / "wavs"
    stale.mkdir(parents=True)
    (stale / "LJ001-0001.wav").write_bytes(b"half a file")
    other = dest / ".extract-esc50-busy"  # another corpus's: not this fetch's business
    other.mkdir()
    lj = lj_archive()
    url = server.put(LJ.archive_name, lj)
    with caplog.at_level("WARNING", logger="synthsep_lib.pipeline.downloads"):
        folder = fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert not (dest / ".extract-ljspeech-k1ll3d").exists()
    assert (folder / "metadata.csv").is_file() and (folder / "wavs/LJ001-0001.wav").is_file()
    assert other.is_dir()
    assert ".extract-ljspeech-k1ll3d" in caplog.text and "interrupted" in caplog.text


def test_interrupted_download_then_retry(server, dest):
    lj = lj_archive()
    url = server.put(LJ.archive_name, lj)
    server.break_next(LJ.archive_name)
    with pytest.raises(DownloadError) as info:
        fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert type(info.value) is DownloadError  # a broken transfer, not a checksum mismatch
    assert "ljspeech" in str(info.value) and url in str(info.value)
    assert "run again" in str(info.value)
    assert not (dest / ".downloads" / LJ.archive_name).exists()
    assert not (dest / "LJSpeech-1.1").exists()
    assert leftovers(dest) == []
    # the retry starts from scratch and succeeds
    folder = fetch_corpus("ljspeech", dest, url=url, known_hash=sha256(lj), progress=False)
    assert (folder / "metadata.csv").is_file()
    assert server.hits[f"/{LJ.archive_name}"] == 2


def test_unreachable_url(server, dest):
    with pytest.raises(DownloadError, match="404"):
        fetch_corpus(
            "esc50",
            dest,
            url=f"{server.url}/missing.zip",
            known_hash="md5:" + "0" * 32,
            progress=False,
        )
    assert leftovers(dest) == []


def test_incomplete_existing_folder(dest):
    (dest / "LJSpeech-1.1").mkdir(parents=True)
    with pytest.raises(DownloadError, match="metadata.csv"):
        fetch_corpus("ljspeech", dest, progress=False)


def test_unknown_corpus(dest):
    with pytest.raises(ValueError, match="unknown corpus"):
        fetch_corpus("librispeech", dest)


# --------------------------------------------------------------------------- command line


def test_cli_success(server, dest, capsys):
    lj, esc = lj_archive(), esc_archive()
    argv = [
        "ljspeech",
        "esc50",
        "--dest",
        str(dest),
        "--url",
        f"ljspeech={server.put(LJ.archive_name, lj)}",
        "--url",
        f"esc50={server.put(ESC.archive_name, esc)}",
        "--hash",
        f"ljspeech={sha256(lj)}",
        "--hash",
        f"esc50={md5(esc)}",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"ljspeech: {dest / 'LJSpeech-1.1'}" in out
    assert f"esc50: {dest / 'ESC-50-master'}" in out
    assert (dest / "ESC-50-master/meta/esc50.csv").is_file()


def test_cli_checksum_failure(server, dest, capsys):
    url = server.put(LJ.archive_name, lj_archive())
    argv = [
        "ljspeech",
        "--dest",
        str(dest),
        "--url",
        f"ljspeech={url}",
        "--hash",
        "ljspeech=sha256:" + "1" * 64,
    ]
    assert main([*argv, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: checksum mismatch for corpus 'ljspeech'")
    assert "Traceback" not in err


def test_cli_bad_option(dest, capsys):
    with pytest.raises(SystemExit) as info:
        main(["ljspeech", "--dest", str(dest), "--url", "nourl"])
    assert info.value.code == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_cli_subprocess_failure_has_no_traceback(server, dest):
    """`python -m data_scripts.download` exits non-zero with one clear message."""
    env = {"PATH": "", "NO_PROXY": "127.0.0.1", MIRROR_ENV: server.url}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "data_scripts.download",
            "esc50",
            "--dest",
            str(dest),
            "--no-progress",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "error: could not download corpus 'esc50'" in result.stderr
    assert f"{server.url}/{ESC.archive_name}" in result.stderr
    assert "Traceback" not in result.stderr
    assert server.hits[f"/{ESC.archive_name}"] == 1


def test_module_exports():
    from synthsep_lib.pipeline import downloads

    assert set(downloads.__all__) <= set(dir(downloads))


# --------------------------------------------------------------------------- the paper profile


def test_paper_profile_downloads_its_corpora_when_missing(server, tmp_path, monkeypatch):
    """What Chapter 1 does on Colab: prepare_corpora fetches both corpora into <root>/real."""
    import dataclasses

    from data_scripts.prepare import prepare_corpora
    from synthsep_lib.config import load_profile

    lj_bytes, esc_bytes = lj_archive(), esc_archive()
    server.put(LJ.archive_name, lj_bytes)
    server.put(ESC.archive_name, esc_bytes)
    monkeypatch.setitem(CORPORA, "ljspeech", dataclasses.replace(LJ, known_hash=sha256(lj_bytes)))
    monkeypatch.setitem(CORPORA, "esc50", dataclasses.replace(ESC, known_hash=md5(esc_bytes)))
    monkeypatch.setenv(MIRROR_ENV, server.url)
    lj, esc = prepare_corpora(load_profile("paper"), tmp_path / "data", progress=False)
    assert lj.root == tmp_path / "data" / "real" / "LJSpeech-1.1"
    assert lj.ids == ["LJ001-0001"]
    assert esc.root == tmp_path / "data" / "real" / "ESC-50-master"
    assert list(esc.clips.filename) == ["1-100032-A-0.wav"]
    prepare_corpora(load_profile("paper"), tmp_path / "data", progress=False)
    assert server.hits[f"/{LJ.archive_name}"] == 1 and server.hits[f"/{ESC.archive_name}"] == 1
