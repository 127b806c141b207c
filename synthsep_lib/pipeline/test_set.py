"""One way to run any method over the fixed test set of Chapter 1.

Every method — an encoder's estimates, the signal-processing methods, the WaveNet, B2 —
turns test pairs into one file per pair in a folder, plus ``timing.csv``
(:data:`~synthsep_lib.pipeline.runs.TIMING_COLUMNS`). :func:`run_over_test_set` is that
loop, once:

- the folder is tied to what its files are made from (test manifest, model weights,
  encoder estimates …): made from something else, they are deleted first
  (:func:`synthsep_lib.files.reset_if_stale`);
- a pair whose file and timing row are both there is skipped, so an interrupted run
  continues where it stopped;
- every file is written atomically and ``timing.csv`` after every group of pairs;
- a progress bar counts the groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import audio
from ..files import atomic_path, reset_if_stale
from ..mixing import read_test_manifest
from .runs import CHAPTER_DATA, RunPaths, read_timing, require_artifact, write_timing

__all__ = [
    "OUTPUT_COLUMNS",
    "test_rows",
    "load_test_signal",
    "wav_writer",
    "save_array",
    "run_over_test_set",
]

#: Columns of the table :func:`run_over_test_set` returns.
OUTPUT_COLUMNS = ("method", "pair", "path", "written", "seconds", "audio_seconds")

#: ``produce(rows)`` yields ``(pair, output, seconds, audio_seconds)`` for each row.
Producer = Callable[[list[dict]], Iterable[tuple[int, np.ndarray, float, float]]]


def test_rows(paths: RunPaths, pairs: Sequence[int] | None = None) -> list[dict]:
    """Rows of Chapter 1's test manifest (all, or those of ``pairs`` in that order).

    Raises
    ------
    FileNotFoundError
        If the manifest is missing (the message names Chapter 1).
    ValueError
        If a pair of ``pairs`` is not in the manifest.
    """
    manifest = read_test_manifest(require_artifact(paths.test_manifest, CHAPTER_DATA))
    rows = {int(row["pair"]): row for row in manifest.to_dict("records")}
    if pairs is None:
        return list(rows.values())
    missing = [p for p in pairs if int(p) not in rows]
    if missing:
        raise ValueError(f"pairs {missing} are not in {paths.test_manifest}")
    return [rows[int(p)] for p in pairs]


def load_test_signal(paths: RunPaths, row: dict, kind: str, sample_rate: int) -> np.ndarray:
    """One test WAV of Chapter 1 (``data/test/NNN_<kind>.wav``), float32 (L,).

    Raises
    ------
    FileNotFoundError
        If the file is missing (the message names Chapter 1).
    ValueError
        If its length differs from the manifest's ``num_samples``.
    """
    path = require_artifact(paths.test_wav(int(row["pair"]), kind), CHAPTER_DATA)
    wav = audio.load_wav(path, sample_rate)
    if wav.shape[0] != int(row["num_samples"]):
        raise ValueError(
            f"{path} has {wav.shape[0]} samples, the manifest says {int(row['num_samples'])}; "
            f"rerun {CHAPTER_DATA}"
        )
    return wav


def wav_writer(sample_rate: int) -> Callable[[Path, np.ndarray], None]:
    """A ``save`` for :func:`run_over_test_set`: float WAV at ``sample_rate`` Hz."""
    return lambda path, wav: audio.save_wav(path, wav, sample_rate, subtype="FLOAT")


def save_array(path: Path, array: np.ndarray) -> None:
    """A ``save`` for :func:`run_over_test_set`: ``.npy``, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def run_over_test_set(
    method: str,
    folder: Path,
    made_from: str,
    rows: Sequence[dict],
    produce: Producer,
    *,
    save: Callable[[Path, np.ndarray], None],
    suffix: str = ".wav",
    batches: Callable[[list[dict]], list[list[dict]]] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``folder/NNN<suffix>`` and ``folder/timing.csv`` for every test row.

    Parameters
    ----------
    method : str
        Name of the method, for the progress bar and the returned table.
    folder : pathlib.Path
        Output folder (created if missing).
    made_from : str
        Signature of everything the outputs depend on; files made from another are
        deleted first.
    rows : sequence of dict
        Test manifest rows (:func:`test_rows`).
    produce : callable
        ``produce(group)`` yields ``(pair, output, seconds, audio_seconds)`` for each
        row of ``group``: the output array, the seconds of computation it took (no file
        I/O) and the seconds of audio it stands for.
    save : callable
        ``save(path, output)`` writes one output atomically (:func:`wav_writer`,
        :func:`save_array`).
    suffix : str
        File ending of the outputs.
    batches : callable, optional
        Groups the rows still to do (default: one row per group); ``timing.csv`` is
        written after every group.
    progress : bool
        Show a tqdm bar over the groups.

    Returns
    -------
    pandas.DataFrame
        One row per test row with :data:`OUTPUT_COLUMNS`; ``written`` is False for a
        pair that was already there, ``seconds`` NaN for one without a timing row.
    """
    folder = Path(folder)
    pattern = f"[0-9]*{suffix}"
    reset_if_stale(folder, made_from, pattern=pattern)
    timing_path = folder / "timing.csv"
    if not any(folder.glob(pattern)):
        timing_path.unlink(missing_ok=True)
    timings = read_timing(timing_path)

    def output(pair: int) -> Path:
        return folder / f"{pair:03d}{suffix}"

    todo = [r for r in rows if not (output(int(r["pair"])).exists() and int(r["pair"]) in timings)]
    groups = batches(todo) if batches else [[r] for r in todo]
    if progress and groups:
        from tqdm.auto import tqdm

        groups = tqdm(groups, desc=method, unit="pair" if batches is None else "batch")
    for group in groups:
        for pair, result, seconds, audio_seconds in produce(group):
            save(output(pair), result)
            timings[pair] = {"pair": pair, "seconds": seconds, "audio_seconds": audio_seconds}
        write_timing(timing_path, timings)
    written = {int(r["pair"]) for r in todo}
    records = []
    for row in rows:
        pair = int(row["pair"])
        timing = timings.get(pair, {})
        records.append(
            {
                "method": method,
                "pair": pair,
                "path": str(output(pair)),
                "written": pair in written,
                "seconds": timing.get("seconds", np.nan),
                "audio_seconds": timing.get("audio_seconds", np.nan),
            }
        )
    return pd.DataFrame(records, columns=list(OUTPUT_COLUMNS))
