"""Tests of synthsep_lib.pipeline.signal_methods (one runner for the oracles, Input, B1,
B1-gt) and of the ``timing.csv`` contract in synthsep_lib.pipeline.runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import make_test_run

from synthsep_lib import audio
from synthsep_lib.config import FeatureConfig, Profile
from synthsep_lib.files import STAMP_NAME, file_sha1
from synthsep_lib.pipeline import signal_methods as sm
from synthsep_lib.pipeline.runs import TIMING_COLUMNS, RunPaths, read_timing, write_timing

CFG = FeatureConfig()
SR = CFG.sample_rate
GAIN = 1.49926  # plateau of Σ w_sym·w_per: the authors' ISTFT gain on a GT-phase spectrum
PROFILE = Profile(name="reduced")
NEEDS_ESTIMATES = {
    "proposed-res-gt": "proposed",
    "b1-gt": "b1",
    "b1": "b1",
    "proposed-gl": "proposed",
}


def si_snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    return float(
        10
        * np.log10(np.sum((scale * reference) ** 2) / np.sum((scale * reference - estimate) ** 2))
    )


def write_perfect_estimates(paths: RunPaths) -> None:
    """Chapter 2 stand-in: each encoder's estimate = its target feature (scaled target)."""
    timings = {}
    for target_wav in sorted(paths.test_audio.glob("*_target.wav")):
        pair = int(target_wav.name[:3])
        wav = audio.load_wav(target_wav, SR)
        linear, mel = audio.encoder_features(wav, CFG)
        for variant, feature in (("b1", linear), ("proposed", mel)):
            folder = paths.encoder_estimates(variant)
            folder.mkdir(parents=True, exist_ok=True)
            np.save(paths.encoder_estimate(variant, pair), feature)
        timings[pair] = {"pair": pair, "seconds": 50.0, "audio_seconds": wav.size / SR}
    for variant in ("b1", "proposed"):
        write_timing(paths.encoder_estimates(variant) / "timing.csv", timings)


def read(path) -> np.ndarray:
    return sf.read(path, dtype="float64")[0]


# --------------------------------------------------------------------------------------
# The timing.csv contract (synthsep_lib.pipeline.runs)
# --------------------------------------------------------------------------------------
def test_timing_csv_round_trip(tmp_path):
    path = tmp_path / "outputs" / "m" / "timing.csv"
    assert read_timing(path) == {}
    rows = {
        3: {"pair": 3, "seconds": 0.1234567, "audio_seconds": 2.0},
        1: {"pair": np.int64(1), "seconds": np.float32(1.5), "audio_seconds": 0.25},
    }
    write_timing(path, rows)
    assert path.read_text().splitlines() == [
        ",".join(TIMING_COLUMNS),
        "1,1.5,0.25",
        "3,0.123457,2",
    ]
    assert read_timing(path) == {
        1: {"pair": 1, "seconds": 1.5, "audio_seconds": 0.25},
        3: {"pair": 3, "seconds": 0.123457, "audio_seconds": 2.0},
    }
    assert list(pd.read_csv(path).columns) == list(TIMING_COLUMNS)
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, no leftovers


def test_timing_csv_errors_name_the_file(tmp_path):
    path = tmp_path / "timing.csv"
    with pytest.raises(ValueError, match="lacks"):
        write_timing(path, {0: {"pair": 0, "seconds": 1.0}})
    with pytest.raises(ValueError, match="stored under pair 1"):
        write_timing(path, {1: {"pair": 0, "seconds": 1.0, "audio_seconds": 1.0}})
    assert not path.exists()
    path.write_text("pair,seconds\n0,1.0\n")
    with pytest.raises(ValueError, match=r"timing.csv lacks column\(s\) \['audio_seconds'\]"):
        read_timing(path)
    path.write_text("pair,seconds,audio_seconds\n0,1.0,2.0\n1,fast,2.0\n")
    with pytest.raises(ValueError, match=r"timing.csv, line 3: expected an integer pair"):
        read_timing(path)


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------
def test_registry_lists_every_signal_method_with_its_needs():
    assert list(sm.METHODS) == [
        "input",
        "proposed-res-gt",
        "b1-gt",
        "b1",
        "ibm-gt",
        "mel-res-gt",
        "mel-gl",
        "proposed-gl",
    ]
    needs = {m: s.estimate for m, s in sm.METHODS.items() if s.estimate}
    assert needs == NEEDS_ESTIMATES
    kinds = {"source", "target", "noise", "mixture"}
    assert all(set(s.signals) <= kinds and s.description for s in sm.METHODS.values())


# --------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------
def test_write_signal_outputs_writes_and_resumes(tmp_path):
    paths = make_test_run(tmp_path)
    write_perfect_estimates(paths)
    first = sm.write_signal_outputs(paths, PROFILE, progress=False)
    assert list(first.columns) == ["method", "pair", "path", "written", "seconds", "audio_seconds"]
    assert len(first) == len(sm.METHODS) * 2 and first["written"].all()
    assert set(first["method"]) == set(sm.METHODS)
    for method in sm.METHODS:
        timing = pd.read_csv(paths.outputs(method) / "timing.csv")
        assert list(timing.columns) == ["pair", "seconds", "audio_seconds"]
        assert timing["pair"].tolist() == [0, 1]
        assert (timing["seconds"] >= 0).all()
        # methods decoding an estimate include the encoder's 50 s (Chapter 2's timing.csv)
        assert (timing["seconds"] >= 50).all() == (sm.METHODS[method].estimate is not None)
        for pair in (0, 1):
            source = read(paths.test_audio / f"{pair:03d}_source.wav")
            out = read(paths.outputs(method) / f"{pair:03d}.wav")
            assert sf.info(paths.outputs(method) / f"{pair:03d}.wav").subtype == "FLOAT"
            assert out.shape == source.shape  # cut to length(source), as the Matlab did
            assert timing.loc[pair, "audio_seconds"] == pytest.approx(source.size / SR)
            assert np.all(np.isfinite(out)) and np.any(out)
    out = {m: read(paths.outputs(m) / "000.wav") for m in sm.METHODS}
    source = read(paths.test_audio / "000_source.wav")
    target = read(paths.test_audio / "000_target.wav")
    np.testing.assert_array_equal(out["input"], read(paths.test_audio / "000_mixture.wav"))
    assert si_snr_db(source, out["ibm-gt"]) > si_snr_db(source, out["input"])
    # with a perfect estimate, Proposed-res-gt is its true-mel ceiling and B1-gt the
    # scaled target (× the ISTFT gain), aligned with the source
    np.testing.assert_array_equal(out["proposed-res-gt"], out["mel-res-gt"])
    np.testing.assert_array_equal(out["proposed-gl"], out["mel-gl"])
    np.testing.assert_allclose(out["b1-gt"] / GAIN, target, atol=1e-3 * np.abs(target).max())
    assert si_snr_db(source, out["b1-gt"]) > 40
    assert si_snr_db(source, out["b1"]) < 10 < si_snr_db(source, out["mel-res-gt"])  # GL phase

    # second call: everything exists ⇒ nothing recomputed, old timings kept
    before = {m: (paths.outputs(m) / "timing.csv").read_text() for m in sm.METHODS}
    second = sm.write_signal_outputs(paths, PROFILE, progress=False)
    assert not second["written"].any()
    np.testing.assert_allclose(second["seconds"], first["seconds"], rtol=1e-5)
    assert before == {m: (paths.outputs(m) / "timing.csv").read_text() for m in sm.METHODS}

    # a deleted output is recomputed alone (same seed ⇒ same waveform); the other pair
    # keeps its timing row
    old = read(paths.outputs("b1") / "001.wav")
    (paths.outputs("b1") / "001.wav").unlink()
    third = sm.write_signal_outputs(paths, PROFILE, methods=["b1"], progress=False)
    assert third["written"].tolist() == [False, True]
    np.testing.assert_array_equal(read(paths.outputs("b1") / "001.wav"), old)
    timing = pd.read_csv(paths.outputs("b1") / "timing.csv")
    assert timing["pair"].tolist() == [0, 1]
    assert timing.loc[0, "seconds"] == pytest.approx(
        first.set_index(["method", "pair"]).loc[("b1", 0), "seconds"], rel=1e-5
    )


def test_new_estimates_make_the_outputs_that_use_them_stale(tmp_path):
    paths = make_test_run(tmp_path)
    write_perfect_estimates(paths)
    methods = ["b1-gt", "ibm-gt"]
    sm.write_signal_outputs(paths, PROFILE, methods, progress=False)
    old = read(paths.outputs("b1-gt") / "001.wav")
    estimate = paths.encoder("b1") / "test" / "001.npy"
    np.save(estimate, np.load(estimate) - 6 / 80)  # a retrained encoder: 6 dB quieter
    again = sm.write_signal_outputs(paths, PROFILE, methods, progress=False).set_index("method")
    assert again.loc["b1-gt", "written"].all()  # both pairs: the folder was reset
    assert not again.loc["ibm-gt", "written"].any()  # made without estimates: kept
    new = read(paths.outputs("b1-gt") / "001.wav")
    assert np.std(new) / np.std(old) == pytest.approx(10 ** (-6 / 20), rel=0.05)
    assert pd.read_csv(paths.outputs("b1-gt") / "timing.csv")["pair"].tolist() == [0, 1]


def test_true_mel_outputs_of_an_older_proposed_res_gt_are_replaced(tmp_path):
    # before it used the encoder's estimate, proposed-res-gt was stamped with the manifest
    # alone: such a folder is stale now
    paths = make_test_run(tmp_path, n_pairs=1)
    write_perfect_estimates(paths)
    folder = paths.outputs("proposed-res-gt")
    folder.mkdir(parents=True)
    audio.save_wav(folder / "000.wav", np.zeros(256), SR, subtype="FLOAT")
    (folder / STAMP_NAME).write_text(file_sha1(paths.test_manifest) + "\n")
    written = sm.write_signal_outputs(paths, PROFILE, ["proposed-res-gt"], progress=False)
    assert written["written"].all()
    assert read(folder / "000.wav").shape == read(paths.test_audio / "000_source.wav").shape


def test_write_signal_outputs_needs_chapter_two_for_estimates(tmp_path):
    paths = make_test_run(tmp_path)
    for method, variant in NEEDS_ESTIMATES.items():
        with pytest.raises(
            FileNotFoundError,
            match=rf"{variant}/test/000.npy is missing: run Chapter 2 \(02_encoder\) first",
        ):
            sm.write_signal_outputs(paths, PROFILE, [method], progress=False)
    # every estimate is checked before anything is written
    write_perfect_estimates(paths)
    (paths.encoder("b1") / "test" / "001.npy").unlink()
    with pytest.raises(FileNotFoundError, match="001.npy is missing: run Chapter 2"):
        sm.write_signal_outputs(paths, PROFILE, ["input", "b1"], progress=False)
    assert not list(paths.outputs("input").glob("*.wav"))
    assert not list(paths.outputs("b1").glob("*.wav"))


def test_write_signal_outputs_rejects_an_estimate_of_the_wrong_shape(tmp_path):
    paths = make_test_run(tmp_path, n_pairs=1)
    write_perfect_estimates(paths)
    estimate = paths.encoder("proposed") / "test" / "000.npy"
    np.save(estimate, np.load(estimate)[:-1])
    with pytest.raises(ValueError, match=r"000.npy has shape \(\d+, 80\); expected"):
        sm.write_signal_outputs(paths, PROFILE, ["proposed-res-gt"], progress=False)


def test_write_signal_outputs_needs_chapter_one(tmp_path):
    paths = RunPaths(tmp_path / "runs", "reduced")
    with pytest.raises(FileNotFoundError, match=r"run Chapter 1 \(01_data_simulation\) first"):
        sm.write_signal_outputs(paths, PROFILE, ["input"], progress=False)
    paths = make_test_run(tmp_path, n_pairs=1)
    (paths.test_audio / "000_noise.wav").unlink()
    with pytest.raises(FileNotFoundError, match="000_noise.wav.*run Chapter 1"):
        sm.write_signal_outputs(paths, PROFILE, ["ibm-gt"], progress=False)


def test_write_signal_outputs_rejects_unknown_methods(tmp_path):
    paths = make_test_run(tmp_path, n_pairs=1)
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['ibm'\]"):
        sm.write_signal_outputs(paths, PROFILE, ["ibm"], progress=False)
