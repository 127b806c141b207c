"""The run directory contract: where every artifact lives, and how it is written.

Chapters talk to each other only through ``runs/<profile>/``. Every file is written
atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted build never leaves a half-written file that a later run would trust.

Used in: every chapter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "RunPaths",
    "atomic_path",
    "write_text_atomic",
    "write_json_atomic",
    "require_artifact",
    "file_sha1",
    "reset_if_stale",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The caller writes the whole file to the yielded path. If the block raises, the
    temporary file is removed and ``path`` is left untouched (old content or absent).

    Parameters
    ----------
    path : path-like
        Final destination. Its parent folder is created if needed.

    Yields
    ------
    pathlib.Path
        Temporary file in the same folder (same file system, so the rename is atomic).
        Its suffix equals that of ``path`` so writers that infer the format work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class RunPaths:
    """Paths of one run directory ``<run_root>/<profile>/``.

    Parameters
    ----------
    run_root : path-like
        Folder holding all runs (``runs/`` by default, git-ignored).
    profile : str
        Profile name (``"reduced"`` or ``"paper"``).
    """

    def __init__(self, run_root: str | os.PathLike, profile: str):
        self.root = Path(run_root) / profile
        self.profile = profile

    @property
    def data(self) -> Path:
        """``data/``: splits, the test manifest and the regenerated test mixtures."""
        return self.root / "data"

    @property
    def splits(self) -> Path:
        return self.data / "splits.json"

    @property
    def test_manifest(self) -> Path:
        return self.data / "test_manifest.csv"

    @property
    def test_audio(self) -> Path:
        """``data/test/``: target, noise and mixture WAVs of the test manifest."""
        return self.data / "test"

    def encoder(self, variant: str) -> Path:
        """``encoder/<variant>/`` for ``"proposed"`` (mel) or ``"b1"`` (linear)."""
        return self.root / "encoder" / variant

    @property
    def vocoder(self) -> Path:
        return self.root / "vocoder" / "wavenet"

    def baseline(self, name: str) -> Path:
        return self.root / "baselines" / name

    def outputs(self, method: str) -> Path:
        """``outputs/<method>/``: one WAV per test utterance plus ``timing.csv``."""
        return self.root / "outputs" / method

    @property
    def eval(self) -> Path:
        return self.root / "eval"


def require_artifact(path: str | os.PathLike, chapter: str) -> Path:
    """Return ``path`` if it exists, else stop with one sentence naming the chapter to run.

    Parameters
    ----------
    path : path-like
        Artifact a chapter needs from an earlier one.
    chapter : str
        The chapter that produces it, e.g. ``"Chapter 1 (01_data_simulation)"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run {chapter} first, with the same profile and run root."
        )
    return path


def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes (hex), used to tie artifacts to the inputs they came from."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


STAMP_NAME = "MADE_FROM"


def reset_if_stale(folder: str | os.PathLike, made_from: str, pattern: str = "*.wav") -> bool:
    """Keep in ``folder`` only files made from ``made_from``; say whether it was reset.

    ``folder/MADE_FROM`` records what the files in it were made from (e.g. the SHA-1 of
    the test manifest). If it records something else, or is missing while files matching
    ``pattern`` exist, those files are deleted *before* the new stamp is written, so
    a run interrupted after the reset can never mistake an old file for a new one; the
    caller then writes (and may skip) files as usual.

    Parameters
    ----------
    folder : path-like
        Artifact folder (created if missing).
    made_from : str
        Signature of the inputs, e.g. ``file_sha1(paths.test_manifest)``.
    pattern : str
        Glob of the files that depend on those inputs.

    Returns
    -------
    bool
        True if stale files were deleted.

    Used in: Chapter 1 (01_data_simulation), Chapter 5 (05_evaluation).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / STAMP_NAME
    current = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else None
    if current == made_from:
        return False
    stale = sorted(folder.glob(pattern))
    for path in stale:
        path.unlink()
    write_text_atomic(stamp, made_from + "\n")
    return bool(stale)
