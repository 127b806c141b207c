"""The evaluation runner: every method's outputs on the fixed test set, scored once.

Methods write ``runs/<profile>/outputs/<method>/<pair:03d>.wav`` (and ``timing.csv``);
:func:`evaluate_outputs` scores each output against the test set's reference with
:func:`~synthsep_lib.evaluation.metrics.compute_metrics`, in parallel (joblib), and keeps
the scores in ``runs/<profile>/eval/metrics.csv``. A cached row is reused while the
output file's content and the evaluation settings are unchanged, so a rerun computes
only what is new; the cache is rewritten (atomically) after every few files, so an
interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from synthsep_lib.files import atomic_path, file_sha1
from synthsep_lib.pipeline.runs import CHAPTER_DATA, RunPaths, read_timing, require_artifact

from .. import audio
from ..mixing import read_test_manifest

__all__ = ["method_outputs", "evaluate_outputs", "read_timings"]

# Columns that identify a cached score; everything else in metrics.csv is a metric.
KEY_COLUMNS = ("method", "pair", "output_sha1", "settings")
# Scores are flushed to the cache after this many files (the cost of an interruption).
FLUSH_EVERY = 8


def reference_path(paths: RunPaths, pair: int, reference: str) -> Path:
    """The reference WAV of a test pair written by Chapter 1 (``source`` or ``target``)."""
    if reference not in ("source", "target"):
        raise ValueError(f"reference must be 'source' (the paper's) or 'target', got {reference!r}")
    return paths.test_wav(pair, reference)


def method_outputs(paths: RunPaths) -> dict[str, int]:
    """Methods that have outputs in ``runs/<profile>/outputs/``, with their file counts."""
    root = paths.root / "outputs"
    if not root.is_dir():
        return {}
    return {
        d.name: len(list(d.glob("[0-9][0-9][0-9].wav")))
        for d in sorted(root.iterdir())
        if d.is_dir()
    }


def _score(method, pair, output, sha1, reference, sample_rate, metric_names, align, settings):
    """One (method, pair): load both files, compute the metrics (runs in a worker)."""
    import warnings

    from ..evaluation.metrics import MetricWarning, SilentSignalError, compute_metrics

    estimate = audio.load_wav(output, sample_rate)
    ref = audio.load_wav(reference, sample_rate)
    kwargs = {"align": align}
    if metric_names is not None:
        kwargs["metrics"] = tuple(metric_names)
    try:
        scores = compute_metrics(ref, estimate, sample_rate, **kwargs)
    except SilentSignalError as error:
        # One silent output must not stop the evaluation: its scores are undefined (NaN).
        warnings.warn(f"{output}: {error}; its scores are NaN", MetricWarning, stacklevel=2)
        scores = {}
    return {
        "method": method,
        "pair": int(pair),
        "output_sha1": sha1,
        "settings": settings,
        **scores,
    }


def _write_cache(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.sort_values(["method", "pair"]).to_csv(tmp, index=False, float_format="%.10g")


def evaluate_outputs(
    paths: RunPaths,
    cfg,
    methods=None,
    *,
    reference: str = "source",
    metrics=None,
    align: bool = False,
    n_jobs: int = 2,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every available output of ``methods`` on the test manifest.

    Parameters
    ----------
    paths : RunPaths
        The run directory (reads ``data/`` and ``outputs/``, writes ``eval/metrics.csv``).
    cfg : Profile
        Uses ``cfg.features.sample_rate`` (Hz).
    methods : sequence of str, optional
        Method folders under ``outputs/``; default: all present.
    reference : {"source", "target"}
        ``source`` is the unscaled clean utterance the paper compared against;
        ``target`` the scaled one the encoder is trained on (metrics used here are
        scale-invariant or level-normalised, so both give nearly the same scores).
    metrics : sequence of str, optional
        Metric names for :func:`~synthsep_lib.evaluation.metrics.compute_metrics`;
        default: its full default set.
    align : bool
        Estimate and remove the lag of each output before scoring (records it).
    n_jobs : int
        joblib workers.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (method, pair) that has an output: ``method``, ``pair``, the metric
        columns. Cached rows of other settings stay in the cache but are not returned.

    Raises
    ------
    FileNotFoundError
        If Chapter 1's manifest or a reference WAV is missing (names the chapter to run).
    """
    from joblib import Parallel, delayed

    manifest = read_test_manifest(require_artifact(paths.test_manifest, CHAPTER_DATA))
    methods = list(method_outputs(paths)) if methods is None else list(methods)
    settings = json.dumps(
        {"reference": reference, "align": bool(align), "metrics": metrics}, sort_keys=True
    )
    cache_path = paths.eval / "metrics.csv"
    cache = (
        pd.read_csv(cache_path) if cache_path.exists() else pd.DataFrame(columns=list(KEY_COLUMNS))
    )
    cached = {tuple(row) for row in cache[list(KEY_COLUMNS)].astype(str).itertuples(index=False)}

    wanted, todo = [], []
    for method in methods:
        for pair in manifest["pair"]:
            output = paths.output_wav(method, pair)
            if not output.exists():
                continue
            sha1 = file_sha1(output)
            key = (method, str(int(pair)), sha1, settings)
            wanted.append(key)
            if key not in cached:
                ref = require_artifact(reference_path(paths, pair, reference), CHAPTER_DATA)
                todo.append((method, int(pair), str(output), sha1, str(ref)))

    # Rows for an output file that has since been rewritten can never match again.
    current = {(m, p, st): h for m, p, h, st in wanted}
    keys_now = cache[list(KEY_COLUMNS)].astype(str).itertuples(index=False)
    outdated = [current.get((m, p, st), h) != h for m, p, h, st in keys_now]
    cache = cache[~pd.Series(outdated, index=cache.index, dtype=bool)]

    if todo:
        jobs = (
            delayed(_score)(m, p, o, h, r, cfg.features.sample_rate, metrics, align, settings)
            for m, p, o, h, r in todo
        )
        results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(todo), desc="evaluating", unit="file")
        fresh = []
        for i, row in enumerate(results, start=1):
            fresh.append(row)
            if i % FLUSH_EVERY == 0 or i == len(todo):
                cache = pd.concat([cache, pd.DataFrame(fresh)], ignore_index=True)
                cache = cache.drop_duplicates(list(KEY_COLUMNS), keep="last")
                _write_cache(cache_path, cache)
                fresh = []

    keys = pd.DataFrame(wanted, columns=list(KEY_COLUMNS))
    table = cache.astype({"pair": str}).merge(keys, on=list(KEY_COLUMNS), how="inner")
    table["pair"] = table["pair"].astype(int)
    table = table.drop(columns=["output_sha1", "settings"]).dropna(axis=1, how="all")
    scores = [c for c in table.columns if c not in ("method", "pair")]
    table[scores] = table[scores].astype(float)  # a CSV round trip may read 1.0 back as int
    return table.sort_values(["method", "pair"]).reset_index(drop=True)


def read_timings(paths: RunPaths, methods=None) -> pd.DataFrame:
    """Processing time per method from ``outputs/<method>/timing.csv``.

    Returns
    -------
    pandas.DataFrame
        Index ``method``; columns ``files``, ``seconds`` (total processing time, s),
        ``audio_seconds`` (total duration of the outputs, s) and ``rtf`` (real-time
        factor = seconds / audio_seconds; below 1 is faster than real time).
    """
    rows = {}
    for method in methods or method_outputs(paths):
        timing = read_timing(paths.outputs(method) / "timing.csv")
        if not timing:
            continue
        rows[method] = {
            "files": len(timing),
            "seconds": sum(r["seconds"] for r in timing.values()),
            "audio_seconds": sum(r["audio_seconds"] for r in timing.values()),
        }
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["files", "seconds", "audio_seconds"]
    )
    frame["rtf"] = frame["seconds"] / frame["audio_seconds"].replace(0, np.nan)
    frame.index.name = "method"
    return frame
