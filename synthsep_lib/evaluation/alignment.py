"""Time alignment of an estimate to its reference (constant delay only).

The authors compared every estimate with its source sample by sample from the first
sample, without any alignment (the "synchronisation" lines of their Matlab script are
commented out, see original_code.md#oc-evaluation). A vocoder or a denoiser may however
shift its output by a few samples or by a known offset (B2 is evaluated against
``source[3068:]``, one sample off its true offset 3069, see original_code.md#oc-b2-offset),
and sample-wise measures such as SDR punish a shift that a listener never hears. This module finds such a shift by
cross-correlation and cuts both signals to their common, aligned part.

Sign convention: a **positive lag** means the estimate is **delayed** relative to the
reference, ``estimate[n] ≈ reference[n - lag]``. B2's paper offset, where the estimate
starts at ``reference[3068]``, is ``lag = -3068``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal

from ..audio import as_signal

__all__ = ["LagEstimate", "estimate_lag", "align"]


@dataclass(frozen=True)
class LagEstimate:
    """Result of :func:`estimate_lag`.

    Attributes
    ----------
    lag : int
        Delay of the estimate relative to the reference in samples (positive: the
        estimate is late, ``estimate[n] ≈ reference[n - lag]``).
    peak : float
        Cross-correlation at ``lag`` divided by ``‖reference‖·‖estimate‖``, in [-1, 1].
        1 means the estimate is an exactly delayed, scaled copy of the reference (on the
        overlap); values near 0 mean no similarity was found and the lag is unreliable.
    """

    lag: int
    peak: float


def _signal(x, name: str) -> np.ndarray:
    return as_signal(x, name).astype(np.float64, copy=False)


def _lag(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer number of samples; got {value!r}")
    return int(value)


def estimate_lag(reference, estimate, max_lag: int) -> LagEstimate:
    """Delay of ``estimate`` relative to ``reference`` by FFT cross-correlation.

    The lag maximises ``c[k] = Σ_n estimate[n + k] · reference[n]`` over
    ``-max_lag ≤ k ≤ max_lag`` (signed maximum: a polarity-inverted estimate is not
    treated as a match). Ties go to the most negative lag.

    Parameters
    ----------
    reference : array_like, shape (n_ref,)
        Clean reference signal (any sample rate; the lag is in samples).
    estimate : array_like, shape (n_est,)
        Signal whose delay is wanted, same sample rate as ``reference``.
    max_lag : int
        Largest absolute lag searched, in samples (≥ 0), e.g. ``round(0.05 * sr)`` for
        ±50 ms. Lags beyond the signals' lengths are not searched.

    Returns
    -------
    LagEstimate
        ``lag`` (int, samples, positive = estimate delayed) and ``peak`` (normalised
        correlation at that lag, in [-1, 1]).

    Raises
    ------
    ValueError
        If a signal is not 1-D, empty, non-finite or all zeros, or ``max_lag`` is not a
        non-negative integer.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal(1000)
    >>> estimate_lag(x, np.concatenate([np.zeros(7), x]), max_lag=20).lag
    7
    """
    ref = _signal(reference, "reference")
    est = _signal(estimate, "estimate")
    max_lag = _lag(max_lag, "max_lag")
    if max_lag < 0:
        raise ValueError(f"max_lag must be ≥ 0 samples; got {max_lag}")
    norm = float(np.linalg.norm(ref) * np.linalg.norm(est))
    for arr, name in ((ref, "reference"), (est, "estimate")):
        if not np.any(arr):
            raise ValueError(f"silent {name}: all samples are zero, so no lag can be estimated")
    # full[k + n_ref - 1] = Σ_n est[n + k] ref[n], for k = -(n_ref - 1) ... n_est - 1
    full = scipy.signal.correlate(est, ref, mode="full", method="fft")
    lo = max(-max_lag, -(ref.size - 1))
    hi = min(max_lag, est.size - 1)
    window = full[lo + ref.size - 1 : hi + ref.size]
    best = int(np.argmax(window))
    return LagEstimate(lag=lo + best, peak=float(window[best] / norm))


def align(reference, estimate, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``reference`` and ``estimate`` to their overlapping part after removing ``lag``.

    With ``lag > 0`` (estimate delayed) the first ``lag`` samples of the estimate are
    dropped; with ``lag < 0`` the first ``-lag`` samples of the reference are dropped.
    Both outputs are then truncated to the shorter one, so that ``estimate_out[n] ≈
    reference_out[n]``.

    Parameters
    ----------
    reference : array_like, shape (n_ref,)
        Clean reference signal.
    estimate : array_like, shape (n_est,)
        Estimate at the same sample rate.
    lag : int
        Delay of the estimate in samples, as returned by :func:`estimate_lag` (positive
        = estimate late). B2's paper protocol is ``lag = -3068``.

    Returns
    -------
    reference_out, estimate_out : numpy.ndarray, float64, shape (m,)
        Views of the aligned overlap; ``m = min(n_ref, n_est - lag)`` for ``lag ≥ 0`` and
        ``m = min(n_ref + lag, n_est)`` for ``lag < 0``.

    Raises
    ------
    ValueError
        If a signal is not 1-D, empty or non-finite, ``lag`` is not an integer, or the
        two signals do not overlap after the shift.
    """
    ref = _signal(reference, "reference")
    est = _signal(estimate, "estimate")
    lag = _lag(lag, "lag")
    if lag >= 0:
        ref_part, est_part = ref, est[lag:]
    else:
        ref_part, est_part = ref[-lag:], est
    m = min(ref_part.size, est_part.size)
    if m <= 0:
        raise ValueError(
            f"lag {lag} leaves no overlap between reference ({ref.size} samples) and "
            f"estimate ({est.size} samples); expected |lag| smaller than the signals"
        )
    return ref_part[:m], est_part[:m]
