"""Files that are written whole or not at all, and fingerprints of files.

Every file the library writes goes through :func:`atomic_path` (a temporary file in the
same folder, then ``os.replace``), so an interrupted run never leaves a half-written file
that a later run would trust. :func:`reset_if_stale` ties a folder of outputs to the
inputs they were made from.
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
    "atomic_path",
    "write_text_atomic",
    "write_json_atomic",
    "file_sha1",
    "reset_if_stale",
    "STAMP_NAME",
]


def _umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        # mkstemp makes the file private (0600); give it the mode of any new file instead
        os.chmod(tmp_path, 0o666 & ~_umask())
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
