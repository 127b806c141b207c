"""Download and unpack the real corpora: LJ Speech 1.1 (speech) and ESC-50 (noise).

Both corpora end up side by side under one data folder, in the layout the original
code and most loaders expect (and in which the project's mini corpus is also built)::

    <dest>/LJSpeech-1.1/metadata.csv, wavs/*.wav
    <dest>/ESC-50-master/meta/esc50.csv, audio/*.wav
    <dest>/.downloads/   the verified archives (a local mirror is a copy of this folder)

Every archive is verified by checksum (sha256 for LJ Speech, md5 for the commit-pinned
ESC-50 archive, see original_code.md#oc-ljspeech-source and
original_code.md#oc-esc50-source), unpacked into a temporary folder inside ``<dest>`` and
moved into place with a single rename, so a corpus folder either is complete or does not
exist. Calling again when the folders are in place downloads nothing.

The command line is ``python -m data_scripts.download ljspeech esc50 --dest data``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = [
    "CORPORA",
    "MIRROR_ENV",
    "ChecksumMismatchError",
    "Corpus",
    "CorruptArchiveError",
    "DownloadError",
    "download_verified",
    "fetch_corpora",
    "fetch_corpus",
]

#: Environment variable naming a base URL that serves every archive under its
#: ``archive_name`` (for example a copy of ``<dest>/.downloads/`` on a local server).
MIRROR_ENV = "SYNTHSEP_MIRROR"

#: Folder inside ``dest`` where the verified archives are kept.
DOWNLOADS_FOLDER = ".downloads"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """Where a corpus comes from and how its unpacked folder must look.

    Parameters
    ----------
    name : str
        Short name used on the command line (``"ljspeech"``, ``"esc50"``).
    url : str
        Download URL of the archive.
    known_hash : str
        Checksum in pooch form, ``"sha256:<hex>"`` or ``"md5:<hex>"``.
    archive_name : str
        File name of the archive under ``<dest>/.downloads/`` (and on a mirror).
    archive_kind : str
        ``"tar.bz2"``, ``"tar.gz"``, ``"tar"`` or ``"zip"``.
    top_folder : str
        The single top-level folder inside the archive.
    final_folder : str
        Name of the corpus folder under ``dest`` (``top_folder`` is renamed to it).
    required : tuple of str
        Entries that must exist inside the corpus folder; a trailing ``/`` marks a
        folder, anything else a file.
    """

    name: str
    url: str
    known_hash: str
    archive_name: str
    archive_kind: str
    top_folder: str
    final_folder: str
    required: tuple[str, ...]


_ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"

#: The corpora this script knows, by name. Sources of the checksums:
#: original_code.md#oc-ljspeech-source and original_code.md#oc-esc50-source
#: (LJ Speech: torchaudio and TFDS, 2,748,572,632 bytes; ESC-50: the commit-pinned
#: GitHub archive used by soundata, about 646 MB).
CORPORA: dict[str, Corpus] = {
    "ljspeech": Corpus(
        name="ljspeech",
        url="https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2",
        known_hash="sha256:be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5",
        archive_name="LJSpeech-1.1.tar.bz2",
        archive_kind="tar.bz2",
        top_folder="LJSpeech-1.1",
        final_folder="LJSpeech-1.1",
        required=("metadata.csv", "wavs/"),
    ),
    "esc50": Corpus(
        name="esc50",
        url=f"https://github.com/karolpiczak/ESC-50/archive/{_ESC50_COMMIT}.zip",
        known_hash="md5:071b44018315e034b2c6e8064543d19c",
        archive_name=f"ESC-50-{_ESC50_COMMIT}.zip",
        archive_kind="zip",
        top_folder=f"ESC-50-{_ESC50_COMMIT}",
        final_folder="ESC-50-master",
        required=("meta/esc50.csv", "audio/"),
    ),
}


class DownloadError(RuntimeError):
    """A corpus could not be downloaded, verified or unpacked (the message says why)."""


class ChecksumMismatchError(DownloadError):
    """The downloaded archive does not have the expected checksum."""


class CorruptArchiveError(DownloadError):
    """The archive cannot be unpacked: truncated, garbage, unsafe or not the expected layout."""


# --------------------------------------------------------------------------- helpers


def _get_corpus(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        known = ", ".join(sorted(CORPORA))
        raise ValueError(f"unknown corpus {name!r}; known corpora: {known}") from None


def _missing_content(folder: Path, corpus: Corpus) -> list[str]:
    """Return the required entries of ``corpus`` that ``folder`` lacks (empty if complete)."""
    missing = []
    for entry in corpus.required:
        path = folder / entry.rstrip("/")
        ok = path.is_dir() if entry.endswith("/") else path.is_file()
        if not ok:
            missing.append(entry)
    return missing


def _resolve_url(corpus: Corpus, url: str | None) -> str:
    """Explicit ``url`` first, then ``$SYNTHSEP_MIRROR/<archive_name>``, then the registry."""
    if url:
        return url
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return mirror.rstrip("/") + "/" + corpus.archive_name
    return corpus.url


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def download_verified(
    label: str, archive_name: str, url: str, known_hash: str, downloads: Path, progress: bool
) -> Path:
    """Download (or reuse) ``downloads/<archive_name>``, verified, with pooch.

    ``label`` names the file in messages (e.g. ``"corpus 'esc50'"``). A download whose
    hash differs from ``known_hash`` is deleted (:class:`ChecksumMismatchError`); a
    network failure raises :class:`DownloadError` naming ``url``.
    """
    import pooch  # imported here: `--help` and the idempotent path stay fast
    import requests

    archive = downloads / archive_name
    logger = pooch.get_logger()
    level = logger.level
    if not progress:  # pooch logs "Downloading data from <url> to file <path>" otherwise
        logger.setLevel("WARNING")
    try:
        fname = pooch.retrieve(
            url,
            known_hash=known_hash,
            fname=archive_name,
            path=downloads,
            progressbar=progress,
        )
    except ValueError as err:
        message = str(err)
        match = re.search(r"but got ([0-9a-fA-F]+)", message)
        if "does not match the known hash" not in message:
            raise DownloadError(f"could not download {label} from {url}: {message}") from err
        # pooch has deleted its temporary download; an older file under the same name
        # (one that pooch wanted to replace) does not match either: remove it too.
        _unlink_quietly(archive)
        algorithm = known_hash.split(":")[0] if ":" in known_hash else "sha256"
        actual = f"{algorithm}:{match.group(1)}" if match else f"(see: {message})"
        raise ChecksumMismatchError(
            f"checksum mismatch for {label} downloaded from {url}: "
            f"expected {known_hash}, got {actual}. The bad download was deleted. "
            "The server sent a different file than the one this project was tested with "
            "(a changed archive, a wrong mirror, or a corrupted transfer)."
        ) from err
    except requests.exceptions.RequestException as err:
        raise DownloadError(
            f"could not download {label} from {url}: {err}. "
            "Nothing partial was kept; run again to restart the download."
        ) from err
    finally:
        logger.setLevel(level)
    return Path(fname)


def _check_member_name(name: str, archive: Path) -> None:
    """Reject absolute member paths and any ``..`` component (path traversal)."""
    normalised = name.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised) or ".." in parts:
        raise CorruptArchiveError(
            f"archive {archive} contains an unsafe member path {name!r} "
            "(absolute or with '..'); refusing to unpack it."
        )


def _counter(progress: bool, total: int | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="file", disable=not progress, leave=False)


def _extract_tar(archive: Path, target: Path, progress: bool) -> None:
    has_data_filter = hasattr(tarfile, "data_filter")

    def check(member: tarfile.TarInfo) -> None:
        _check_member_name(member.name, archive)
        if member.issym() or member.islnk():
            _check_member_name(member.linkname, archive)
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise CorruptArchiveError(
                f"archive {archive} contains a special file {member.name!r}; refusing to unpack it."
            )

    with (
        _counter(progress, None, f"unpacking {archive.name}") as bar,
        tarfile.open(archive, "r:*") as tar,
    ):
        if has_data_filter:

            def data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
                check(member)
                bar.update()
                return tarfile.data_filter(member, path)

            try:
                tar.extractall(target, filter=data_filter)
            except tarfile.FilterError as err:  # e.g. a link pointing outside the folder
                raise CorruptArchiveError(
                    f"archive {archive} contains an unsafe member ({err}); refusing to unpack it."
                ) from err
        else:  # Python < 3.10.12 / 3.11.4: our own checks only

            def members() -> Iterator[tarfile.TarInfo]:
                for member in tar:
                    check(member)
                    bar.update()
                    yield member

            tar.extractall(target, members=members())


def _check_zip_member_kind(info: zipfile.ZipInfo, archive: Path) -> None:
    """Refuse members whose Unix mode (if any) is not a file or folder.

    zipfile would write a symlink member as a small file holding the link's target, so
    the archive is not the corpus it claims to be; a link could also point anywhere.
    """
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise CorruptArchiveError(
            f"archive {archive} contains a symlink member {info.filename!r}; symlink members "
            "are refused, so it was not unpacked."
        )
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise CorruptArchiveError(
            f"archive {archive} contains a special file {info.filename!r}; refusing to unpack it."
        )


def _extract_zip(archive: Path, target: Path, progress: bool) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_name(info.filename, archive)
            _check_zip_member_kind(info, archive)
        with _counter(progress, len(infos), f"unpacking {archive.name}") as bar:
            for info in infos:
                zf.extract(info, target)
                bar.update()


def _extract_prefix(corpus: Corpus) -> str:
    """Name prefix of the temporary folders that unpack ``corpus`` inside ``dest``."""
    return f".extract-{corpus.name}-"


def _remove_stale_extractions(corpus: Corpus, dest: Path) -> None:
    """Delete the temporary folders of ``corpus`` that a killed run left in ``dest``.

    Only folders with this library's prefix for this corpus are touched; they can be as
    large as the corpus (3.8 GB for LJ Speech), and nothing else would ever remove them.
    """
    stale = sorted(
        p for p in dest.glob(f"{_extract_prefix(corpus)}*") if p.is_dir() and not p.is_symlink()
    )
    for folder in stale:
        try:
            shutil.rmtree(folder)
        except OSError as err:
            raise DownloadError(
                f"could not remove {folder}, left by an interrupted unpacking of corpus "
                f"{corpus.name!r}: {err}; delete it and run again."
            ) from err
    if stale:
        _log.warning(
            "removed %d unfinished unpacking folder(s) of corpus %r left by an interrupted run: %s",
            len(stale),
            corpus.name,
            ", ".join(str(p) for p in stale),
        )


def _extract(corpus: Corpus, archive: Path, dest: Path, progress: bool) -> Path:
    """Unpack ``archive`` into a temporary folder in ``dest`` and move the corpus into place."""
    final = dest / corpus.final_folder
    tmp = Path(tempfile.mkdtemp(prefix=_extract_prefix(corpus), dir=dest))
    try:
        try:
            if corpus.archive_kind == "zip":
                _extract_zip(archive, tmp, progress)
            elif corpus.archive_kind.startswith("tar"):
                _extract_tar(archive, tmp, progress)
            else:
                raise ValueError(
                    f"unknown archive kind {corpus.archive_kind!r} for corpus {corpus.name!r}"
                )
        except CorruptArchiveError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise CorruptArchiveError(
                f"archive {archive} of corpus {corpus.name!r} is corrupt or truncated "
                f"and cannot be unpacked ({type(err).__name__}: {err})."
            ) from err
        except OSError as err:
            if err.errno is not None:  # disk full, permission denied, ...: not the archive's fault
                raise DownloadError(
                    f"could not unpack archive {archive} into {dest}: {err}"
                ) from err
            # bz2/gzip/lzma decoders report bad data as OSError without an errno
            raise CorruptArchiveError(
                f"archive {archive} of corpus {corpus.name!r} is corrupt or truncated "
                f"and cannot be unpacked ({type(err).__name__}: {err})."
            ) from err

        top = tmp / corpus.top_folder
        if not top.is_dir():
            found = sorted(p.name for p in tmp.iterdir())
            raise CorruptArchiveError(
                f"archive {archive} of corpus {corpus.name!r} does not contain the expected "
                f"top folder {corpus.top_folder}/ (found: {', '.join(found) or 'nothing'})."
            )
        missing = _missing_content(top, corpus)
        if missing:
            raise CorruptArchiveError(
                f"archive {archive} of corpus {corpus.name!r} is incomplete: "
                f"{corpus.top_folder}/ lacks {', '.join(missing)}."
            )
        try:
            os.rename(top, final)  # same file system: atomic
        except OSError as err:
            raise DownloadError(f"could not move the unpacked corpus to {final}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------- public API


def fetch_corpus(
    name: str,
    dest: str | os.PathLike,
    *,
    url: str | None = None,
    known_hash: str | None = None,
    progress: bool = True,
    keep_archive: bool = True,
) -> Path:
    """Download, verify and unpack one corpus into ``<dest>/<final folder>``.

    Steps: (1) if ``<dest>/<final folder>`` already exists and holds the required
    entries, return it at once (nothing is downloaded); (2) download the archive with
    :func:`pooch.retrieve` to ``<dest>/.downloads/<archive name>``, verifying its
    checksum (an archive already there with the right checksum is reused); (3) unpack
    it into a temporary folder ``<dest>/.extract-<name>-XXXX`` (rejecting absolute
    paths and ``..``; tar archives use ``filter='data'``; zip archives may not hold
    symlinks), check the top folder and the content, and rename the top folder to
    ``<dest>/<final folder>``. Such folders of the same corpus left by a killed run
    are deleted first, with a warning (so two fetches of one corpus into one ``dest``
    must not run at once).

    pooch streams the download into a temporary file and moves it into place only
    when the checksum matches, so an interrupted download leaves nothing behind and
    the next call restarts it cleanly from the beginning (pooch does not resume
    partial downloads).

    ============  =========================  ===============  ==================
    name          archive                    checksum         final folder
    ============  =========================  ===============  ==================
    ``ljspeech``  ``LJSpeech-1.1.tar.bz2``   sha256           ``LJSpeech-1.1``
                  (2.56 GiB)
    ``esc50``     ``ESC-50-<commit>.zip``    md5              ``ESC-50-master``
                  (about 646 MB)
    ============  =========================  ===============  ==================

    Parameters
    ----------
    name : str
        Corpus name, a key of :data:`CORPORA` (``"ljspeech"`` or ``"esc50"``).
    dest : path-like
        Data folder; created if needed. Needs room for the archive and the unpacked
        corpus (LJ Speech: 2.6 GB + 3.8 GB; ESC-50: 0.65 GB + 0.9 GB).
    url : str, optional
        Download URL (a mirror). Default: ``$SYNTHSEP_MIRROR/<archive name>`` if that
        environment variable is set, else the official URL.
    known_hash : str, optional
        Checksum in pooch form (``"sha256:<hex>"``, ``"md5:<hex>"``). Default: the
        registry's checksum of the official archive.
    progress : bool
        Show a download progress bar and an unpacking counter.
    keep_archive : bool
        Keep the verified archive in ``<dest>/.downloads/`` (default) or delete it
        after a successful unpack to save disk space.

    Returns
    -------
    pathlib.Path
        ``<dest>/LJSpeech-1.1`` or ``<dest>/ESC-50-master``.

    Raises
    ------
    ValueError
        If ``name`` is not a known corpus.
    ChecksumMismatchError
        If the download's checksum differs; the message names the corpus, the URL,
        the expected and the actual checksum. The bad file is deleted.
    CorruptArchiveError
        If the archive cannot be unpacked or lacks the expected top folder or content;
        the message names the archive file. Nothing half-unpacked is left, and the
        archive is deleted so that the next call downloads it again.
    DownloadError
        If the server cannot be reached or the transfer breaks off, or if the corpus
        folder exists but is incomplete.
    """
    corpus = _get_corpus(name)
    dest = Path(dest).expanduser()
    final = dest / corpus.final_folder
    if final.exists():
        missing = _missing_content(final, corpus)
        if not missing:
            return final
        raise DownloadError(
            f"{final} exists but is not a complete {corpus.name} corpus (missing: "
            f"{', '.join(missing)}); delete it and run again."
        )
    dest.mkdir(parents=True, exist_ok=True)
    _remove_stale_extractions(corpus, dest)  # before downloading: they may hold GBs

    source = _resolve_url(corpus, url)
    expected = known_hash or corpus.known_hash
    archive = download_verified(
        f"corpus {corpus.name!r}",
        corpus.archive_name,
        source,
        expected,
        dest / DOWNLOADS_FOLDER,
        progress,
    )
    try:
        _extract(corpus, archive, dest, progress)
    except CorruptArchiveError as err:
        _unlink_quietly(archive)  # so that the next call downloads it afresh
        raise CorruptArchiveError(f"{err} The archive was deleted.") from err.__cause__
    if not keep_archive:
        _unlink_quietly(archive)
    return final


def fetch_corpora(
    names: Iterable[str],
    dest: str | os.PathLike,
    *,
    urls: Mapping[str, str] | None = None,
    known_hashes: Mapping[str, str] | None = None,
    progress: bool = True,
    keep_archive: bool = True,
) -> dict[str, Path]:
    """Fetch several corpora into the same data folder (see :func:`fetch_corpus`).

    Parameters
    ----------
    names : iterable of str
        Corpus names, e.g. ``["ljspeech", "esc50"]``.
    dest : path-like
        Data folder shared by all corpora.
    urls, known_hashes : mapping of str to str, optional
        Per-corpus overrides of the URL and the checksum.
    progress, keep_archive : bool
        As in :func:`fetch_corpus`.

    Returns
    -------
    dict of str to pathlib.Path
        Corpus name → its folder under ``dest``.
    """
    urls = dict(urls or {})
    known_hashes = dict(known_hashes or {})
    names = list(names)
    for name in [*names, *urls, *known_hashes]:
        _get_corpus(name)  # fail before downloading anything
    return {
        name: fetch_corpus(
            name,
            dest,
            url=urls.get(name),
            known_hash=known_hashes.get(name),
            progress=progress,
            keep_archive=keep_archive,
        )
        for name in names
    }
