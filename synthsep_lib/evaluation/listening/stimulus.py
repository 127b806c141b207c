"""Loudness-matched stimuli: BS.1770 loudness and the normalised stimulus files.

A louder sound tends to be preferred, so every stimulus of the test is scaled to the
same integrated loudness (ITU-R BS.1770, measured with ``pyloudnorm``) before anyone
hears it. :func:`normalise_stimuli` writes the files ``<pair:03d>_<role>.wav`` and their
table ``stimuli.csv``; :func:`read_stimuli` reads the table back.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ... import audio
from ...files import atomic_path, file_sha1, reset_if_stale

__all__ = [
    "loudness_lufs",
    "stimulus_path",
    "normalise_stimuli",
    "read_stimuli",
]

STIMULI_MANIFEST = "stimuli.csv"
# BS.1770 measures 400 ms gating blocks; shorter signals get one ungated block.
BS1770_BLOCK_S = 0.4
# The absolute gate of BS.1770: blocks quieter than this are silence.
SILENCE_LUFS = -70.0
_STIMULI_DTYPES = {
    "pair": int,
    "role": str,
    "file": str,
    "source": str,
    "duration_s": float,
    "loudness_lufs": float,
    "measurement": str,
    "gain_db": float,
    "limiter_db": float,
}


def stimulus_path(stimuli_dir: str | os.PathLike, pair: int, role: str) -> Path:
    """``<stimuli_dir>/<pair:03d>_<role>.wav``; ``role`` is a method folder or ``mixture``."""
    return Path(stimuli_dir) / f"{int(pair):03d}_{role}.wav"


def loudness_lufs(wav, sample_rate: int, name: str = "signal") -> tuple[float, str]:
    """Integrated loudness of a mono signal (ITU-R BS.1770-4, via ``pyloudnorm``).

    BS.1770 averages K-weighted power over 400 ms blocks, gated at -70 LUFS and at
    10 LU below the ungated level. A signal shorter than one block (0.4 s) cannot be
    gated; it is measured as **one ungated block** spanning the whole signal (K-weighted
    mean power), with a warning.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Samples in [-1, 1].
    sample_rate : int
        Hz.
    name : str
        Names the signal in warnings and errors (e.g. its file).

    Returns
    -------
    (float, str)
        Loudness in LUFS, and how it was measured: ``"BS.1770"`` or
        ``"ungated (shorter than 0.4 s)"``.

    Raises
    ------
    ValueError
        If the signal is silent (quieter than the -70 LUFS absolute gate throughout):
        its loudness, and so its gain, is undefined.
    """
    import pyloudnorm

    x = np.asarray(wav, dtype=np.float64)
    duration = x.shape[0] / sample_rate
    if duration >= BS1770_BLOCK_S:
        block, method = BS1770_BLOCK_S, "BS.1770"
    else:
        warnings.warn(
            f"{name} lasts {duration:.3f} s, shorter than one 0.4 s BS.1770 block; "
            "measuring it as a single ungated block",
            UserWarning,
            stacklevel=2,
        )
        # Slightly less than the whole signal: pyloudnorm needs more samples than a block.
        block = x.shape[0] * (1 - 1e-9) / sample_rate
        method = "ungated (shorter than 0.4 s)"
    with np.errstate(divide="ignore"):
        lufs = float(pyloudnorm.Meter(sample_rate, block_size=block).integrated_loudness(x))
    if not np.isfinite(lufs) or lufs < SILENCE_LUFS:
        raise ValueError(
            f"{name} is silent (loudness {lufs:.1f} LUFS, below the {SILENCE_LUFS:.0f} LUFS "
            "gate of BS.1770); it cannot be loudness-normalised"
        )
    return lufs, method


def normalise_stimuli(
    inputs: Mapping[int, Mapping[str, str | os.PathLike]],
    dest: str | os.PathLike,
    sample_rate: int,
    *,
    target_lufs: float = -23.0,
    peak_dbfs: float = -1.0,
) -> pd.DataFrame:
    """Loudness-normalised copies of the stimuli of every trial, with their table.

    Every stimulus (each system's output and the mixture, the reference) is scaled to
    ``target_lufs`` integrated loudness (:func:`loudness_lufs`), so that a louder system
    is not preferred for being louder. **Clip safety**: if a scaled stimulus of a trial
    would peak above ``peak_dbfs``, *all* stimuli of that trial are lowered by the same
    amount (recorded as ``limiter_db``), which keeps them loudness-matched to each other
    while no sample clips. Files are 16-bit WAV, written atomically.

    A trial (test pair) whose stimulus is silent is left out with a warning. The folder
    is rebuilt only when the inputs or settings change (``MADE_FROM`` stamp).

    Parameters
    ----------
    inputs : mapping int -> (mapping str -> path-like)
        Test pair -> role (a method folder, or ``mixture`` for the reference) -> WAV
        file; written to ``dest`` as :func:`stimulus_path` names them.
    dest : path-like
        Output folder.
    sample_rate : int
        Hz; files at another rate are resampled.
    target_lufs : float
        Integrated loudness of every stimulus (LUFS); -23 is EBU R128's programme level.
    peak_dbfs : float
        Highest sample peak allowed after scaling (dB full scale, < 0).

    Returns
    -------
    pandas.DataFrame
        One row per stimulus: ``pair``, ``role``, ``file`` (name in ``dest``),
        ``source`` (input path), ``duration_s``, ``loudness_lufs`` (measured before
        scaling), ``measurement``, ``gain_db`` (total applied, limiter included),
        ``limiter_db`` (<= 0). Also written to ``dest/stimuli.csv``.

    Raises
    ------
    ValueError
        For bad settings, or when no usable pair remains.
    """
    if not np.isfinite(peak_dbfs) or peak_dbfs >= 0:
        raise ValueError(f"peak_dbfs must be below 0 dB full scale; got {peak_dbfs!r}")
    if not np.isfinite(target_lufs) or target_lufs >= 0:
        raise ValueError(f"target_lufs must be a negative loudness in LUFS; got {target_lufs!r}")
    dest = Path(dest)
    made_from = hashlib.sha1(
        repr(
            (
                sample_rate,
                target_lufs,
                peak_dbfs,
                [(p, r, file_sha1(f)) for p, roles in inputs.items() for r, f in roles.items()],
            )
        ).encode()
    ).hexdigest()
    manifest_path = dest / STIMULI_MANIFEST
    # "*.*": the WAVs and the manifest, not the MADE_FROM stamp. The manifest is written
    # last, so with an unchanged stamp its presence means the folder is complete.
    if not reset_if_stale(dest, made_from, pattern="*.*") and manifest_path.exists():
        table = read_stimuli(dest)
        left_out = sorted(set(inputs) - set(table["pair"]))
        if left_out:
            warnings.warn(
                f"test pairs {left_out} were left out of the listening test when its stimuli "
                "were prepared (a stimulus was silent or unreadable)",
                stacklevel=2,
            )
        return table

    peak_limit = 10 ** (peak_dbfs / 20)
    records = []
    for pair, roles in inputs.items():
        try:
            measured = {}
            for role, source in roles.items():
                wav = audio.load_wav(source, sample_rate).astype(np.float64)
                measured[role] = (wav, *loudness_lufs(wav, sample_rate, name=str(source)))
        except ValueError as error:
            warnings.warn(f"test pair {pair} left out of the listening test: {error}", stacklevel=2)
            continue
        gains = {role: target_lufs - lufs for role, (_, lufs, _) in measured.items()}
        peak = max(np.max(np.abs(w)) * 10 ** (gains[r] / 20) for r, (w, _, _) in measured.items())
        limiter_db = min(0.0, 20 * np.log10(peak_limit / peak))
        for role, (wav, lufs, how) in measured.items():
            gain_db = gains[role] + limiter_db
            path = stimulus_path(dest, pair, role)
            audio.save_wav(path, wav * 10 ** (gain_db / 20), sample_rate)
            records.append(
                {
                    "pair": pair,
                    "role": role,
                    "file": path.name,
                    "source": str(roles[role]),
                    "duration_s": wav.shape[0] / sample_rate,
                    "loudness_lufs": lufs,
                    "measurement": how,
                    "gain_db": gain_db,
                    "limiter_db": limiter_db,
                }
            )
    if not records:
        raise ValueError(f"none of test pairs {list(inputs)} is usable for the listening test")
    with atomic_path(manifest_path) as tmp:
        pd.DataFrame(records).to_csv(tmp, index=False, float_format="%.6g")
    return read_stimuli(dest)


def read_stimuli(stimuli_dir: str | os.PathLike) -> pd.DataFrame:
    """The stimuli table that :func:`normalise_stimuli` wrote to ``<stimuli_dir>/stimuli.csv``.

    Raises
    ------
    FileNotFoundError
        If the table is missing (names the function to run).
    """
    path = Path(stimuli_dir) / STIMULI_MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run prepare_stimuli first")
    return pd.read_csv(path, dtype=_STIMULI_DTYPES)
