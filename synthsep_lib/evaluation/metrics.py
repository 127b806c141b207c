"""Objective quality measures, with the paper's Matlab protocol beside the standard one.

One function per measure: numpy signals in, a float out — the **reference first**, the
**estimate second**, both 1-D float arrays of samples at ``sample_rate`` Hz (22050 in this
book). :func:`compute_metrics` computes a set of them by name for one pair.

=============  ==========================================================  =============
name           what                                                        range / unit
=============  ==========================================================  =============
pesq_wb        PESQ wide band, ITU-T P.862.2 MOS-LQO (``pesq`` package)    1.04 … 4.64
pesq_nb        PESQ narrow band, P.862.1 MOS-LQO                           1.02 … 4.55
pesq_raw       raw P.862 score, from pesq_nb by inverting P.862.1          ≈ −1.4 … 4.5
pesq_paper     raw P.862 score with the authors' swapped arguments         ≈ −1.4 … 4.5
stoi, estoi    (extended) short-time objective intelligibility (pystoi)    0 … 1
sdr            BSS-eval SDR, 257-tap distortion filter                     dB
sdr_paper      the authors' least-squares FIR SDR (257 taps)               dB
si_sdr         scale-invariant SDR (Le Roux et al. 2019)                   dB
lsd            log-spectral distance, 1024/256 Hann power spectra          dB, ≥ 0
mcd            mel-cepstral distortion, 13 coefficients (c1…c13)           dB, ≥ 0
dnsmos_*       DNSMOS P.835 SIG/BAK/OVRL and P.808 (non-intrusive)         1 … 5
=============  ==========================================================  =============

The authors' evaluation (Matlab, see original_code.md#oc-evaluation) differs from the
usual one in three places, each available here with ``paper_protocol=True`` (or the
``*_paper`` names):
PESQ was called with the reference and the estimate **swapped** and reports the **raw**
P.862 score (not MOS-LQO); SDR is their own least-squares projection, not BSS-eval; a
failing measure was recorded as −100 and averaged with the rest.

Bad-input policy (every function here):

* **Lengths.** Signals of different lengths are both truncated to the shorter one — the
  authors compared ``source(1:length(estimate))``. :func:`compute_metrics` records the
  number of compared samples (``compared_samples``). An estimate more than 10 % shorter
  or longer than the reference emits a :class:`MetricWarning`: it usually means a wrong
  file or sample rate. ``align=True`` in :func:`compute_metrics` first removes a constant
  delay (:mod:`synthsep_lib.evaluation.alignment`).
* **NaN or inf** in a signal → ``ValueError`` naming the signal and the first bad sample.
  Non-1-D, empty or non-real input → ``ValueError``.
* **Silence.** An all-zero reference or estimate (after truncation) → :class:`SilentSignalError`
  (a ``ValueError``) for every intrusive measure; DNSMOS alone accepts it.
* **Sample rate.** The caller passes the rate the signals were made at; nothing checks it
  against the content. Rates a measure cannot use are rejected with ``ValueError``:
  PESQ-wb and DNSMOS need ≥ 16 kHz, STOI ≥ 10 kHz, PESQ-nb ≥ 8 kHz. Signals are resampled
  to 16 kHz for PESQ and DNSMOS with ``scipy.signal.resample_poly`` (polyphase, Kaiser
  window β = 5, the filter design closest to Matlab's ``resample`` the authors used;
  22050 → 16000 is up 320, down 441); STOI runs at the native rate (pystoi resamples to
  10 kHz internally, as the authors' Matlab ``stoi.m`` did).
* **Clipping.** A signal with flat tops — more than 0.1 % of its samples at exactly its
  peak, when that peak is ≥ 0.99 — emits a :class:`MetricWarning` and is scored anyway (DNSMOS scores it clipped to [−1, 1], as a
  WAV file would hold it).
* **Undefined results.** A measure that cannot be computed on a valid input (PESQ finds no
  utterance, STOI has fewer than 30 frames of speech, a singular filter system) raises
  :class:`MetricError` from the single functions; :func:`compute_metrics` reports it as
  NaN with a warning naming the measure — never a stand-in value.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import scipy.fft
import scipy.linalg
import scipy.signal

from ..audio import as_signal
from .alignment import align as _align
from .alignment import estimate_lag

__all__ = [
    "MetricError",
    "MetricWarning",
    "SilentSignalError",
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "PESQ_SAMPLE_RATE",
    "MCD_CONSTANT",
    "p862_1_inverse",
    "pesq_wb",
    "pesq_nb",
    "pesq_raw",
    "stoi",
    "estoi",
    "sdr",
    "si_sdr",
    "log_spectral_distance",
    "mel_cepstral_distortion",
    "dnsmos",
    "compute_metrics",
    "delay_sensitivity",
]

PESQ_SAMPLE_RATE = 16000
"""Rate (Hz) at which PESQ is computed; signals at other rates are resampled to it."""
DNSMOS_SAMPLE_RATE = 16000
_STOI_MIN_RATE = 10000  # pystoi works at 10 kHz; below it the 4.3 kHz top band is missing
_PESQ_NB_MIN_RATE = 8000

LENGTH_TOLERANCE = 0.10
"""Relative length difference above which a length mismatch is warned about."""
CLIP_FRACTION = 0.001
"""Fraction of samples at ``|x| ≥ 1`` above which a signal is warned about as clipped."""

FRAME_LENGTH = 1024
HOP_LENGTH = 256
SPECTRAL_FLOOR = 1e-10
"""Power floor for LSD and MCD, relative to the reference's largest bin (−100 dB)."""
N_MELS = 80
N_CEPSTRA = 13
MCD_CONSTANT = 10.0 * math.sqrt(2.0) / math.log(10.0)
"""10·√2 / ln 10 ≈ 6.1419: turns a natural-log cepstral distance into the usual MCD dB."""

# ITU-T P.862.1 narrow-band mapping, as in the ITU C code shipped with the ``pesq`` package
# (pesqmain.h): MOS-LQO = 0.999 + 4 / (1 + exp(−a·x + b)). (P.862.2, wide band, uses
# a = 1.3669, b = 3.8224 and is not inverted here: the raw score is a narrow-band quantity.)
_P862_1 = (1.4945, 4.6607)
_MOS_LOW, _MOS_SPAN = 0.999, 4.0
# P.862 raw score = 4.5 − 0.1·d − 0.0309·a, with per-frame disturbances clamped at 45
# in the ITU code (pesqmod.c), so the raw score lies in [4.5 − 4.5 − 1.3905, 4.5].
RAW_PESQ_MAX = 4.5
RAW_PESQ_MIN = 4.5 - 0.1 * 45 - 0.0309 * 45


class MetricError(ValueError):
    """A measure is undefined for this (valid) input, e.g. PESQ finds no utterance.

    :func:`compute_metrics` turns it into NaN plus a :class:`MetricWarning`.
    """


class SilentSignalError(ValueError):
    """The reference or the estimate is all zeros, so no intrusive measure is defined."""


class MetricWarning(UserWarning):
    """Length mismatch, clipping, or a measure reported as NaN."""


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{module} is needed for this measure; install it with `pip install {package}` "
            "(it is one of synthsep-lib's evaluation dependencies)"
        ) from err


def _signal(x, name: str) -> np.ndarray:
    return as_signal(x, name).astype(np.float64, copy=False)


def _rate(sample_rate, minimum: int, what: str) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise ValueError(f"sample_rate must be a positive integer in Hz; got {sample_rate!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer in Hz; got {sample_rate}")
    if sample_rate < minimum:
        raise ValueError(
            f"{what} needs signals sampled at ≥ {minimum} Hz; got sample_rate={sample_rate}"
        )
    return int(sample_rate)


def _not_silent(x: np.ndarray, name: str) -> None:
    if not np.any(x):
        raise SilentSignalError(
            f"silent {name}: all {x.size} compared samples are zero; intrusive measures "
            "need a non-zero reference and estimate"
        )


def _warn_clipping(x: np.ndarray, name: str) -> None:
    # Clipping shows as flat tops: many samples at exactly the full-scale peak (|x| ≥ 0.99,
    # e.g. 32767/32768 in a 16-bit file). A float signal that merely exceeds 1 — such as
    # the authors' ISTFT with its ≈1.5 overlap-add gain — is not clipped.
    magnitude = np.abs(x)
    peak = float(magnitude.max(initial=0.0))
    if peak < 0.99:
        return
    n_clip = int(np.count_nonzero(magnitude >= peak * (1 - 1e-6)))
    if n_clip > max(2, CLIP_FRACTION * x.size):
        warnings.warn(
            f"{name} looks clipped: {n_clip} of {x.size} samples sit at its peak "
            f"{peak:.4g}; scoring it anyway",
            MetricWarning,
            stacklevel=3,
        )


def _pair(reference, estimate, lag: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair and return the compared parts (aligned by ``lag`` if given)."""
    ref = _signal(reference, "reference")
    est = _signal(estimate, "estimate")
    if abs(est.size - ref.size) > LENGTH_TOLERANCE * ref.size:
        warnings.warn(
            f"estimate has {est.size} samples and reference {ref.size} "
            f"({100 * (est.size - ref.size) / ref.size:+.1f} %); both are truncated to the "
            "shorter — check the file and the sample rate",
            MetricWarning,
            stacklevel=3,
        )
    if lag is None:
        n = min(ref.size, est.size)
        ref, est = ref[:n], est[:n]
    else:
        ref, est = _align(ref, est, lag)
    _not_silent(ref, "reference")
    _not_silent(est, "estimate")
    _warn_clipping(ref, "reference")
    _warn_clipping(est, "estimate")
    return ref, est


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return x
    g = math.gcd(rate, target)
    return scipy.signal.resample_poly(x, target // g, rate // g)


# --------------------------------------------------------------------------------------
# PESQ
# --------------------------------------------------------------------------------------


def p862_1_inverse(mos_lqo):
    """Raw P.862 score from a narrow-band MOS-LQO: the inverse of the ITU-T P.862.1 mapping.

    ``pesq`` reports ``MOS-LQO = 0.999 + 4 / (1 + exp(−1.4945·x + 4.6607))`` of the raw
    score x (the constants of the ITU reference C code, ``pesqmain.h``, evaluated in
    float32); inverted, ``x = (4.6607 − ln(4 / (y − 0.999) − 1)) / 1.4945``. The mapping saturates at 0.999
    and 4.999, where it cannot be inverted; the result is therefore clipped to the range
    the ITU code can produce, [4.5 − 0.1·45 − 0.0309·45, 4.5] = [−1.3905, 4.5] (per-frame
    disturbances are capped at 45). PESQ's own output never comes near the ends
    (MOS-LQO ∈ [1.0037, 4.5485]); the upper clip only absorbs float32 rounding of the C
    code (inversion error ≲ 1e-5).

    Parameters
    ----------
    mos_lqo : float or array_like
        P.862.1 MOS-LQO value(s), as returned by ``pesq.pesq(..., mode='nb')``.

    Returns
    -------
    float or numpy.ndarray
        Raw P.862 score(s) in [−1.3905, 4.5].
    """
    a, b = _P862_1
    y = np.asarray(mos_lqo, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"mos_lqo must be finite; got {mos_lqo!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (b - np.log(_MOS_SPAN / (y - _MOS_LOW) - 1.0)) / a
    x = np.where(y <= _MOS_LOW, RAW_PESQ_MIN, np.where(y >= _MOS_LOW + _MOS_SPAN, RAW_PESQ_MAX, x))
    out = np.clip(x, RAW_PESQ_MIN, RAW_PESQ_MAX)
    return float(out) if np.ndim(out) == 0 else out


def _pesq_call(ref: np.ndarray, deg: np.ndarray, rate: int, mode: str) -> float:
    pesq_pkg = _import("pesq", "pesq")
    try:
        return float(pesq_pkg.pesq(rate, ref, deg, mode))
    except pesq_pkg.PesqError as err:
        kind = type(err).__name__
        raise MetricError(f"PESQ ({mode}) failed: {kind}: {err}") from err


def _pesq_rate(sample_rate: int) -> int:
    return PESQ_SAMPLE_RATE if sample_rate >= PESQ_SAMPLE_RATE else 8000


def pesq_wb(reference, estimate, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO) with the ITU C code of the ``pesq`` package.

    Both signals are resampled to 16 kHz with ``scipy.signal.resample_poly`` (see the
    module docstring). The ``pesq`` package scales both by their joint peak; P.862 itself
    aligns levels and delays.

    Parameters
    ----------
    reference : array_like, shape (n,)
        Clean reference, float samples at ``sample_rate``.
    estimate : array_like, shape (m,)
        Processed signal, same rate; both truncated to ``min(n, m)``.
    sample_rate : int
        Rate of both signals in Hz, ≥ 16000.

    Returns
    -------
    float
        MOS-LQO in [1.04, 4.64]; identical signals give 4.644.

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy) or a rate below 16 kHz.
    MetricError
        If PESQ fails, e.g. no utterance detected or a signal shorter than 0.25 s.

    References
    ----------
    ITU-T Rec. P.862 (2001) and P.862.2 (2007).
    """
    rate = _rate(sample_rate, PESQ_SAMPLE_RATE, "pesq_wb")
    ref, est = _pair(reference, estimate)
    return _pesq_call(_resample(ref, rate, 16000), _resample(est, rate, 16000), 16000, "wb")


def pesq_nb(reference, estimate, sample_rate: int) -> float:
    """Narrow-band PESQ (ITU-T P.862.1 MOS-LQO) with the ``pesq`` package.

    Computed at 16 kHz (P.862 narrow band accepts 16 kHz input; signals are resampled
    as in :func:`pesq_wb`), or at 8 kHz for signals sampled below 16 kHz.

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, processed signal second, at ``sample_rate``.
    sample_rate : int
        Rate of both signals in Hz, ≥ 8000.

    Returns
    -------
    float
        MOS-LQO in [1.02, 4.55]; identical signals give 4.549.

    Raises
    ------
    ValueError, SilentSignalError, MetricError
        As :func:`pesq_wb`.

    References
    ----------
    ITU-T Rec. P.862 (2001) and P.862.1 (2003).
    """
    rate = _rate(sample_rate, _PESQ_NB_MIN_RATE, "pesq_nb")
    ref, est = _pair(reference, estimate)
    target = _pesq_rate(rate)
    return _pesq_call(_resample(ref, rate, target), _resample(est, rate, target), target, "nb")


def pesq_raw(reference, estimate, sample_rate: int, paper_protocol: bool = False) -> float:
    """Raw P.862 score (4.5 − 0.1·d − 0.0309·a), the number the paper's Table I reports.

    The ``pesq`` package returns only MOS-LQO; the raw score is recovered from the
    narrow-band MOS-LQO by inverting the P.862.1 mapping (:func:`p862_1_inverse`, exact up
    to the C code's float32 rounding, ≲ 1e-5).

    With ``paper_protocol=True`` the authors' call is reproduced: their Matlab script ran
    ``pesq(estimate, source, 16000)`` with the Hu & Loizou signature ``pesq(ref, deg, fs)``,
    so the **estimate is the reference** and the source the degraded signal
    (see original_code.md#oc-evaluation). Both signals are resampled to 16 kHz with a
    polyphase filter as their Matlab ``resample`` did. Their Hu & Loizou (2006) Matlab implementation of
    P.862 is a port, not the ITU C code used here, so paper-protocol numbers are
    comparable with Table I only approximately (the size of the difference is not known:
    the authors' per-file outputs and the Matlab code were not run side by side here).

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, processed signal second, at ``sample_rate``.
    sample_rate : int
        Rate of both signals in Hz, ≥ 8000 (16 kHz processing from 16 kHz up).
    paper_protocol : bool
        Swap the two signals inside PESQ as the authors did.

    Returns
    -------
    float
        Raw P.862 score in [−1.39, 4.5] (usually −0.5 … 4.5); identical signals give 4.5.

    Raises
    ------
    ValueError, SilentSignalError, MetricError
        As :func:`pesq_wb`.

    References
    ----------
    ITU-T Rec. P.862 and P.862.1; Y. Hu and P. Loizou, "Evaluation of objective measures
    for speech enhancement," Proc. Interspeech 2006 (the Matlab code the authors used).
    """
    rate = _rate(sample_rate, _PESQ_NB_MIN_RATE, "pesq_raw")
    ref, est = _pair(reference, estimate)
    target = _pesq_rate(rate)  # 16 kHz (8 kHz below 16 kHz)
    ref, est = _resample(ref, rate, target), _resample(est, rate, target)
    if paper_protocol:
        # the authors called pesq(estimate, source, 16000): the estimate as the reference
        ref, est = est, ref
    mos_lqo = _pesq_call(ref, est, target, "nb")
    return p862_1_inverse(mos_lqo)  # back to the raw P.862 score


# --------------------------------------------------------------------------------------
# STOI
# --------------------------------------------------------------------------------------


def _stoi_impl(ref: np.ndarray, est: np.ndarray, rate: int, extended: bool) -> float:
    pystoi = _import("pystoi", "pystoi")
    name = "ESTOI" if extended else "STOI"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi.stoi(ref, est, rate, extended=extended))
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            # pystoi returns 1e-5 here; that is a stand-in, not a score.
            raise MetricError(
                f"{name} undefined: fewer than 30 frames (384 ms) of speech remain after "
                "removing silent frames"
            )
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not math.isfinite(value):
        raise MetricError(f"{name} returned {value}")
    return value


def stoi(reference, estimate, sample_rate: int) -> float:
    """Short-time objective intelligibility (Taal et al. 2011) with ``pystoi``.

    Computed at the native rate; pystoi resamples to 10 kHz, removes frames more than
    40 dB below the loudest one, and correlates 384-ms segments of 15 one-third-octave
    bands (clipping the estimate at β = −15 dB SDR) — the same algorithm as the authors'
    Matlab ``stoi.m`` (see original_code.md#oc-evaluation).

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, processed signal second, at ``sample_rate``.
    sample_rate : int
        Rate of both signals in Hz, ≥ 10000.

    Returns
    -------
    float
        STOI in [0, 1] in practice (an average of correlations, so slightly negative
        values are possible); identical signals give 1.

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy).
    MetricError
        If fewer than 30 non-silent frames remain (pystoi would return 1e-5).

    References
    ----------
    C. H. Taal, R. C. Hendriks, R. Heusdens, J. Jensen, "An algorithm for intelligibility
    prediction of time-frequency weighted noisy speech," IEEE TASLP 19(7), 2011.
    """
    rate = _rate(sample_rate, _STOI_MIN_RATE, "stoi")
    ref, est = _pair(reference, estimate)
    return _stoi_impl(ref, est, rate, extended=False)


def estoi(reference, estimate, sample_rate: int) -> float:
    """Extended STOI (Jensen & Taal 2016) with ``pystoi``; better for modulated noise.

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, processed signal second, at ``sample_rate``.
    sample_rate : int
        Rate of both signals in Hz, ≥ 10000.

    Returns
    -------
    float
        ESTOI, nominally in [0, 1] (can be slightly negative); identical signals give 1.

    Raises
    ------
    ValueError, SilentSignalError, MetricError
        As :func:`stoi`.

    References
    ----------
    J. Jensen and C. H. Taal, "An algorithm for predicting the intelligibility of speech
    masked by modulated noise maskers," IEEE/ACM TASLP 24(11), 2016.
    """
    rate = _rate(sample_rate, _STOI_MIN_RATE, "estoi")
    ref, est = _pair(reference, estimate)
    return _stoi_impl(ref, est, rate, extended=True)


# --------------------------------------------------------------------------------------
# SDR family
# --------------------------------------------------------------------------------------


def _solve_gram(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the normal equations; Cholesky, or least squares if the system is singular."""
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), rhs)
    except np.linalg.LinAlgError:
        # Any least-squares solution gives the same (unique) projection.
        return scipy.linalg.lstsq(gram, rhs)[0]


def _correlations(ref: np.ndarray, est: np.ndarray, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """acf[k] = Σ ref[n] ref[n+k], xc[k] = Σ ref[n] est[n+k], k = 0 … taps − 1 (no wrap)."""
    nfft = scipy.fft.next_fast_len(ref.size + taps)
    spec_ref = scipy.fft.rfft(ref, nfft)
    spec_est = scipy.fft.rfft(est, nfft)
    acf = scipy.fft.irfft(spec_ref.real**2 + spec_ref.imag**2, nfft)[:taps]
    xc = scipy.fft.irfft(np.conj(spec_ref) * spec_est, nfft)[:taps]
    return acf, xc


def _ratio_db(signal_energy: float, distortion_energy: float) -> float:
    if distortion_energy <= 0.0:
        return math.inf
    if signal_energy <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / distortion_energy)


def _bss_sdr(ref: np.ndarray, est: np.ndarray, taps: int) -> float:
    # BSS-eval (Vincent et al. 2006) for one source: project the estimate onto the span
    # of the reference delayed by 0 … taps−1 samples, in the zero-padded domain of length
    # n + taps − 1 where the Gram matrix is exactly Toeplitz (as mir_eval's _project).
    acf, xc = _correlations(ref, est, taps)
    h = _solve_gram(scipy.linalg.toeplitz(acf), xc)
    projection = scipy.signal.fftconvolve(ref, h)
    residual = np.concatenate([est, np.zeros(taps - 1)]) - projection
    return _ratio_db(float(projection @ projection), float(residual @ residual))


def _paper_sdr(ref: np.ndarray, est: np.ndarray, taps: int) -> float:
    """The authors' SDR (``eval_sdr.m``) of a validated pair; see :func:`sdr`."""
    # h: the FIR filter with `taps` taps that maps the source closest to the estimate
    # (least squares over the n compared samples, wiener_filter2.m)
    h = _truncated_least_squares_filter(ref, est, taps)
    s_hat = scipy.signal.lfilter(h, [1.0], ref)  # ŝ = filter(h, 1, s): the explained part
    return _ratio_db(float(np.var(s_hat)), float(np.var(est - s_hat)))


def _truncated_least_squares_filter(ref: np.ndarray, est: np.ndarray, taps: int) -> np.ndarray:
    """h = (XᵀX)⁻¹ Xᵀ est, X = the n × taps convolution matrix of ``ref`` cut to n rows.

    XᵀX = Toeplitz(acf) − ZᵀZ, where Z holds the rows n … n + taps − 2 that the cut
    drops (built from the last taps − 1 samples), so X is never formed.
    """
    n = ref.size
    if n < taps:
        raise MetricError(f"sdr_paper needs at least {taps} samples (the filter taps); got {n}")
    acf, xc = _correlations(ref, est, taps)
    rows = np.arange(taps - 1)[:, None]
    cols = np.arange(taps)[None, :]
    idx = n + rows - cols
    dropped = np.where(cols > rows, ref[np.clip(idx, 0, n - 1)], 0.0)
    gram = scipy.linalg.toeplitz(acf) - dropped.T @ dropped
    return _solve_gram(gram, xc)


def sdr(reference, estimate, filter_length: int = 257, paper_protocol: bool = False) -> float:
    """Signal-to-distortion ratio: BSS-eval, or the authors' variant.

    Default (BSS-eval v3, single source, as ``mir_eval.separation``): the estimate is
    projected on the span of the reference delayed by 0 … ``filter_length`` − 1 samples
    (in the zero-padded domain of length n + L − 1);
    SDR = 10 log10(‖projection‖² / ‖estimate − projection‖²). The filter length defaults
    to the paper's 257 taps instead of mir_eval's 512. Implemented here (FFT correlations,
    Toeplitz normal equations, Cholesky) because ``mir_eval.separation.bss_eval_sources``
    is deprecated and fixes 512 taps, and ``fast_bss_eval`` imports PyTorch when it is
    installed; the tests check both agree to < 1e-3 dB.

    ``paper_protocol=True`` (original_code.md#oc-evaluation, ``eval_sdr.m``): the
    least-squares FIR filter h with ``filter_length`` taps (the authors' q = 256) such that ``filter(h, 1, s) ≈
    est`` on the n compared samples (the convolution is truncated, so the Gram matrix is
    Toeplitz minus an end correction, built exactly here); ŝ = filter(h, 1, s);
    SDR = 10 log10(var(ŝ) / var(est − ŝ)). The two agree closely for long signals.

    Parameters
    ----------
    reference : array_like, shape (n,)
        Clean reference.
    estimate : array_like, shape (m,)
        Estimate; both truncated to ``min(n, m)``. The sample rate is irrelevant.
    filter_length : int
        Distortion filter length L in samples (≥ 1); 257 = the paper's.
    paper_protocol : bool
        Use the authors' least-squares SDR instead of BSS-eval.

    Returns
    -------
    float
        SDR in dB; +inf if the estimate is exactly a filtered reference (a finite value
        above ~250 dB means equal up to rounding).

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy) or a bad ``filter_length``.
    MetricError
        With ``paper_protocol`` and fewer samples than taps.

    References
    ----------
    E. Vincent, R. Gribonval, C. Févotte, "Performance measurement in blind audio source
    separation," IEEE TASLP 14(4), 2006.
    """
    taps = _filter_taps(filter_length)
    ref, est = _pair(reference, estimate)
    return (_paper_sdr if paper_protocol else _bss_sdr)(ref, est, taps)


def _filter_taps(filter_length) -> int:
    """``filter_length`` as an int; raise unless it is a positive integer."""
    if (
        isinstance(filter_length, bool)
        or not isinstance(filter_length, (int, np.integer))
        or filter_length < 1
    ):
        raise ValueError(f"filter_length must be a positive integer (taps); got {filter_length!r}")
    return int(filter_length)


def _si_sdr_impl(ref: np.ndarray, est: np.ndarray) -> float:
    ref = ref - ref.mean()
    est = est - est.mean()
    energy = float(ref @ ref)
    if energy == 0.0:
        raise MetricError("SI-SDR undefined: the reference is constant (zero after mean removal)")
    target = (float(est @ ref) / energy) * ref
    noise = est - target
    return _ratio_db(float(target @ target), float(noise @ noise))


def si_sdr(reference, estimate) -> float:
    """Scale-invariant SDR (Le Roux, Wisdom, Erdogan, Hershey 2019).

    Both signals are made zero-mean; with α = ⟨ŝ, s⟩ / ‖s‖², SI-SDR =
    10 log10(‖α s‖² / ‖ŝ − α s‖²). Insensitive to the estimate's gain, sensitive to any
    filtering or delay.

    Parameters
    ----------
    reference : array_like, shape (n,)
        Clean reference s.
    estimate : array_like, shape (m,)
        Estimate ŝ; both truncated to ``min(n, m)``.

    Returns
    -------
    float
        SI-SDR in dB; +inf when the residual is exactly zero, −inf when the estimate is
        orthogonal to the reference. Identical signals may give a finite value above
        ~250 dB (rounding).

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy).
    MetricError
        If the reference is constant.

    References
    ----------
    J. Le Roux, S. Wisdom, H. Erdogan, J. R. Hershey, "SDR – half-baked or well done?",
    Proc. ICASSP 2019.
    """
    ref, est = _pair(reference, estimate)
    return _si_sdr_impl(ref, est)


# --------------------------------------------------------------------------------------
# Spectral distances
# --------------------------------------------------------------------------------------


def _power_spectrogram(x: np.ndarray) -> np.ndarray:
    librosa = _import("librosa", "librosa")
    spec = librosa.stft(
        x,
        n_fft=FRAME_LENGTH,
        hop_length=HOP_LENGTH,
        window="hann",
        center=True,
        pad_mode="constant",
    )
    return spec.real**2 + spec.imag**2  # (1 + FRAME_LENGTH // 2, frames)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int) -> np.ndarray:
    librosa = _import("librosa", "librosa")
    return librosa.filters.mel(
        sr=sample_rate, n_fft=FRAME_LENGTH, n_mels=N_MELS, fmin=0.0, fmax=sample_rate / 2
    )


def _lsd_impl(p_ref: np.ndarray, p_est: np.ndarray) -> float:
    floor = SPECTRAL_FLOOR * float(p_ref.max())
    diff = 10.0 * (np.log10(np.maximum(p_ref, floor)) - np.log10(np.maximum(p_est, floor)))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def _mcd_impl(p_ref: np.ndarray, p_est: np.ndarray, sample_rate: int) -> float:
    basis = _mel_basis(sample_rate)
    m_ref, m_est = basis @ p_ref, basis @ p_est
    floor = SPECTRAL_FLOOR * float(m_ref.max())
    cepstra = []
    for mel in (m_ref, m_est):
        log_amplitude = 0.5 * np.log(np.maximum(mel, floor))
        c = scipy.fft.dct(log_amplitude, type=2, axis=0, norm=None) / (2 * N_MELS)
        cepstra.append(c[1 : N_CEPSTRA + 1])
    delta = cepstra[0] - cepstra[1]
    return float(np.mean(MCD_CONSTANT * np.sqrt(np.sum(delta**2, axis=0))))


def log_spectral_distance(reference, estimate, sample_rate: int) -> float:
    """Log-spectral distance between the power spectrograms, in dB.

    LSD = mean over frames t of sqrt(mean over bins f of (10 log10 P(f, t) −
    10 log10 P̂(f, t))²), with P = |STFT|² (1024-sample periodic Hann window, hop 256,
    centred frames with zero padding, all 513 bins and all frames), both spectra floored
    at 1e-10 × the reference's largest bin (−100 dB). Frames are 46.4 ms at 22.05 kHz.
    No silence removal and no time warping: the signals share a time axis.

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, estimate second; both truncated to ``min(n, m)``.
    sample_rate : int
        Rate of both signals in Hz (checked, not used: the frames are in samples).

    Returns
    -------
    float
        LSD in dB, ≥ 0; 0 for identical signals.

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy).

    References
    ----------
    A. Gray and J. Markel, "Distance measures for speech processing," IEEE TASSP 24(5),
    1976.
    """
    _rate(sample_rate, 1, "lsd")
    ref, est = _pair(reference, estimate)
    return _lsd_impl(_power_spectrogram(ref), _power_spectrogram(est))


def mel_cepstral_distortion(reference, estimate, sample_rate: int) -> float:
    """Mel-cepstral distortion (MCD) in dB, from 80-band mel power spectra.

    Per frame (the STFT of :func:`log_spectral_distance`): mel power M = B·P with
    librosa's 80-band Slaney filter bank (0 Hz … sample_rate/2), floored at 1e-10 × the
    reference's largest mel value; log amplitude ℓ_k = ½ ln M_k; cepstrum c_m =
    DCT-II(ℓ)_m / (2K) with the unnormalised DCT (so that ℓ_k ≈ c_0 + 2 Σ_m c_m
    cos(π m (k + ½) / K), the real cepstrum of a symmetric log spectrum, K = 80); then

        MCD = (10 √2 / ln 10) · sqrt(Σ_{m=1}^{13} (c_m − ĉ_m)²),

    averaged over all frames. The constant 10√2/ln 10 (Kubichek 1993) converts the
    natural-log cepstral distance to dB: by Parseval, sqrt(2 Σ Δc_m²) is the RMS
    difference of the (liftered) log spectra, and 10/ln 10 turns ln into 10·log10.
    c_0 (overall level) is excluded. No dynamic time warping: the signals share a time
    axis. Values are not directly comparable with SPTK mel-cepstra (all-pass warping,
    α = 0.455) reported by TTS papers.

    Parameters
    ----------
    reference, estimate : array_like, shape (n,), (m,)
        Clean reference first, estimate second; both truncated to ``min(n, m)``.
    sample_rate : int
        Rate of both signals in Hz (sets the mel filter bank).

    Returns
    -------
    float
        MCD in dB, ≥ 0; 0 for identical signals.

    Raises
    ------
    ValueError, SilentSignalError
        Bad input (see the module's bad-input policy).

    References
    ----------
    R. Kubichek, "Mel-cepstral distance measure for objective speech quality
    assessment," Proc. IEEE PACRIM 1993.
    """
    rate = _rate(sample_rate, 1, "mcd")
    ref, est = _pair(reference, estimate)
    return _mcd_impl(_power_spectrogram(ref), _power_spectrogram(est), rate)


# --------------------------------------------------------------------------------------
# DNSMOS
# --------------------------------------------------------------------------------------


def _dnsmos_sessions(speechmos_dnsmos) -> None:
    """Load speechmos' two DNSMOS models into its module global, as its first call would,
    but with ONNX Runtime limited to ``OMP_NUM_THREADS`` threads when that is set.

    joblib's workers set it (cores ÷ workers); ONNX Runtime ignores it and would run
    each worker's sessions on every core, so that two workers scoring in parallel were
    no faster than one. The models, and so the scores, are speechmos' own.
    """
    if speechmos_dnsmos.dnsmos is not None:
        return
    ort = _import("onnxruntime", "onnxruntime")
    folder = os.path.join(
        os.path.dirname(os.path.abspath(speechmos_dnsmos.__file__)), "dnsmos_models"
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS") or 0)  # 0: all cores
    model = speechmos_dnsmos.DNSMOS.__new__(speechmos_dnsmos.DNSMOS)
    model.primary_model_path = os.path.join(folder, "sig_bak_ovr.onnx")  # speechmos' own path
    model.onnx_sess = ort.InferenceSession(model.primary_model_path, options)
    model.p808_onnx_sess = ort.InferenceSession(os.path.join(folder, "model_v8.onnx"), options)
    speechmos_dnsmos.dnsmos = model


def _dnsmos_impl(est16: np.ndarray) -> dict[str, float]:
    speechmos_dnsmos = _import("speechmos.dnsmos", "speechmos onnxruntime")
    clipped = np.clip(est16, -1.0, 1.0)
    # the two ONNX sessions are loaded once per process (~3 s) and kept by speechmos
    _dnsmos_sessions(speechmos_dnsmos)
    out = speechmos_dnsmos.run(clipped, DNSMOS_SAMPLE_RATE)
    scores = {
        "SIG": float(out["sig_mos"]),
        "BAK": float(out["bak_mos"]),
        "OVRL": float(out["ovrl_mos"]),
        "P808": float(out["p808_mos"]),
    }
    if not all(math.isfinite(v) for v in scores.values()):
        raise MetricError(f"DNSMOS returned non-finite scores {scores}")
    return scores


def dnsmos(estimate, sample_rate: int) -> dict[str, float]:
    """DNSMOS (Reddy et al. 2021/2022): non-intrusive MOS predicted by a neural network.

    Uses the ONNX models shipped with ``speechmos`` (DNSMOS P.835 ``sig_bak_ovr.onnx``
    and P.808 ``model_v8.onnx``). The signal is resampled to 16 kHz
    (``scipy.signal.resample_poly``) and clipped to [−1, 1]; signals shorter than 9.01 s
    are repeated to that length, longer ones are scored in 9.01-s windows with a 1-s hop
    and averaged (speechmos' behaviour, as Microsoft's ``dnsmos_local.py``). The first
    call in a process loads the models (~3 s); later calls reuse them.

    Parameters
    ----------
    estimate : array_like, shape (n,)
        Signal to rate; no reference is needed.
    sample_rate : int
        Rate in Hz, ≥ 16000.

    Returns
    -------
    dict
        ``{"SIG", "BAK", "OVRL", "P808"}`` → float MOS, nominally in [1, 5]: speech
        quality, background noise, overall (ITU-T P.835) and P.808 overall quality.

    Raises
    ------
    ValueError
        Bad input (not 1-D, empty, NaN/inf) or a rate below 16 kHz.
    MetricError
        If the models return non-finite scores.

    References
    ----------
    C. K. A. Reddy, V. Gopal, R. Cutler, "DNSMOS P.835: a non-intrusive perceptual
    objective speech quality metric to evaluate noise suppressors," Proc. ICASSP 2022.
    """
    rate = _rate(sample_rate, DNSMOS_SAMPLE_RATE, "dnsmos")
    est = _signal(estimate, "estimate")
    _warn_clipping(est, "estimate")
    return _dnsmos_impl(_resample(est, rate, DNSMOS_SAMPLE_RATE))


# --------------------------------------------------------------------------------------
# All together
# --------------------------------------------------------------------------------------

ALL_METRICS: tuple[str, ...] = (
    "pesq_wb",
    "pesq_nb",
    "pesq_raw",
    "pesq_paper",
    "stoi",
    "estoi",
    "sdr",
    "sdr_paper",
    "si_sdr",
    "lsd",
    "mcd",
    "dnsmos_sig",
    "dnsmos_bak",
    "dnsmos_ovrl",
    "dnsmos_p808",
)
"""Every name :func:`compute_metrics` knows."""

DEFAULT_METRICS: tuple[str, ...] = ALL_METRICS
"""The set :func:`compute_metrics` computes unless told otherwise (all of them)."""

_MIN_RATE = {
    "pesq_wb": PESQ_SAMPLE_RATE,
    "pesq_nb": _PESQ_NB_MIN_RATE,
    "pesq_raw": _PESQ_NB_MIN_RATE,
    "pesq_paper": _PESQ_NB_MIN_RATE,
    "stoi": _STOI_MIN_RATE,
    "estoi": _STOI_MIN_RATE,
    "dnsmos_sig": DNSMOS_SAMPLE_RATE,
    "dnsmos_bak": DNSMOS_SAMPLE_RATE,
    "dnsmos_ovrl": DNSMOS_SAMPLE_RATE,
    "dnsmos_p808": DNSMOS_SAMPLE_RATE,
}


def _metric_names(metrics) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not isinstance(metrics, Iterable):
        raise ValueError(f"metrics must be a sequence of metric names; got {metrics!r}")
    names = tuple(metrics)
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown:
        raise ValueError(f"unknown metric name(s) {unknown}; expected names from {ALL_METRICS}")
    return tuple(dict.fromkeys(names))


class _Shared:
    """Lazily computed intermediate results, each at most once (errors included)."""

    def __init__(self, makers: dict[str, Callable[[], object]]):
        self._makers = makers
        self._values: dict[str, object] = {}

    def __call__(self, key: str):
        if key not in self._values:
            try:
                self._values[key] = self._makers[key]()
            except MetricError as err:
                self._values[key] = err
        value = self._values[key]
        if isinstance(value, MetricError):
            raise value
        return value


def compute_metrics(
    reference,
    estimate,
    sample_rate: int,
    *,
    metrics: Iterable[str] = DEFAULT_METRICS,
    align: bool = False,
    max_lag_seconds: float = 0.05,
) -> dict[str, float]:
    """Compute a set of measures for one (reference, estimate) pair by name.

    Shared work is done once: resampling to 16 kHz, the narrow-band PESQ call behind
    ``pesq_nb`` and ``pesq_raw``, the spectrograms behind ``lsd`` and ``mcd``, and the
    DNSMOS call (on the compared part of the estimate).

    A measure that is undefined for this pair (:class:`MetricError`, e.g. PESQ's "no
    utterances detected") is reported as NaN with a :class:`MetricWarning` naming it.
    The authors recorded such failures as −100 and averaged them with the rest, which
    drags a mean down by ~1 PESQ point per failed file in 100 — average with
    ``numpy.nanmean`` and report the NaN count instead.

    Parameters
    ----------
    reference : array_like, shape (n,)
        Clean reference (the paper's source, incl. its 768 leading zeros).
    estimate : array_like, shape (m,)
        Estimate at the same rate.
    sample_rate : int
        Rate of both signals in Hz (22050 in this book). Rates a requested measure cannot
        use raise ``ValueError`` before anything is computed.
    metrics : sequence of str
        Names from :data:`ALL_METRICS`: ``pesq_wb``, ``pesq_nb``, ``pesq_raw``,
        ``pesq_paper`` (raw score, swapped arguments), ``stoi``, ``estoi``, ``sdr``
        (BSS-eval, 257 taps), ``sdr_paper``, ``si_sdr``, ``lsd``, ``mcd``, ``dnsmos_sig``,
        ``dnsmos_bak``, ``dnsmos_ovrl``, ``dnsmos_p808``. Default: all.
    align : bool
        Estimate the estimate's delay by cross-correlation within ±``max_lag_seconds``
        and remove it before scoring (the authors did not align). Default False: both
        signals are compared from their first sample.
    max_lag_seconds : float
        Search range of the alignment in seconds (≥ 0).

    Returns
    -------
    dict of str to float
        One entry per requested measure (see the module table for ranges and units),
        then ``lag_samples`` (int: delay removed, positive = estimate was late; 0 when
        ``align`` is False) and ``compared_samples`` (int: samples each measure saw).

    Raises
    ------
    ValueError
        Bad input (see the module's bad-input policy), unknown metric names, a rate a
        requested measure cannot use, or a negative ``max_lag_seconds``.
    SilentSignalError
        If the compared reference or estimate is all zeros.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = 0.1 * rng.standard_normal(22050)
    >>> scores = compute_metrics(s, s + 0.01 * rng.standard_normal(22050), 22050,
    ...                          metrics=["si_sdr"])
    >>> round(scores["si_sdr"]), scores["compared_samples"]
    (20, 22050)
    """
    names = _metric_names(metrics)
    rate = _rate(sample_rate, 1, "compute_metrics")
    for name in names:
        _rate(rate, _MIN_RATE.get(name, 1), name)
    if not isinstance(max_lag_seconds, (int, float, np.integer, np.floating)) or not (
        max_lag_seconds >= 0
    ):
        raise ValueError(f"max_lag_seconds must be a number ≥ 0; got {max_lag_seconds!r}")

    lag = 0
    if align:
        ref_full = _signal(reference, "reference")
        est_full = _signal(estimate, "estimate")
        _not_silent(ref_full, "reference")
        _not_silent(est_full, "estimate")
        lag = estimate_lag(ref_full, est_full, int(round(max_lag_seconds * rate))).lag
        ref, est = _pair(ref_full, est_full, lag)
    else:
        ref, est = _pair(reference, estimate)

    pesq_rate = _pesq_rate(rate)
    shared = _Shared(
        {
            "ref_pesq": lambda: _resample(ref, rate, pesq_rate),
            "est_pesq": lambda: _resample(est, rate, pesq_rate),
            "nb": lambda: _pesq_call(shared("ref_pesq"), shared("est_pesq"), pesq_rate, "nb"),
            "spectra": lambda: (_power_spectrogram(ref), _power_spectrogram(est)),
            "dnsmos": lambda: _dnsmos_impl(_resample(est, rate, DNSMOS_SAMPLE_RATE)),
        }
    )
    compute: dict[str, Callable[[], float]] = {
        "pesq_wb": lambda: _pesq_call(shared("ref_pesq"), shared("est_pesq"), 16000, "wb"),
        "pesq_nb": lambda: shared("nb"),
        "pesq_raw": lambda: p862_1_inverse(shared("nb")),
        "pesq_paper": lambda: p862_1_inverse(
            _pesq_call(shared("est_pesq"), shared("ref_pesq"), pesq_rate, "nb")
        ),
        "stoi": lambda: _stoi_impl(ref, est, rate, extended=False),
        "estoi": lambda: _stoi_impl(ref, est, rate, extended=True),
        "sdr": lambda: _bss_sdr(ref, est, 257),
        "sdr_paper": lambda: _paper_sdr(ref, est, 257),
        "si_sdr": lambda: _si_sdr_impl(ref, est),
        "lsd": lambda: _lsd_impl(*shared("spectra")),
        "mcd": lambda: _mcd_impl(*shared("spectra"), rate),
        "dnsmos_sig": lambda: shared("dnsmos")["SIG"],
        "dnsmos_bak": lambda: shared("dnsmos")["BAK"],
        "dnsmos_ovrl": lambda: shared("dnsmos")["OVRL"],
        "dnsmos_p808": lambda: shared("dnsmos")["P808"],
    }

    result: dict[str, float] = {}
    for name in names:
        try:
            result[name] = float(compute[name]())
        except MetricError as err:
            warnings.warn(f"{name} reported as NaN: {err}", MetricWarning, stacklevel=2)
            result[name] = math.nan
    result["lag_samples"] = int(lag)
    result["compared_samples"] = int(ref.size)
    return result


def delay_sensitivity(
    reference,
    estimate,
    sample_rate: int,
    delays,
    metrics=("stoi", "si_sdr"),
    max_lag_seconds: float = 0.05,
):
    """Score ``estimate`` delayed by each of ``delays``, without and with alignment.

    The experiment behind "how much does a delay cost?": the delayed estimate is
    ``[0]*d + estimate`` cut to the reference's length.

    Parameters
    ----------
    reference, estimate : array_like, shape (n,)
        Clean reference and an estimate aligned with it, at ``sample_rate`` Hz.
    sample_rate : int
        Hz.
    delays : sequence of int
        Delays in samples (≥ 0).
    metrics : sequence of str
        Names for :func:`compute_metrics`.
    max_lag_seconds : float
        Search range of the alignment, seconds.

    Returns
    -------
    pandas.DataFrame
        Index ``delay (samples)``; for each metric ``m`` the columns ``m`` (unaligned)
        and ``m aligned``; ``lag found`` (samples, by cross-correlation).
    """
    reference = _signal(reference, "reference")
    estimate = _signal(estimate, "estimate")
    rows = []
    for delay in delays:
        if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)):
            raise ValueError(f"delays must be integer numbers of samples; got {delay!r}")
        delay = int(delay)
        if delay < 0:
            raise ValueError(f"delays must be ≥ 0 samples, got {delay}")
        delayed = np.concatenate([np.zeros(delay, dtype=estimate.dtype), estimate])[
            : reference.size
        ]
        plain = compute_metrics(reference, delayed, sample_rate, metrics=metrics)
        aligned = compute_metrics(
            reference,
            delayed,
            sample_rate,
            metrics=metrics,
            align=True,
            max_lag_seconds=max_lag_seconds,
        )
        row = {"delay (samples)": delay, "lag found": aligned["lag_samples"]}
        for name in metrics:
            row[name] = plain[name]
            row[f"{name} aligned"] = aligned[name]
        rows.append(row)
    columns = (
        ["delay (samples)"] + [c for m in metrics for c in (m, f"{m} aligned")] + ["lag found"]
    )
    return pd.DataFrame(rows, columns=columns).set_index("delay (samples)")
