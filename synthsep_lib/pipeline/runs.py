"""The run directory contract: where every artifact lives, and how it is written.

Chapters talk to each other only through ``runs/<profile>/``. Every file is written
atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted build never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..files import write_text_atomic
from ..mixing import test_wav_name

__all__ = [
    "CHAPTER_DATA",
    "CHAPTER_ENCODER",
    "CHAPTER_VOCODER",
    "CHAPTER_BASELINES",
    "CHAPTER_PARALLEL",
    "RunPaths",
    "MixtureSetPaths",
    "require_artifact",
    "RunConfigError",
    "config_differences",
    "check_same_settings",
    "splits_fingerprint",
    "TIMING_COLUMNS",
    "read_timing",
    "write_timing",
]

#: The chapters that make each kind of artifact, named when one is missing.
CHAPTER_DATA = "Chapter 1 (01_data_simulation)"
CHAPTER_ENCODER = "Chapter 2 (02_encoder)"
CHAPTER_VOCODER = "Chapter 3 (03_wavenet_vocoder)"
CHAPTER_BASELINES = "Chapter 4 (04_baselines)"
CHAPTER_PARALLEL = "Chapter 7 (07_parallel_vocoder)"


class RunPaths:
    """Paths of one run directory ``<run_root>/<profile>/``.

    Parameters
    ----------
    run_root : path-like
        Folder holding all runs (``runs/`` by default, git-ignored).
    profile : str
        Profile name (``"reduced"``, ``"paper"`` or ``"smoke"``).
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

    def test_wav(self, pair: int, kind: str) -> Path:
        """``data/test/NNN_<kind>.wav``; kind: source, target, noise or mixture."""
        return self.test_audio / test_wav_name(pair, kind)

    def encoder(self, variant: str) -> Path:
        """``encoder/<variant>/`` for ``"proposed"`` (mel) or ``"b1"`` (linear)."""
        return self.root / "encoder" / variant

    def encoder_estimates(self, variant: str) -> Path:
        """``encoder/<variant>/test/``: ``NNN.npy`` estimates of the test mixtures and
        ``timing.csv`` with the seconds each took (Chapter 2)."""
        return self.encoder(variant) / "test"

    def encoder_errors(self, variant: str) -> Path:
        """``encoder/<variant>/errors.csv``: e1, e2 of each test estimate (Chapter 2)."""
        return self.encoder_estimates(variant).parent / "errors.csv"

    def encoder_estimate(self, variant: str, pair: int) -> Path:
        """``encoder/<variant>/test/NNN.npy``: the estimate of one test mixture."""
        return self.encoder_estimates(variant) / f"{int(pair):03d}.npy"

    @property
    def vocoder(self) -> Path:
        return self.root / "vocoder" / "wavenet"

    @property
    def published_wavenet(self) -> Path:
        """``vocoder/wavenet/published/``: the published checkpoint and preset (``paper``)."""
        return self.vocoder / "published"

    @property
    def parallel_vocoder(self) -> Path:
        """``vocoder/parallel/``: the parallel vocoder's training data and its two stages."""
        return self.root / "vocoder" / "parallel"

    def baseline(self, name: str) -> Path:
        return self.root / "baselines" / name

    def outputs(self, method: str) -> Path:
        """``outputs/<method>/``: one WAV per test utterance plus ``timing.csv``."""
        return self.root / "outputs" / method

    def output_wav(self, method: str, pair: int) -> Path:
        """``outputs/<method>/NNN.wav``: one method's output for one test pair."""
        return self.outputs(method) / f"{int(pair):03d}.wav"

    @property
    def eval(self) -> Path:
        return self.root / "eval"


class MixtureSetPaths(RunPaths):
    """A set of test mixtures beside a run's own, separated by the run's trained models.

    ``<run_root>/<profile>/mixture_sets/<name>/`` holds the set's own ``data/`` (manifest
    and WAVs in the layout of Chapter 1's test set), encoder estimates, ``outputs/`` and
    ``eval/``; the trained models are read from the run itself. Every runner that takes a
    :class:`RunPaths` runs on the set unchanged (Chapter 8's harder conditions).

    Parameters
    ----------
    run_root : path-like
    profile : str
    name : str
        Name of the set, a folder name (e.g. ``"harder_conditions"``).
    """

    def __init__(self, run_root: str | os.PathLike, profile: str, name: str):
        super().__init__(run_root, profile)
        if not name or Path(name).name != name or name in (".", ".."):
            raise ValueError(f"a mixture set's name must be a plain folder name; got {name!r}")
        self.name = name
        self.set_root = self.root / "mixture_sets" / name

    @property
    def data(self) -> Path:
        """``mixture_sets/<name>/data/``: the set's manifest and mixtures."""
        return self.set_root / "data"

    def encoder_estimates(self, variant: str) -> Path:
        return self.set_root / "encoder" / variant / "test"

    def outputs(self, method: str) -> Path:
        return self.set_root / "outputs" / method

    @property
    def eval(self) -> Path:
        return self.set_root / "eval"


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


class RunConfigError(ValueError):
    """A training run folder was made with other settings than the current ones.

    Raised instead of resuming, with the differing settings named in the message.
    """


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict with dotted keys: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: obj}


def config_differences(stored: dict, current: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """The settings in which two run configurations differ, one readable line each.

    Parameters
    ----------
    stored, current : dict
        Nested configurations (as written to a run's ``config.json``).
    ignore : tuple of str
        Dotted keys that may differ, e.g. ``("encoder.epochs",)``.

    Returns
    -------
    list of str
        Sorted, e.g. ``["vocoder.learning_rate (stored 0.001, now 0.002)"]``; a key present
        on one side only shows as ``absent`` on the other. Empty if they agree.
    """
    old, new = _flatten(stored), _flatten(current)
    missing = object()
    diffs = []
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key, missing), new.get(key, missing)
        if a != b:
            show = lambda v: "absent" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{key} (stored {show(a)}, now {show(b)})")
    return diffs


def check_same_settings(
    stored: dict, current: dict, resumable: tuple[str, ...], what: str, folder, restart: str
) -> None:
    """Refuse to resume a run made with other settings, naming every difference.

    Parameters
    ----------
    stored, current : dict
        The run's stored configuration and this session's.
    resumable : tuple of str
        Dotted keys that may change between sessions.
    what : str
        The model, for the message ("encoder", "vocoder" …).
    folder : path-like
        The run folder.
    restart : str
        How to train afresh instead, e.g. "delete the folder".

    Raises
    ------
    RunConfigError
    """
    diffs = config_differences(stored, current, ignore=resumable)
    if diffs:
        raise RunConfigError(
            f"the {what} run in {folder} was trained with other settings: {'; '.join(diffs)}. "
            f"Use the same settings to resume, or {restart} (or choose another run root) "
            "to train afresh."
        )


def splits_fingerprint(splits) -> str:
    """SHA-1 (hex) of the six lists of a data split, to tie a trained model to its data.

    Parameters
    ----------
    splits : corpora.Splits
        Its ``LISTS`` (target/noise × train/valid/test), in their stored order.

    Returns
    -------
    str
        40 hex digits; the split's ``settings`` do not enter it.
    """
    lists = {name: list(getattr(splits, name)) for name in splits.LISTS}
    return hashlib.sha1(json.dumps(lists, sort_keys=True).encode()).hexdigest()


#: Columns of ``outputs/<method>/timing.csv``, one row per test pair written: ``pair``
#: (the manifest's pair number), ``seconds`` (time the method took to make that output,
#: without file I/O) and ``audio_seconds`` (duration of the output).
TIMING_COLUMNS = ("pair", "seconds", "audio_seconds")


def read_timing(path: str | os.PathLike) -> dict[int, dict[str, float]]:
    """Read a method's ``timing.csv`` (see :data:`TIMING_COLUMNS`); {} if it does not exist.

    Every runner that writes ``outputs/<method>/<pair:03d>.wav`` keeps this file next to
    the WAVs, rewriting it (:func:`write_timing`) after each output so that a resumed run
    keeps the timings of the outputs it skips.

    Parameters
    ----------
    path : path-like
        ``outputs/<method>/timing.csv``.

    Returns
    -------
    dict
        pair (int) → ``{"pair": int, "seconds": float, "audio_seconds": float}``; other
        columns are ignored, a repeated pair keeps its last row.

    Raises
    ------
    ValueError
        If a column of :data:`TIMING_COLUMNS` is missing or a value is not a number;
        the message names the file (and line).
    """
    path = Path(path)
    if not path.exists():
        return {}
    rows: dict[int, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in TIMING_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} lacks column(s) {missing}; expected {list(TIMING_COLUMNS)}")
        for line, record in enumerate(reader, start=2):
            try:
                row = {c: float(record[c]) for c in TIMING_COLUMNS[1:]}
                pair = int(record["pair"])
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{path}, line {line}: expected an integer pair and numbers of seconds; "
                    f"got {dict(record)}"
                ) from err
            rows[pair] = {"pair": pair, **row}
    return rows


def write_timing(path: str | os.PathLike, rows) -> Path:
    """Write a method's ``timing.csv`` atomically, one row per pair in pair order.

    Parameters
    ----------
    path : path-like
        ``outputs/<method>/timing.csv``.
    rows : mapping
        pair → row with the :data:`TIMING_COLUMNS` (as :func:`read_timing` returns);
        seconds are written with 6 significant digits.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If a row lacks a column or its ``pair`` differs from its key.
    """
    lines = [",".join(TIMING_COLUMNS)]
    for key in sorted(rows):
        row = rows[key]
        missing = [c for c in TIMING_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"timing row of pair {key} lacks {missing}; expected {TIMING_COLUMNS}")
        if int(row["pair"]) != int(key):
            raise ValueError(f"timing row {row} is stored under pair {key}; expected the same pair")
        lines.append(f"{int(key)},{float(row['seconds']):.6g},{float(row['audio_seconds']):.6g}")
    return write_text_atomic(path, "\n".join(lines) + "\n")
