"""Tests of synthsep_lib.evaluation.metrics and .alignment on synthetic speech-like signals.

Reference values come from outside the code under test: the ``pesq`` package called
directly, ``mir_eval`` / ``fast_bss_eval`` for BSS-eval SDR, a brute-force transcription
of the authors' Matlab SDR, and closed-form values (known SNR, known gain, known lag).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from synthsep_lib.evaluation import alignment
from synthsep_lib.evaluation import metrics as M

SR = 22050


def p862_1_mapping(raw):
    """ITU-T P.862.1: raw P.862 score → narrow-band MOS-LQO (the ITU code's constants)."""
    return 0.999 + 4.0 / (1.0 + np.exp(-1.4945 * np.asarray(raw, dtype=np.float64) + 4.6607))


def speech_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonic source with gliding f0, formant-like weights and syllable envelopes."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.6 * t + seed) + 8 * np.sin(2 * np.pi * 4.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(n)
    for k in range(1, 35):
        weight = (1 / k) * (1 + 3 * np.exp(-(((k * 130 - 650) / 250) ** 2)))
        y += weight * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    envelope = np.clip(np.sin(2 * np.pi * 2.7 * t + 0.3), 0, None) ** 1.5
    y = y * envelope + 0.002 * rng.standard_normal(n)
    return 0.5 * y / np.max(np.abs(y))


def add_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    """x + white noise scaled to ``snr_db`` relative to the zero-mean x."""
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise -= noise.mean()
    xc = x - x.mean()
    noise *= np.sqrt((xc @ xc) / (noise @ noise) / 10 ** (snr_db / 10))
    return x + noise


def to16k(x: np.ndarray) -> np.ndarray:
    return scipy.signal.resample_poly(x, 320, 441)


@pytest.fixture(scope="module")
def ref():
    return speech_like(3.0)


@pytest.fixture(scope="module")
def noisy(ref):
    return add_noise(ref, 10.0)


# ------------------------------------------------------------------------ identical


def test_identical_signals(ref):
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.MetricWarning)
        assert M.pesq_wb(ref, ref, SR) == pytest.approx(4.644, abs=1e-3)
        assert M.pesq_nb(ref, ref, SR) == pytest.approx(4.549, abs=1e-3)
        assert M.pesq_raw(ref, ref, SR) == pytest.approx(4.5, abs=1e-4)
        assert M.stoi(ref, ref, SR) == pytest.approx(1.0, abs=1e-9)
        assert M.estoi(ref, ref, SR) == pytest.approx(1.0, abs=1e-9)
        assert M.si_sdr(ref, ref) > 200  # +inf or rounding-limited
        assert M.sdr(ref, ref) > 200
        assert M.sdr(ref, ref, paper_protocol=True) > 200
        assert M.log_spectral_distance(ref, ref, SR) == 0.0
        assert M.mel_cepstral_distortion(ref, ref, SR) == 0.0


def test_si_sdr_exact_copy_is_inf_and_orthogonal_is_minus_inf():
    x = np.array([0.125, -0.125, 0.25, -0.25])
    assert M.si_sdr(x, x) == math.inf
    assert M.si_sdr(x, np.array([0.125, 0.125, -0.125, -0.125])) == -math.inf


# ------------------------------------------------------------------------ SDR family


def test_known_snr(ref, noisy):
    assert M.si_sdr(ref, noisy) == pytest.approx(10.0, abs=0.2)
    assert M.sdr(ref, noisy, paper_protocol=True) == pytest.approx(10.0, abs=0.5)
    assert M.sdr(ref, noisy) == pytest.approx(10.0, abs=0.5)


def test_si_sdr_ignores_gain_and_offset(ref, noisy):
    assert M.si_sdr(ref, 0.3 * noisy + 0.01) == pytest.approx(M.si_sdr(ref, noisy), abs=1e-9)


def test_bss_sdr_matches_mir_eval(ref, noisy):
    sep = pytest.importorskip("mir_eval.separation")
    # a filtered, delayed estimate exercises the distortion filter
    est = scipy.signal.lfilter([0.2, 0.9, -0.3], [1.0], np.roll(noisy, 5))
    parts = sep._bss_decomp_mtifilt(ref[None], est, 0, 257)
    expected = float(sep._bss_source_crit(*parts)[0])
    assert M.sdr(ref, est) == pytest.approx(expected, abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # bss_eval_sources is deprecated
        public = float(sep.bss_eval_sources(ref[None], est[None])[0][0])  # 512 taps
    assert M.sdr(ref, est, filter_length=512) == pytest.approx(public, abs=1e-3)


def test_bss_sdr_matches_fast_bss_eval(ref, noisy):
    fbe = pytest.importorskip("fast_bss_eval")
    expected = float(fbe.sdr(ref[None], noisy[None], filter_length=257)[0])
    assert M.sdr(ref, noisy) == pytest.approx(expected, abs=1e-3)


def test_paper_sdr_matches_matlab_formula():
    """Brute force of eval_sdr.m / wiener_filter2.m with the explicit convolution matrix."""
    # leading zeros, as in the reference of original_code.md#oc-evaluation
    s = np.concatenate([np.zeros(768), speech_like(0.2, seed=3)])
    est = scipy.signal.lfilter([0.5, 0.3], [1.0], add_noise(s, 5.0, seed=4))
    q = 256
    X = scipy.linalg.toeplitz(s, np.r_[s[0], np.zeros(q)])
    h = np.linalg.inv(X.T @ X) @ (X.T @ est)
    s_hat = scipy.signal.lfilter(h, [1.0], s)
    expected = 10 * np.log10(np.var(s_hat, ddof=1) / np.var(est - s_hat, ddof=1))
    assert M.sdr(s, est, paper_protocol=True) == pytest.approx(expected, abs=1e-6)
    # the BSS-eval projection differs only by end effects on a signal this short
    assert M.sdr(s, est) == pytest.approx(expected, abs=1.0)


def test_paper_sdr_needs_more_samples_than_taps():
    x = speech_like(0.01)  # 220 samples < 257 taps
    with pytest.raises(M.MetricError, match="257"):
        M.sdr(x, x, paper_protocol=True)


# ------------------------------------------------------------------------ PESQ


def test_p862_1_round_trip():
    raw = np.linspace(M.RAW_PESQ_MIN, M.RAW_PESQ_MAX, 101)
    mos = p862_1_mapping(raw)
    # the P.862.1 formula written out independently
    assert np.allclose(mos, 0.999 + 4.0 / (1.0 + np.exp(-1.4945 * raw + 4.6607)))
    assert np.allclose(M.p862_1_inverse(mos), raw, atol=1e-9)
    # the C code rounds MOS-LQO to float32: the inversion stays within 1e-4
    assert np.allclose(M.p862_1_inverse(mos.astype(np.float32)), raw, atol=1e-4)
    assert p862_1_mapping(4.5) == pytest.approx(4.5486, abs=1e-4)
    # saturation ends are clipped to the range the ITU code can produce
    assert M.p862_1_inverse(0.999) == M.RAW_PESQ_MIN
    assert M.p862_1_inverse(5.0) == M.RAW_PESQ_MAX
    assert M.p862_1_inverse(4.999) == M.RAW_PESQ_MAX


def test_pesq_against_the_package(ref, noisy):
    pesq = pytest.importorskip("pesq").pesq
    r16, e16 = to16k(ref), to16k(noisy)
    assert M.pesq_wb(ref, noisy, SR) == pesq(16000, r16, e16, "wb")
    nb = pesq(16000, r16, e16, "nb")
    assert M.pesq_nb(ref, noisy, SR) == nb
    raw = M.pesq_raw(ref, noisy, SR)
    assert raw == pytest.approx(M.p862_1_inverse(nb))
    assert p862_1_mapping(raw) == pytest.approx(nb, abs=1e-6)
    assert -0.5 < raw < 4.5


def test_pesq_paper_protocol_only_swaps_arguments(ref, noisy):
    pesq = pytest.importorskip("pesq").pesq
    r16, e16 = to16k(ref), to16k(noisy)
    swapped = M.p862_1_inverse(pesq(16000, e16, r16, "nb"))
    paper = M.pesq_raw(ref, noisy, SR, paper_protocol=True)
    assert paper == swapped
    assert paper != M.pesq_raw(ref, noisy, SR)
    scores = M.compute_metrics(ref, noisy, SR, metrics=["pesq_raw", "pesq_paper"])
    assert scores["pesq_paper"] == paper
    assert scores["pesq_raw"] == M.pesq_raw(ref, noisy, SR)


def test_pesq_failure_is_nan_with_warning_in_compute_metrics():
    x = speech_like(0.1)  # too short for PESQ
    with pytest.raises(M.MetricError, match="PESQ"):
        M.pesq_wb(x, x, SR)
    with pytest.warns(M.MetricWarning, match="pesq_wb"):
        scores = M.compute_metrics(x, x, SR, metrics=["pesq_wb", "si_sdr"])
    assert math.isnan(scores["pesq_wb"])
    assert scores["si_sdr"] > 100


def test_stoi_too_short_is_an_error_not_1e5():
    x = speech_like(0.2)
    with pytest.raises(M.MetricError, match="30 frames"):
        M.stoi(x, x, SR)
    with pytest.warns(M.MetricWarning, match="estoi"):
        scores = M.compute_metrics(x, x, SR, metrics=["estoi"])
    assert math.isnan(scores["estoi"])


# ------------------------------------------------------------------------ spectral


def test_gain_gives_known_lsd_and_zero_mcd(noisy):
    # a gain of 1/2 lowers every bin by 6.02 dB (but a few random dips that hit the floor)
    # and moves only the excluded c0
    half = 0.5 * noisy
    assert M.log_spectral_distance(noisy, half, SR) == pytest.approx(20 * np.log10(2), abs=1e-3)
    assert M.mel_cepstral_distortion(noisy, half, SR) == pytest.approx(0.0, abs=1e-3)


def test_spectral_distances_grow_with_noise(ref):
    lsd = [M.log_spectral_distance(ref, add_noise(ref, snr), SR) for snr in (30, 10)]
    mcd = [M.mel_cepstral_distortion(ref, add_noise(ref, snr), SR) for snr in (30, 10)]
    assert 0 < lsd[0] < lsd[1]
    assert 0 < mcd[0] < mcd[1]
    assert M.MCD_CONSTANT == pytest.approx(6.14185, abs=1e-5)


# ------------------------------------------------------------------------ DNSMOS


def test_dnsmos_on_speech_like(noisy):
    scores = M.dnsmos(noisy, SR)
    assert set(scores) == {"SIG", "BAK", "OVRL", "P808"}
    for value in scores.values():
        assert math.isfinite(value) and 1.0 <= value <= 5.0
    with pytest.raises(ValueError, match="16000"):
        M.dnsmos(noisy, 8000)


def test_dnsmos_sessions_follow_the_thread_limit_and_score_as_speechmos(noisy, monkeypatch):
    """In a joblib worker (OMP_NUM_THREADS=1) the ONNX sessions use one thread each, and
    the scores are those of speechmos loading its models itself."""
    import speechmos.dnsmos as speechmos_dnsmos

    monkeypatch.setattr(speechmos_dnsmos, "dnsmos", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ours = M.dnsmos(noisy, SR)
    sessions = (speechmos_dnsmos.dnsmos.onnx_sess, speechmos_dnsmos.dnsmos.p808_onnx_sess)
    assert [s.get_session_options().intra_op_num_threads for s in sessions] == [1, 1]
    monkeypatch.setattr(speechmos_dnsmos, "dnsmos", None)
    monkeypatch.setattr(M, "_dnsmos_sessions", lambda module: None)  # speechmos loads them
    theirs = M.dnsmos(noisy, SR)
    assert speechmos_dnsmos.dnsmos.onnx_sess.get_session_options().intra_op_num_threads == 0
    assert ours == pytest.approx(theirs, abs=1e-5)


# ------------------------------------------------------------------------ alignment


def test_estimate_lag_finds_known_lags(ref):
    late = np.concatenate([np.zeros(123), ref])[: ref.size]
    found = alignment.estimate_lag(ref, late, max_lag=1000)
    assert found.lag == 123
    assert found.peak > 0.99
    assert alignment.estimate_lag(ref, ref[77:], max_lag=1000).lag == -77
    # a lag outside the search range is not found
    assert alignment.estimate_lag(ref, late, max_lag=50).lag != 123


def test_align_restores_identical_stoi(ref):
    late = np.concatenate([np.zeros(123), ref])[: ref.size]
    assert M.stoi(ref, late, SR) < 0.99
    r, e = alignment.align(ref, late, 123)
    assert r.size == e.size == ref.size - 123
    np.testing.assert_array_equal(r, e)
    assert M.stoi(r, e, SR) == pytest.approx(1.0, abs=1e-9)
    scores = M.compute_metrics(ref, late, SR, metrics=["stoi"], align=True)
    assert scores["lag_samples"] == 123
    assert scores["compared_samples"] == ref.size - 123
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-9)


def test_align_negative_lag_and_no_overlap():
    x = np.arange(1.0, 11.0)
    r, e = alignment.align(x, x[3:], -3)
    np.testing.assert_array_equal(r, e)
    with pytest.raises(ValueError, match="no overlap"):
        alignment.align(x, x, 20)
    with pytest.raises(ValueError, match="max_lag"):
        alignment.estimate_lag(x, x, -1)
    with pytest.raises(ValueError, match="silent estimate"):
        alignment.estimate_lag(x, np.zeros(10), 2)


# ------------------------------------------------------------------------ policy


def test_compute_metrics_full_set(ref, noisy):
    scores = M.compute_metrics(ref, noisy, SR)
    assert list(scores) == [*M.DEFAULT_METRICS, "lag_samples", "compared_samples"]
    assert all(math.isfinite(v) for v in scores.values())
    assert scores["sdr"] == M.sdr(ref, noisy)
    assert scores["sdr_paper"] == M.sdr(ref, noisy, paper_protocol=True)
    assert scores["lsd"] == M.log_spectral_distance(ref, noisy, SR)
    assert scores["lag_samples"] == 0 and scores["compared_samples"] == ref.size


def test_length_policy(ref, noisy):
    longer = np.concatenate([noisy, np.zeros(ref.size // 20)])  # +5 %: silent truncation
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.MetricWarning)
        scores = M.compute_metrics(ref, longer, SR, metrics=["si_sdr"])
    assert scores["compared_samples"] == ref.size
    assert scores["si_sdr"] == M.si_sdr(ref, noisy)
    shorter = noisy[: int(0.8 * ref.size)]  # −20 %: warned, reference truncated
    with pytest.warns(M.MetricWarning, match="truncated"):
        value = M.si_sdr(ref, shorter)
    assert value == M.si_sdr(ref[: shorter.size], shorter)


@pytest.mark.parametrize("which", ["reference", "estimate"])
def test_non_finite_input_names_the_signal(ref, which):
    bad = ref.copy()
    bad[100] = np.nan
    args = (bad, ref) if which == "reference" else (ref, bad)
    with pytest.raises(ValueError, match=f"{which} contains NaN or inf"):
        M.si_sdr(*args)
    with pytest.raises(ValueError, match=which):
        M.compute_metrics(*args, SR, metrics=["stoi"])


@pytest.mark.parametrize("which", ["reference", "estimate"])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_integer_pcm_beside_float_is_refused_naming_argument_and_dtype(ref, which, dtype):
    # Unscaled PCM_16 beside float gave LSD ≈ 109 dB instead of ≈ 22 dB: refuse, don't guess.
    pcm = np.clip(np.round(ref * 32768), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
    args = (pcm, ref) if which == "reference" else (ref, pcm)
    message = rf"{which} has dtype {np.dtype(dtype).name}; expected float samples in \[-1, 1\]"
    hint = {np.int16: "x / 32768", np.int32: "x / 2147483648", np.uint8: "(x - 128) / 128"}
    with pytest.raises(ValueError, match=message) as exc:
        M.log_spectral_distance(*args, SR)
    assert hint[dtype] in str(exc.value)
    for align in (False, True):
        with pytest.raises(ValueError, match=message):
            M.compute_metrics(*args, SR, metrics=["lsd", "si_sdr"], align=align)


@pytest.mark.parametrize("which", ["reference", "estimate"])
def test_silent_input_is_rejected(ref, which):
    args = (np.zeros_like(ref), ref) if which == "reference" else (ref, np.zeros_like(ref))
    with pytest.raises(M.SilentSignalError, match=f"silent {which}"):
        M.pesq_wb(*args, SR)
    with pytest.raises(M.SilentSignalError, match=f"silent {which}"):
        M.compute_metrics(*args, SR)


def test_bad_shapes_rates_and_names(ref):
    with pytest.raises(ValueError, match="reference must be a 1-D"):
        M.stoi(np.stack([ref, ref]), ref, SR)
    with pytest.raises(ValueError, match="estimate is empty"):
        M.si_sdr(ref, np.array([]))
    with pytest.raises(ValueError, match="pesq_wb needs .* 16000 Hz"):
        M.pesq_wb(ref, ref, 8000)
    with pytest.raises(ValueError, match="stoi needs .* 10000 Hz"):
        M.compute_metrics(ref, ref, 8000, metrics=["stoi"])
    with pytest.raises(ValueError, match="positive integer"):
        M.stoi(ref, ref, 22050.0)
    with pytest.raises(ValueError, match="unknown metric"):
        M.compute_metrics(ref, ref, SR, metrics=["pesq"])
    with pytest.raises(ValueError, match="filter_length"):
        M.sdr(ref, ref, filter_length=0)


def test_a_float_signal_above_one_is_not_called_clipped(ref):
    loud = 1.5 * ref / np.max(np.abs(ref))  # the authors' ISTFT gain, stored as float
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.MetricWarning)
        assert np.isfinite(M.si_sdr(ref, loud))


def test_clipping_is_warned_but_scored(ref):
    clipped = np.clip(4 * ref, -1, 1)
    with pytest.warns(M.MetricWarning, match="estimate looks clipped"):
        value = M.si_sdr(ref, clipped)
    assert math.isfinite(value)


def test_delay_sensitivity_recovers_delays_inside_the_search_range(ref):
    table = M.delay_sensitivity(
        ref, ref, 22050, [0, 100, 3000], metrics=["si_sdr"], max_lag_seconds=0.05
    )
    assert list(table.index) == [0, 100, 3000]
    assert list(table["lag found"][:2]) == [0, 100]
    assert table.loc[100, "si_sdr aligned"] > 60 > table.loc[100, "si_sdr"]
    assert table.loc[3000, "lag found"] != 3000  # outside ±1102 samples
    with pytest.raises(ValueError, match="≥ 0"):
        M.delay_sensitivity(ref, ref, 22050, [-1])
