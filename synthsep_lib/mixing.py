"""Mixture simulation (the paper's protocol and an SNR-controlled one) and test manifests.

The paper never stores mixtures: it rebuilds them from an LJSpeech utterance and an
ESC-50 clip every time (see original_code.md#oc-mixing). For evaluation we fix the
test pairs once in a manifest (``data/test_manifest.csv``) and regenerate the audio from
it byte-identically.

Sample rates are the caller's job: ``target`` and ``noise`` must both be at the
feature sample rate (22050 Hz); :class:`~synthsep_lib.corpora.LJSpeech` and
:class:`~synthsep_lib.corpora.ESC50` load them that way.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from synthsep_lib.files import atomic_path, reset_if_stale

from . import audio
from .config import FeatureConfig, section

__all__ = [
    "TEST_SIGNALS",
    "test_wav_name",
    "Mixture",
    "NOISE_PEAK",
    "MIXTURE_PEAK",
    "tile_noise",
    "snr_db",
    "simulate_mixture_paper",
    "simulate_mixture_snr",
    "mix_and_rescale",
    "MANIFEST_COLUMNS",
    "make_test_manifest",
    "write_test_manifest",
    "read_test_manifest",
    "regenerate_test_mixture",
    "write_test_set",
]

#: Peak of the tiled noise before mixing (``interf_scale``, see original_code.md#oc-mixing).
NOISE_PEAK = 0.5
#: Peak of the final mixture (``rescaling_max``).
MIXTURE_PEAK = 0.999


@dataclass
class Mixture:
    """One simulated mixture; all arrays float32 of the same length L.

    Attributes
    ----------
    mixture : numpy.ndarray, shape (L,)
        ``scale · (s1 + gain · s2_tiled)``; peak ``MIXTURE_PEAK``.
    target : numpy.ndarray, shape (L,)
        ``scale · s1`` — the training target (step 4 of original_code.md#oc-mixing).
    noise : numpy.ndarray, shape (L,)
        ``scale · gain · s2_tiled``.
    scale : float
        Final rescale ``peak / max|s1 + gain·s2|``.
    snr_db : float
        ``10 log10(Σ target² / Σ noise²)`` over the whole signal (lead-in included), dB.
    noise_gain : float
        Gain applied to the tiled noise before mixing (0.5 / its peak in the paper).
    noise_offset : int
        Sample of the clip where the tiling starts (0 in the paper).
    """

    mixture: np.ndarray
    target: np.ndarray
    noise: np.ndarray
    scale: float
    snr_db: float
    noise_gain: float
    noise_offset: int = 0


def _name(kind: str, ident: str | None) -> str:
    return f"{kind} {ident!r}" if ident else kind


def _check_signal(x: np.ndarray, kind: str, ident: str | None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{_name(kind, ident)} must be a mono 1-D array, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{_name(kind, ident)} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{_name(kind, ident)} contains NaN or infinite samples")
    return x.astype(np.float64)


def tile_noise(noise: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """Repeat a noise clip to ``length`` samples (step 2 of original_code.md#oc-mixing).

    Sample n of the result is ``noise[(offset + n) mod len(noise)]``: for ``offset = 0``
    this is the paper's "concatenate whole copies from the clip's first sample until
    ≥ L, then truncate to L".

    Parameters
    ----------
    noise : numpy.ndarray, shape (m,)
        The clip at the target's sample rate.
    length : int
        L, samples.
    offset : int
        Start sample in the clip, ``0 <= offset < m``.

    Returns
    -------
    numpy.ndarray, shape (length,), same dtype as ``noise``
    """
    noise = np.asarray(noise)
    m = noise.shape[0]
    if m == 0:
        raise ValueError("noise clip is empty")
    offset = int(offset)
    if not 0 <= offset < m:
        raise ValueError(
            f"noise_offset must be in [0, {m}) for a clip of {m} samples, got {offset}"
        )
    index = (offset + np.arange(int(length))) % m
    return noise[index]


def snr_db(target: np.ndarray, noise: np.ndarray) -> float:
    """``10 log10(Σ target² / Σ noise²)`` in dB over the whole signals."""
    t = float(np.sum(np.square(np.asarray(target, dtype=np.float64))))
    n = float(np.sum(np.square(np.asarray(noise, dtype=np.float64))))
    return float(10.0 * np.log10(t / n))


def _peak(x: np.ndarray, error: str) -> float:
    """``max|x|``; ValueError(``error``) if ``x`` is all zeros."""
    top = float(np.max(np.abs(x)))
    if top == 0.0:
        raise ValueError(error)
    return top


def _check_pair(target, noise, target_id, noise_id) -> tuple[np.ndarray, np.ndarray]:
    """Validate a target and a noise clip; return both as float64 (target not silent)."""
    s1 = _check_signal(target, "target", target_id)
    clip = _check_signal(noise, "noise", noise_id)
    if not np.any(s1):
        raise ValueError(f"{_name('target', target_id)} is silent (all zeros): SNR undefined")
    return s1, clip


def _silent_noise(noise_id: str | None, length: int, why: str) -> str:
    return f"{_name('noise', noise_id)} is silent over the {length} samples used: {why}"


def mix_and_rescale(
    s1: np.ndarray, s2: np.ndarray, noise_gain: float, peak: float, noise_offset: int = 0
) -> Mixture:
    """Mix ``s1 + noise_gain·s2`` and rescale the mixture and both parts to ``peak``.

    The last step of both protocols (step 4 of original_code.md#oc-mixing): one factor
    ``peak / max|mix|`` scales the mixture, the target and the noise, so that
    ``mixture = target + noise`` still holds for the training targets.

    Parameters
    ----------
    s1 : numpy.ndarray, float64, shape (L,)
        The target.
    s2 : numpy.ndarray, float64, shape (L,)
        The tiled noise.
    noise_gain : float
        Gain applied to ``s2`` before mixing.
    peak : float
        Peak of the returned mixture.
    noise_offset : int
        Recorded in the result (start sample of the tiling).

    Returns
    -------
    Mixture
        float32 signals; ``snr_db`` of ``s1`` against ``noise_gain·s2``.

    Raises
    ------
    ValueError
        If the mixture is silent (target and noise cancel).
    """
    noise = noise_gain * s2
    mix = s1 + noise
    scale = peak / _peak(mix, "the mixture is silent (target and noise cancel); cannot rescale it")
    return Mixture(
        mixture=(scale * mix).astype(np.float32),
        target=(scale * s1).astype(np.float32),
        noise=(scale * noise).astype(np.float32),
        scale=float(scale),
        snr_db=snr_db(s1, noise),
        noise_gain=float(noise_gain),
        noise_offset=int(noise_offset),
    )


def simulate_mixture_paper(
    target: np.ndarray,
    noise: np.ndarray,
    noise_offset: int = 0,
    *,
    target_id: str | None = None,
    noise_id: str | None = None,
) -> Mixture:
    """The paper's mixture recipe, exactly (see original_code.md#oc-mixing).

    1. s1 = ``target`` (r9y9's saved audio with the 768-zero lead-in), L = len(s1).
    2. s2 = ``noise`` tiled from the clip start (or ``noise_offset``) to L samples.
    3. s2 ← s2 · 0.5 / max|s2| (peak taken after truncation).
    4. mix = s1 + s2; scale = 0.999 / max|mix|; mixture = scale·mix,
       target = scale·s1, noise = scale·s2.

    The SNR is *not* controlled: it follows from the two peaks (s1 0.999, s2 0.5) and is
    reported in ``Mixture.snr_db``. Arithmetic is float64; outputs are float32.

    Parameters
    ----------
    target : numpy.ndarray, shape (L,)
        s1 at 22050 Hz, e.g. ``LJSpeech.load_target(id, cfg)``.
    noise : numpy.ndarray, shape (m,)
        ESC-50 clip at the same rate (the caller resamples), any length m ≥ 1.
    noise_offset : int
        Start sample of the tiling (0 in the paper).
    target_id, noise_id : str, optional
        Names used in error messages.

    Returns
    -------
    Mixture

    Raises
    ------
    ValueError
        Silent target ("SNR undefined"), silent noise, NaN/inf samples, empty or
        non-1-D input, or an offset outside the clip.
    """
    s1, clip = _check_pair(target, noise, target_id, noise_id)
    # 1. tile the clip from its first sample to the target's length L
    s2 = tile_noise(clip, s1.shape[0], noise_offset)
    # 2. scale the tiled noise to a peak of 0.5
    noise_peak = _peak(s2, _silent_noise(noise_id, s1.shape[0], "cannot scale it to peak 0.5"))
    # 3. mix and rescale everything so that the mixture peaks at 0.999
    return mix_and_rescale(s1, s2, NOISE_PEAK / noise_peak, MIXTURE_PEAK, noise_offset)


def simulate_mixture_snr(
    target: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    noise_offset: int = 0,
    peak: float = MIXTURE_PEAK,
    *,
    target_id: str | None = None,
    noise_id: str | None = None,
) -> Mixture:
    """An SNR-controlled variant of the paper's recipe (not used by the paper).

    Same tiling as :func:`simulate_mixture_paper`, but the noise gain g is chosen so that
    ``10 log10(Σ s1² / Σ (g·s2)²) = snr_db`` (energies over the whole L samples, the
    target's lead-in and trailing zeros included), instead of scaling the noise to
    peak 0.5. The final step is the same: everything is rescaled so the mixture peaks at
    ``peak``. The paper's protocol fixes the peaks and lets the SNR vary from clip to
    clip; this one fixes the SNR and lets the peaks vary, which makes results comparable
    with SNR-based benchmarks.

    Parameters
    ----------
    target : numpy.ndarray, shape (L,)
        s1 at 22050 Hz.
    noise : numpy.ndarray, shape (m,)
        Noise clip at the same rate.
    snr_db : float
        Requested SNR in dB.
    noise_offset : int
        Start sample of the tiling.
    peak : float
        Peak of the returned mixture.
    target_id, noise_id : str, optional
        Names used in error messages.

    Returns
    -------
    Mixture
        ``snr_db`` equals the request (up to float32 rounding of the outputs).

    Raises
    ------
    ValueError
        As :func:`simulate_mixture_paper`, or a non-finite ``snr_db``.
    """
    if not np.isfinite(snr_db):
        raise ValueError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    s1, clip = _check_pair(target, noise, target_id, noise_id)
    s2 = tile_noise(clip, s1.shape[0], noise_offset)
    e1 = float(np.sum(s1 * s1))
    e2 = float(np.sum(s2 * s2))
    if e2 == 0.0:
        raise ValueError(_silent_noise(noise_id, s1.shape[0], "SNR undefined"))
    # the gain g that makes 10 log10(e1 / (g² e2)) equal the requested SNR
    gain = float(np.sqrt(e1 / (e2 * 10.0 ** (float(snr_db) / 10.0))))
    return mix_and_rescale(s1, s2, gain, float(peak), noise_offset)


# ---------------------------------------------------------------------------------------
# Test manifest
# ---------------------------------------------------------------------------------------
#: Columns every manifest has (``protocol``, ``target_index`` and ``noise_index`` are extra).
MANIFEST_COLUMNS = (
    "pair",
    "target_id",
    "noise_file",
    "noise_offset",
    "noise_peak_scale",
    "mixture_scale",
    "snr_db",
    "num_samples",
)


def _features(features) -> FeatureConfig:
    return section(features, FeatureConfig)


def _simulate(s1, clip, protocol: str, requested_snr, offset: int, target_id, noise_id) -> Mixture:
    if protocol == "paper":
        return simulate_mixture_paper(s1, clip, offset, target_id=target_id, noise_id=noise_id)
    if protocol == "snr":
        return simulate_mixture_snr(
            s1, clip, requested_snr, offset, target_id=target_id, noise_id=noise_id
        )
    raise ValueError(f"unknown mixing protocol {protocol!r}; expected 'paper' or 'snr'")


def make_test_manifest(
    splits,
    lj,
    esc,
    profile,
    n_pairs: int | None = None,
    *,
    snr_db: float | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Fix the test pairs (original_code.md#oc-test-pairs) and record the scales.

    ``rng = random.Random(profile.data.test_pairs_seed)`` (66666666); for each pair
    ``target_index = rng.randint(1, len(target_test) − 1)`` then
    ``noise_index = rng.randint(0, len(noise_test) − 1)``. The original drew 500 pairs
    and evaluated the first 100; drawing ``n_pairs`` gives the same first pairs.

    Parameters
    ----------
    splits : corpora.Splits
        Supplies ``target_test`` and ``noise_test`` (order matters).
    lj : corpora.LJSpeech
    esc : corpora.ESC50
    profile : Profile
        Uses ``profile.features`` (sample rate, s1 preparation) and ``profile.data``
        (``test_pairs_seed``, ``test_pairs``).
    n_pairs : int, optional
        Number of pairs; default ``cfg.data.test_pairs``.
    snr_db : float, optional
        None (default) for the paper's protocol; a number for
        :func:`simulate_mixture_snr` at that SNR (``protocol`` column ``"snr"``).
    progress : bool
        Show a tqdm bar (the audio is loaded to compute the scales).

    Returns
    -------
    pandas.DataFrame
        One row per pair with :data:`MANIFEST_COLUMNS` plus ``target_index``,
        ``noise_index`` (positions in the test lists) and ``protocol``. ``noise_offset``
        is 0, ``noise_peak_scale`` the gain applied to the tiled noise (0.5 / its peak in
        the paper protocol), ``mixture_scale`` the final ``0.999 / max|mix|``, ``snr_db``
        the SNR of the mixture in dB and ``num_samples`` L.

    Raises
    ------
    ValueError
        If ``target_test`` has fewer than 2 items or ``noise_test`` is empty.
    """
    if not (hasattr(profile, "features") and hasattr(profile, "data")):
        raise TypeError(
            f"make_test_manifest needs a Profile (features and data settings), got "
            f"{type(profile).__name__}; pass load_profile(...)"
        )
    feat, data = profile.features, profile.data
    n_pairs = data.test_pairs if n_pairs is None else int(n_pairs)
    targets, noises = list(splits.target_test), list(splits.noise_test)
    if len(targets) < 2:
        raise ValueError(
            f"the test pair recipe needs at least 2 test utterances (item 0 is never drawn), "
            f"got {len(targets)}"
        )
    if not noises:
        raise ValueError("the test pair recipe needs at least 1 test noise clip, got 0")
    rng = random.Random(data.test_pairs_seed)
    draws = []
    for _ in range(n_pairs):
        # The original draws from 1, not 0: test utterance 0 is never used. Kept as is.
        t = rng.randint(1, len(targets) - 1)
        n = rng.randint(0, len(noises) - 1)
        draws.append((t, n))
    protocol = "paper" if snr_db is None else "snr"
    iterator = enumerate(draws)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=n_pairs, desc="test pairs", unit="pair")
    clips: dict[str, np.ndarray] = {}
    rows = []
    for pair, (t, n) in iterator:
        target_id, noise_file = targets[t], noises[n]
        s1 = lj.load_target(target_id, feat)
        if noise_file not in clips:
            clips[noise_file] = esc.load(noise_file, feat.sample_rate)
        mix = _simulate(s1, clips[noise_file], protocol, snr_db, 0, target_id, noise_file)
        rows.append(
            {
                "pair": pair,
                "target_id": target_id,
                "noise_file": noise_file,
                "noise_offset": 0,
                "noise_peak_scale": mix.noise_gain,
                "mixture_scale": mix.scale,
                "snr_db": mix.snr_db,
                "num_samples": int(s1.shape[0]),
                "target_index": t,
                "noise_index": n,
                "protocol": protocol,
            }
        )
    columns = list(MANIFEST_COLUMNS) + ["target_index", "noise_index", "protocol"]
    return pd.DataFrame(rows, columns=columns)


def write_test_manifest(path: str | os.PathLike, df: pd.DataFrame) -> Path:
    """Write a manifest as CSV atomically (floats at full round-trip precision)."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"manifest lacks column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def read_test_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a manifest written by :func:`write_test_manifest`.

    Returns
    -------
    pandas.DataFrame
        ``target_id`` and ``noise_file`` as str, ``pair``/``noise_offset``/``num_samples``
        as int; ``protocol`` added as ``"paper"`` if absent.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (Chapter 1 writes it).
    ValueError
        If columns are missing or hold wrong values (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"test manifest not found: {path} (Chapter 1 writes it)")
    try:
        df = pd.read_csv(path, dtype={"target_id": str, "noise_file": str, "protocol": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable CSV test manifest ({err})") from err
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; expected {list(MANIFEST_COLUMNS)}")
    if df[list(MANIFEST_COLUMNS)].isna().any().any():
        raise ValueError(f"{path} has empty cells in the manifest columns")
    for col in ("pair", "noise_offset", "num_samples"):
        if not pd.api.types.is_integer_dtype(df[col]):
            raise ValueError(f"{path}: column {col!r} must hold integers")
    if "protocol" not in df.columns:
        df["protocol"] = "paper"
    return df


def _get(row, key):
    """``row[key]`` for a Series/dict, ``row.key`` for an ``itertuples`` namedtuple."""
    if hasattr(row, "_fields") or not isinstance(row, (Mapping, pd.Series)):
        return getattr(row, key)
    return row[key]


def regenerate_test_mixture(
    row, lj, esc, profile, *, check: bool = True, rtol: float = 1e-6
) -> Mixture:
    """Rebuild one test mixture from a manifest row, byte-identically.

    Loads ``target_id`` as s1 and ``noise_file`` at ``cfg.sample_rate``, then runs the
    row's protocol at ``noise_offset`` — a pure function of the corpus files, so two
    calls return identical arrays.

    Parameters
    ----------
    row : pandas.Series or mapping
        A manifest row.
    lj : corpora.LJSpeech
    esc : corpora.ESC50
    profile : FeatureConfig or Profile
    check : bool
        Compare the recomputed length and scales with the stored ones.
    rtol : float
        Relative tolerance of that comparison.

    Returns
    -------
    Mixture

    Raises
    ------
    ValueError
        If ``check`` and the stored values differ: the corpus files are not the ones the
        manifest was made from.
    """
    return _regenerate(row, lj, esc, _features(profile), check, rtol)[0]


def _regenerate(row, lj, esc, feat, check: bool = True, rtol: float = 1e-6):
    """:func:`regenerate_test_mixture`, also returning the unscaled s1."""
    target_id, noise_file = str(_get(row, "target_id")), str(_get(row, "noise_file"))
    try:
        protocol = str(_get(row, "protocol"))
    except (KeyError, AttributeError):
        protocol = "paper"
    s1 = lj.load_target(target_id, feat)
    clip = esc.load(noise_file, feat.sample_rate)
    requested = float(_get(row, "snr_db"))
    mix = _simulate(
        s1, clip, protocol, requested, int(_get(row, "noise_offset")), target_id, noise_file
    )
    if check:
        pair = _get(row, "pair")
        if int(_get(row, "num_samples")) != s1.shape[0]:
            raise ValueError(
                f"test pair {pair}: {target_id!r} now has {s1.shape[0]} samples, the manifest "
                f"says {int(_get(row, 'num_samples'))}; the corpus changed since it was written"
            )
        for name, value in (
            ("noise_peak_scale", mix.noise_gain),
            ("mixture_scale", mix.scale),
            ("snr_db", mix.snr_db),
        ):
            stored = float(_get(row, name))
            if not np.isclose(value, stored, rtol=rtol, atol=1e-9):
                raise ValueError(
                    f"test pair {pair} ({target_id!r} + {noise_file!r}): recomputed {name} "
                    f"{value!r} differs from the manifest's {stored!r}; the corpus files are "
                    "not the ones the manifest was made from"
                )
    return mix, s1


#: The WAVs written for each test pair: scaled target, noise and mixture, and the source.
TEST_SIGNALS = ("target", "noise", "mixture", "source")


def test_wav_name(pair: int, kind: str) -> str:
    """File name of one test signal, ``NNN_<kind>.wav`` (kind: one of TEST_SIGNALS)."""
    return f"{int(pair):03d}_{kind}.wav"


def write_test_set(
    manifest: pd.DataFrame, lj, esc, profile, out_dir, progress: bool = True
) -> pd.DataFrame:
    """Write the test mixtures of a manifest as WAV files (resumable, atomic).

    For each pair p: ``<out_dir>/<p:03d>_target.wav`` (scale·s1, the training target),
    ``_noise.wav`` (scale·gain·s2), ``_mixture.wav`` and ``_source.wav`` (the unscaled
    s1). The paper's evaluation reference ``Ind_i_source.wav`` is the **unscaled** s1
    (see original_code.md#oc-mixing), so both are written and evaluation can follow
    either. All files are 32-bit float WAV (subtype ``FLOAT``) so the exact float32
    values are kept. Pairs whose four files all exist are skipped.

    Parameters
    ----------
    manifest : pandas.DataFrame
        From :func:`make_test_manifest` or :func:`read_test_manifest`.
    lj : corpora.LJSpeech
    esc : corpora.ESC50
    profile : FeatureConfig or Profile
    out_dir : path-like
        Usually ``RunPaths.test_audio``.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    pandas.DataFrame
        Columns ``pair``, ``target``, ``noise``, ``mixture``, ``source`` (paths) and
        ``written`` (False where the pair was skipped).
    """
    feat = _features(profile)
    out_dir = Path(out_dir)
    # Files written for another manifest (e.g. before the corpus was rebuilt) are removed.
    canonical = manifest[list(MANIFEST_COLUMNS)].to_csv(index=False, float_format="%.17g")
    reset_if_stale(out_dir, hashlib.sha1(canonical.encode()).hexdigest())
    iterator = manifest.iterrows()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(manifest), desc="test set", unit="pair")
    records = []
    for _, row in iterator:
        pair = int(row["pair"])
        paths = {k: out_dir / test_wav_name(pair, k) for k in TEST_SIGNALS}
        written = not all(p.is_file() for p in paths.values())
        if written:
            mix, source = _regenerate(row, lj, esc, feat)
            signals = {
                "target": mix.target,
                "noise": mix.noise,
                "mixture": mix.mixture,
                "source": source,
            }
            for key, path in paths.items():
                audio.save_wav(path, signals[key], feat.sample_rate, subtype="FLOAT")
        records.append({"pair": pair, **{k: str(p) for k, p in paths.items()}, "written": written})
    return pd.DataFrame(
        records, columns=["pair", "target", "noise", "mixture", "source", "written"]
    )
