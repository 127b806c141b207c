"""Tests of synthsep_lib.baselines.b1: B1 (Griffin–Lim) and B1-gt (true phase)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import spectral_convergence, speech_like

from synthsep_lib import audio
from synthsep_lib.baselines import b1 as lin
from synthsep_lib.config import FeatureConfig, Profile

CFG = FeatureConfig()
GAIN = 1.49926  # plateau of Σ w_sym·w_per: the authors' ISTFT gain on a GT-phase spectrum
SCALE = 0.8  # a mixture scale: the encoder's target is scale · s1


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


@pytest.fixture(scope="module")
def source():
    return speech_like()


@pytest.fixture(scope="module")
def estimate(source):
    """A perfect B1 estimate: the normalised linear spectrum of the scaled target."""
    return audio.encoder_features(SCALE * source, CFG)[0]


def test_linear_magnitude_inverts_the_normalisation(source, estimate):
    # round trip through the library's normalisation: |X| clipped to [−50, +30] dB, 512
    # bins, plus a zero Nyquist bin
    magnitude = lin.linear_magnitude(estimate, CFG)
    assert magnitude.shape == (source.size // 256, 513) and magnitude.dtype == np.float64
    expected = np.clip(np.abs(audio.linear_stft(SCALE * source, CFG)), 10 ** (-50 / 20), 10**1.5)
    expected[:, -1] = 0.0
    np.testing.assert_allclose(magnitude, expected, rtol=1e-5)
    assert magnitude.min(initial=1.0, where=magnitude > 0) == pytest.approx(10 ** (-50 / 20))
    # values outside [0, 1] are clipped, as denormalise_linear does
    edges = lin.linear_magnitude(np.array([[-1.0] * 256 + [2.0] * 256]), Profile(name="reduced"))
    np.testing.assert_allclose(edges[0, [0, 511, 512]], [10 ** (-50 / 20), 10**1.5, 0.0])


def test_linear_magnitude_rejects_bad_estimates(estimate):
    with pytest.raises(ValueError, match=r"linear_norm must have shape \(frames, 512\)"):
        lin.linear_magnitude(np.pad(estimate, ((0, 0), (0, 1))), CFG)
    with pytest.raises(ValueError, match="linear_norm must have shape"):
        lin.linear_magnitude(estimate[0], CFG)
    bad = estimate.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lin.linear_magnitude(bad, CFG)


def test_b1_true_phase_of_a_perfect_estimate_is_the_scaled_target(source, estimate):
    # B1-gt = |scaled target| (clipped, no Nyquist) with s1's phase ⇒ the scaled target
    # times the ISTFT gain; cut to len(source), aligned with it (no lead-in shift)
    out = lin.b1_true_phase(estimate, source, CFG)
    assert out.shape == source.shape and out.dtype == np.float64
    assert snr_db(SCALE * source, out / GAIN) > 60
    normalised = lin.b1_true_phase(estimate, source, CFG, normalise_window=True)
    assert snr_db(SCALE * source, normalised) > 60
    # an estimate 6 dB too loud (0.075 = 6/80 normalised) comes back twice as large
    louder = lin.b1_true_phase(np.clip(estimate + 6 / 80, 0, 1), source, CFG)
    core = slice(2000, 20000)
    assert np.std(louder[core]) / np.std(out[core]) == pytest.approx(10 ** (6 / 20), rel=0.02)


def test_b1_true_phase_rejects_a_wrong_number_of_frames(source, estimate):
    with pytest.raises(ValueError, match=r"linear_norm has 89 frames; expected 90"):
        lin.b1_true_phase(estimate[:-1], source, CFG)


def test_b1_griffin_lim_converges_is_seeded_and_cut(source, estimate):
    magnitude = lin.linear_magnitude(estimate, CFG)
    full = lin.b1_griffin_lim(estimate, CFG, n_iter=30, seed=3)
    assert full.shape == (estimate.shape[0] * 256 + 1024,)
    one = lin.b1_griffin_lim(estimate, CFG, n_iter=1, seed=3)
    assert spectral_convergence(magnitude, full, CFG) < 0.8 * spectral_convergence(
        magnitude, one, CFG
    )
    cut = lin.b1_griffin_lim(estimate, CFG, n_iter=30, seed=3, length=source.size)
    np.testing.assert_array_equal(cut, full[: source.size])
    assert not np.allclose(cut, lin.b1_griffin_lim(estimate, CFG, n_iter=30, seed=4)[: source.size])
    # the librosa variant reaches a similar consistency
    other = lin.b1_griffin_lim(estimate, CFG, n_iter=30, seed=3, method="librosa")
    assert spectral_convergence(magnitude, other, CFG) < spectral_convergence(magnitude, one, CFG)
