"""The listening test's stimuli from a run folder: each method's outputs and the mixtures.

The listening package (:mod:`synthsep_lib.evaluation.listening`) works on plain folders;
this module gathers what a run holds for it, ``runs/<profile>/outputs/<method>/NNN.wav``
and ``data/test/NNN_mixture.wav``, and names where the test keeps its files,
``runs/<profile>/eval/listening/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ..evaluation.listening.design import REFERENCE_ROLE
from ..evaluation.listening.stimulus import normalise_stimuli
from .runs import CHAPTER_BASELINES, CHAPTER_DATA, RunPaths, require_artifact

__all__ = ["listening_dir", "prepare_stimuli"]


def listening_dir(paths: RunPaths) -> Path:
    """``runs/<profile>/eval/listening/``: stimuli, responses and exports of the test."""
    return paths.eval / "listening"


def _stimulus_inputs(paths: RunPaths, methods: Sequence[str], pairs) -> dict[int, dict[str, Path]]:
    """Pair -> role -> input WAV, for the pairs that have an output of every method."""
    available = []
    for method in methods:
        found = {int(p.stem) for p in paths.outputs(method).glob("[0-9][0-9][0-9].wav")}
        if not found:
            raise FileNotFoundError(
                f"{paths.outputs(method)} holds no outputs of {method!r}: run the chapter that "
                f"produces it ({CHAPTER_BASELINES} for the baselines) with the same profile "
                "and run root."
            )
        available.append(found)
    common = sorted(set.intersection(*available))
    if pairs is not None:
        missing = sorted(set(map(int, pairs)) - set(common))
        if missing:
            raise ValueError(
                f"test pairs {missing} lack an output of at least one of {list(methods)} "
                f"(pairs with all outputs: {common})"
            )
        common = sorted(set(map(int, pairs)))
    inputs = {}
    for pair in common:
        mixture = paths.test_wav(pair, "mixture")
        inputs[pair] = {REFERENCE_ROLE: require_artifact(mixture, CHAPTER_DATA)}
        inputs[pair].update({m: paths.output_wav(m, pair) for m in methods})
    return inputs


def prepare_stimuli(
    paths: RunPaths,
    sample_rate: int,
    methods: Sequence[str] = ("proposed", "b1", "b2"),
    *,
    pairs: Iterable[int] | None = None,
    target_lufs: float = -23.0,
    peak_dbfs: float = -1.0,
    dest: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Loudness-normalised copies of each method's outputs and of the mixtures.

    Gathers the run's files of every test pair that has an output of each method and
    hands them to :func:`synthsep_lib.evaluation.listening.stimulus.normalise_stimuli`,
    which scales every stimulus to ``target_lufs`` (lowering a whole trial together
    where one would peak above ``peak_dbfs``), leaves out pairs with a silent stimulus
    and rebuilds the folder only when the inputs or settings change.

    Parameters
    ----------
    paths : RunPaths
        Reads ``outputs/<method>/<pair>.wav`` and ``data/test/<pair>_mixture.wav``.
    sample_rate : int
        Hz (``cfg.features.sample_rate``); files at another rate are resampled.
    methods : sequence of str
        Method folders; only pairs with an output of every method are used.
    pairs : iterable of int, optional
        Test pairs to use; default all pairs with every output.
    target_lufs : float
        Integrated loudness of every stimulus (LUFS); -23 is EBU R128's programme level.
    peak_dbfs : float
        Highest sample peak allowed after scaling (dB full scale, < 0).
    dest : path-like, optional
        Output folder; default ``eval/listening/stimuli/``.

    Returns
    -------
    pandas.DataFrame
        One row per stimulus, as ``normalise_stimuli`` returns it (``role`` is a method
        or ``mixture``); also written to ``dest/stimuli.csv``.

    Raises
    ------
    FileNotFoundError
        If a method has no outputs or a mixture is missing (names the chapter to run).
    ValueError
        For bad settings, pairs without every output, or when no usable pair remains.
    """
    if not methods or len(set(methods)) != len(methods) or REFERENCE_ROLE in methods:
        raise ValueError(f"methods must be distinct method folders; got {list(methods)!r}")
    dest = Path(dest) if dest is not None else listening_dir(paths) / "stimuli"
    return normalise_stimuli(
        _stimulus_inputs(paths, methods, pairs),
        dest,
        sample_rate,
        target_lufs=target_lufs,
        peak_dbfs=peak_dbfs,
    )
