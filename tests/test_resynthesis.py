"""Tests of synthsep_lib.baselines.resynthesis: the authors' ISTFT, Griffin–Lim, mel → linear."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import spectral_convergence

from synthsep_lib import audio
from synthsep_lib.baselines import resynthesis as rs
from synthsep_lib.config import FeatureConfig, Profile

CFG = FeatureConfig()
SR = CFG.sample_rate


def speech_like(seconds: float = 1.0, seed: int = 0, peak: float = 0.5) -> np.ndarray:
    """A voiced-speech-like test signal in the saved-audio layout (768-zero lead-in).

    40 harmonics of a gliding 100–140 Hz fundamental with a syllable-rate envelope and a
    little noise; at peak 0.5 its STFT stays below the +30 dB ceiling of the linear
    normalisation, as real speech mostly does.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 3 * t)) / SR
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 41))
    x = x * (0.2 + 0.8 * np.sin(2 * np.pi * 1.3 * t) ** 2)
    x = x + 0.02 * x.std() * rng.standard_normal(x.size)
    return audio.pad_for_frames(x / np.max(np.abs(x)) * peak, CFG).astype(np.float64)


@pytest.fixture(scope="module")
def signal():
    return speech_like()


# --------------------------------------------------------------------------------------
# ISTFT
# --------------------------------------------------------------------------------------
def test_istft_paper_has_the_window_product_gain(signal):
    x = audio.linear_stft(signal, CFG)
    n_frames, length = x.shape[0], signal.size
    assert n_frames == length // 256
    y = rs.istft_paper(np.abs(x), np.angle(x), CFG)
    assert y.shape == (n_frames * 256 + 1024,) and y.dtype == np.float64
    assert np.all(y[-256:] == 0)  # no frame reaches the last hop
    gain = rs.overlap_add_window_sum(n_frames, CFG, "periodic")
    # the round trip multiplies every sample by Σ_m w_sym·w_per (exactly, up to rounding)
    assert np.max(np.abs(y[:length] - gain[:length] * signal)) < 1e-12
    # the plateau of that sum: symmetric × periodic Hann ≈ 1.4993 ...
    plateau = gain[1024:-1024]
    assert plateau.min() == pytest.approx(1.49923, abs=1e-5)
    assert plateau.max() == pytest.approx(1.49930, abs=1e-5)
    # ... and symmetric × symmetric (inside Griffin–Lim) ≈ 1.49847
    # (original_code.md#oc-resynthesis)
    sym = rs.overlap_add_window_sum(n_frames, CFG, "symmetric")[1024:-1024]
    assert sym.min() == pytest.approx(1.49847, abs=1e-5)
    assert sym.max() < 1.4987


def test_istft_normalised_is_an_exact_inverse(signal):
    x = audio.linear_stft(signal, CFG)
    y = rs.istft_paper(np.abs(x), np.angle(x), CFG, normalise_window=True)
    length = signal.size
    # exact away from the first ~120 samples (divisor floored there) and the padded tail
    assert np.max(np.abs(y[128:length] - signal[128:])) < 1e-6
    assert np.max(np.abs(y[:length] - signal)) < 1e-6  # the saved layout starts with zeros
    # a modified spectrum does not blow up at the edges (the floor on the window sum)
    rng = np.random.default_rng(3)
    z = rs.istft_paper(np.abs(x), rng.uniform(-np.pi, np.pi, x.shape), CFG, normalise_window=True)
    assert np.max(np.abs(z[:256])) < 10 * np.max(np.abs(z[1024:-1024]))


def test_istft_accepts_512_bins_with_a_zero_nyquist(signal):
    x = audio.linear_stft(signal, CFG)
    mag, ph = np.abs(x), np.angle(x)
    full = mag.copy()
    full[:, 512] = 0.0
    expected = rs.istft_paper(full, ph, CFG)
    got = rs.istft_paper(mag[:, :512], ph[:, :512], Profile(name="test"))
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize(
    "magnitude, phase, match",
    [
        (np.ones((4, 513)), np.ones((4, 512)), "same shape"),
        (np.ones((4, 300)), np.ones((4, 300)), "shape"),
        (np.ones(513), np.ones(513), "shape"),
        (np.full((4, 513), np.nan), np.ones((4, 513)), "NaN"),
        (np.ones((4, 513)) + 0j, np.ones((4, 513)), "real"),
    ],
)
def test_istft_rejects_bad_input(magnitude, phase, match):
    with pytest.raises(ValueError, match=match):
        rs.istft_paper(magnitude, phase, CFG)


def test_istft_rejects_a_bad_cfg():
    with pytest.raises(ValueError, match="FeatureConfig"):
        rs.istft_paper(np.ones((2, 513)), np.ones((2, 513)), {"fft_size": 1024})


def test_stft_paper_framing():
    rng = np.random.default_rng(1)
    n_frames = 7
    x = rng.standard_normal(n_frames * 256 + 1024)
    spec = rs.stft_paper(x, CFG)
    assert spec.shape == (n_frames, 513)  # frames start at i < len - 1024
    np.testing.assert_allclose(spec[0], np.fft.rfft(np.hanning(1024) * x[:1024]))
    np.testing.assert_allclose(
        spec[-1], np.fft.rfft(np.hanning(1024) * x[6 * 256 : 6 * 256 + 1024])
    )
    assert rs.stft_paper(x[:1100], CFG).shape == (1, 513)
    with pytest.raises(ValueError, match="more than fft_size"):
        rs.stft_paper(x[:1024], CFG)


# --------------------------------------------------------------------------------------
# Griffin–Lim
# --------------------------------------------------------------------------------------
def test_griffin_lim_converges_and_is_seeded(signal):
    mag = np.abs(audio.linear_stft(signal, CFG))
    length = mag.shape[0] * 256 + 1024
    # same seed ⇒ same start, so n_iter = k is the k-th iterate of one run
    errors = [
        spectral_convergence(mag, rs.griffin_lim_paper(mag, CFG, n, rng=7), CFG)
        for n in (1, 5, 25, 100)
    ]
    assert all(np.diff(errors) < 0), errors
    assert errors[-1] < 0.15
    a = rs.griffin_lim_paper(mag, CFG, 10, rng=np.random.default_rng(5))
    b = rs.griffin_lim_paper(mag, CFG, 10, rng=5)
    c = rs.griffin_lim_paper(mag, CFG, 10, rng=6)
    assert a.shape == (length,)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(
        rs.griffin_lim_paper(mag, CFG, 3), rs.griffin_lim_paper(mag, CFG, 3)
    )


def test_griffin_lim_librosa_variant(signal):
    mag = np.abs(audio.linear_stft(signal, CFG))
    length = mag.shape[0] * 256 + 1024
    few = rs.griffin_lim_paper(mag, CFG, 2, rng=0, method="librosa")
    many = rs.griffin_lim_paper(mag, CFG, 60, rng=0, method="librosa")
    assert many.shape == (length,)
    assert spectral_convergence(mag, many, CFG) < spectral_convergence(mag, few, CFG)
    assert spectral_convergence(mag, many, CFG) < 0.2
    # no spikes at the edges; level ≈ 1/1.5 of the paper variant (normalised ISTFT)
    assert np.max(np.abs(many[:1024])) <= np.max(np.abs(many))
    paper = rs.griffin_lim_paper(mag, CFG, 60, rng=0)
    ratio = np.sqrt(np.mean(paper**2) / np.mean(many**2))
    assert ratio == pytest.approx(1.5, rel=0.1)


def test_griffin_lim_rejects_bad_arguments(signal):
    mag = np.abs(audio.linear_stft(signal[:4096], CFG))
    with pytest.raises(ValueError, match="n_iter"):
        rs.griffin_lim_paper(mag, CFG, 0)
    with pytest.raises(ValueError, match="method"):
        rs.griffin_lim_paper(mag, CFG, 1, method="fast")


def test_spectral_convergence_of_the_exact_signal_is_zero(signal):
    # the symmetric-Hann STFT of the signal itself, on the frames stft_paper sees
    padded = np.concatenate([signal, np.zeros(1024)])
    mag = np.abs(rs.stft_paper(padded, CFG))
    assert spectral_convergence(mag, padded, CFG) < 1e-12
    assert spectral_convergence(mag, 1.5 * padded, CFG) < 1e-12
    assert spectral_convergence(mag, 1.5 * padded, CFG, scale_invariant=False) == (
        pytest.approx(0.5)
    )


# --------------------------------------------------------------------------------------
# Mel → linear
# --------------------------------------------------------------------------------------
def test_mel_to_linear(signal):
    mel = audio.encoder_features(signal, CFG)[1]
    lin = rs.mel_to_linear(mel, CFG)
    assert lin.shape == (mel.shape[0], 513) and lin.dtype == np.float64
    assert np.all(lin >= 0)
    basis = audio.mel_basis(CFG)
    pinv = rs.mel_pseudo_inverse(CFG)
    assert pinv.shape == (513, 80)
    np.testing.assert_allclose(basis @ pinv, np.eye(80), atol=1e-9)
    # bins outside the filter bank (below bin 6, above bin 352) come back as 0 (to rounding)
    assert np.max(lin[:, :6]) < 1e-12 * lin.max() and np.max(lin[:, 353:]) < 1e-12 * lin.max()
    # W·lin reproduces the mel amplitude; clipping W⁺'s small negative side lobes can
    # only raise it (W >= 0), and only a little overall
    amp = audio.denormalise_mel(mel.astype(np.float64), CFG)
    back = lin @ basis.T
    assert np.all(back >= amp * (1 - 1e-9))
    assert np.linalg.norm(back - amp) / np.linalg.norm(amp) < 0.1
    # where nothing is clipped the identity is exact: a smooth, slowly varying mel
    smooth = np.full((3, 80), 0.6)
    np.testing.assert_allclose(
        rs.mel_to_linear(smooth, CFG) @ basis.T, audio.denormalise_mel(smooth), rtol=1e-9
    )


def test_mel_to_linear_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(frames, 80\)"):
        rs.mel_to_linear(np.zeros((5, 513)), CFG)
    with pytest.raises(ValueError, match=r"\(frames, 80\)"):
        rs.mel_to_linear(np.zeros(80), CFG)


# --------------------------------------------------------------------------------------
# Lengths
# --------------------------------------------------------------------------------------
def test_match_length():
    x = np.arange(10, dtype=np.float32)
    short = rs.match_length(x, 4)
    np.testing.assert_array_equal(short, x[:4])
    long = rs.match_length(x, 13)
    assert long.dtype == np.float32 and long.shape == (13,)
    np.testing.assert_array_equal(long, np.concatenate([x, np.zeros(3, np.float32)]))
    same = rs.match_length(x, 10)
    same[0] = 99
    assert x[0] == 0  # always a copy
    assert rs.match_length(x, 0).shape == (0,)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="length"):
            rs.match_length(x, bad)
    with pytest.raises(ValueError, match="1-D"):
        rs.match_length(np.zeros((2, 2)), 3)
