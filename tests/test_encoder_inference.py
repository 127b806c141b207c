"""Encoder inference: whole-utterance prediction, the test set's e1/e2, resumability
(synthsep_lib.pipeline.encoder_inference). The real encoder (tiny sizes) is trained for one step
here, end to end through train_encoder."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

pytestmark = pytest.mark.filterwarnings(
    # Keras' own model.save converts variables with np.array(variable) (NumPy 2 notice)
    "ignore:__array__ implementation:DeprecationWarning",
)

from conftest import ENCODER_TEST_DATA  # noqa: E402

from synthsep_lib import audio, mixing  # noqa: E402
from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.encoder.loss import encoder_errors  # noqa: E402
from synthsep_lib.encoder.model import build_encoder  # noqa: E402
from synthsep_lib.encoder.prediction import predict_utterance  # noqa: E402
from synthsep_lib.pipeline import encoder_inference as inference  # noqa: E402
from synthsep_lib.pipeline.encoder_inference import (  # noqa: E402
    ERROR_COLUMNS,
    load_trained_encoder,
    predict_test_set,
    real_time_factor,
)
from synthsep_lib.pipeline.encoder_training import train_encoder  # noqa: E402
from synthsep_lib.pipeline.runs import RunPaths, read_timing  # noqa: E402

DATA_OVERRIDES = ENCODER_TEST_DATA
TINY = {
    "linear_lstm_units": 8,
    "mel_lstm_units": 8,
    "hourglass_filters": 8,
    "hourglass_depth": 1,  # the real encoder, one hourglass level: traces ~5 s faster
    "batch_size": 4,
    "steps_per_epoch": 1,
    "validation_steps": 1,
    "epochs": 1,
    "feed_workers": 0,
}


def tiny_profile(**encoder):
    return load_profile("reduced", {"data": DATA_OVERRIDES, "encoder": {**TINY, **encoder}})


@pytest.fixture(scope="module")
def mini(encoder_mini_run):
    return encoder_mini_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mini):
    """The real Proposed encoder (tiny sizes) after one training step."""
    paths = RunPaths(tmp_path_factory.mktemp("inference") / "runs", "reduced")
    shutil.copytree(mini["data"], paths.data)
    history = train_encoder(
        paths,
        tiny_profile(),
        "proposed",
        lj=mini["lj"],
        esc=mini["esc"],
        splits=mini["splits"],
        progress=False,
    )
    assert len(history) == 1
    return paths


def identity_encoder(variant: str, frames: int = 64) -> keras.Model:
    """An 'encoder' that returns its input spectrum of the variant's kind unchanged."""
    input1 = keras.Input((frames, 512), name="input1")
    input2 = keras.Input((frames, 80), name="input2")
    source, bins = (input2, 80) if variant == "proposed" else (input1, 512)
    out = keras.layers.Reshape((frames, bins, 1))(source)
    return keras.Model([input1, input2], out)


def signal(frames: int, seed: int = 0) -> np.ndarray:
    """A saved-audio-layout signal of ``frames`` frames (768 lead-in zeros)."""
    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal(frames * 256)).astype(np.float32)
    x[:768] = 0.0
    return x


@pytest.mark.parametrize("variant", ["proposed", "b1"])
@pytest.mark.parametrize("frames", [64, 90, 128, 200, 40])
def test_blocks_and_stitching_reproduce_the_input(variant, frames):
    profile = tiny_profile()
    x = signal(frames)
    linear, mel = audio.encoder_features(x, profile.features)
    expected = mel if variant == "proposed" else linear
    estimate = predict_utterance(identity_encoder(variant), x, profile, variant, batch_size=2)
    assert estimate.dtype == np.float32 and estimate.shape == expected.shape
    np.testing.assert_array_equal(estimate, expected)


def test_wrong_model_or_variant_is_refused():
    profile = tiny_profile()
    with pytest.raises(ValueError, match="outputs 512 bins per frame"):
        predict_utterance(identity_encoder("b1"), signal(70), profile, "proposed")
    with pytest.raises(ValueError, match="unknown encoder variant"):
        predict_utterance(identity_encoder("b1"), signal(70), profile, "b2")
    with pytest.raises(ValueError, match="multiple of hop_size"):
        predict_utterance(identity_encoder("b1"), signal(70)[:-3], profile, "b1")


def test_b1_model_predicts_linear_frames():
    profile = tiny_profile()
    model = build_encoder("b1", profile.encoder)
    estimate = predict_utterance(model, signal(100), profile, "b1")
    assert estimate.shape == (100, 512) and np.all((estimate > 0) & (estimate < 1))


def test_learning_phase_one_changes_output_not_model(trained):
    profile = tiny_profile()
    model = load_trained_encoder(trained, "proposed")
    before = [v.numpy() for v in model.weights]  # BatchNorm statistics included
    x = signal(150)
    clean = predict_utterance(model, x, profile, "proposed")
    np.testing.assert_array_equal(clean, predict_utterance(model, x, profile, "proposed"))
    original = predict_utterance(model, x, profile, "proposed", training=True)
    assert original.shape == clean.shape and not np.allclose(original, clean)
    after = [v.numpy() for v in model.weights]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def test_predict_test_set(trained, monkeypatch):
    profile = tiny_profile()
    errors = predict_test_set(trained, profile, "proposed", progress=False)
    assert list(errors.columns) == list(ERROR_COLUMNS)
    assert errors["pair"].tolist() == [0, 1, 2]
    assert np.isfinite(errors[list(ERROR_COLUMNS)].to_numpy(float)).all()
    assert (errors["e1"] > 0).all() and (errors["mixture_e1"] > 0).all()
    assert errors.attrs["real_time_factor"] == pytest.approx(real_time_factor(errors))
    folder = trained.encoder("proposed")
    pd.testing.assert_frame_equal(pd.read_csv(folder / "errors.csv"), errors)
    manifest = mixing.read_test_manifest(trained.test_manifest)
    for row in manifest.itertuples():
        estimate = np.load(folder / "test" / f"{row.pair:03d}.npy")
        assert estimate.dtype == np.float32 and estimate.shape == (row.num_samples // 256, 80)
    # e1/e2 of pair 0 recomputed by hand from the saved estimate and the target file
    target = audio.load_wav(trained.test_audio / "000_target.wav", 22050)
    _, mel = audio.encoder_features(target, profile.features)
    e1, e2 = encoder_errors(mel, np.load(folder / "test" / "000.npy"))
    assert (e1, e2) == pytest.approx((errors.e1[0], errors.e2[0]))

    # A second call reuses the saved estimates ...
    def fail(*args, **kwargs):
        raise AssertionError("recomputed an estimate that was already made")

    monkeypatch.setattr(inference, "predict_utterance", fail)
    pd.testing.assert_frame_equal(
        predict_test_set(trained, profile, "proposed", progress=False), errors
    )
    # ... but a retrained model (another checkpoint) invalidates them
    monkeypatch.undo()
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return predict_utterance(*args, **kwargs)

    monkeypatch.setattr(inference, "predict_utterance", counting)
    checkpoint = folder / "checkpoint.keras"
    model = load_trained_encoder(trained, "proposed")
    model.set_weights([w * 0.5 for w in model.get_weights()])
    model.save(checkpoint)
    again = predict_test_set(trained, profile, "proposed", progress=False)
    assert len(calls) == 3 and not np.allclose(again["e1"], errors["e1"])


def test_missing_artifacts_name_the_chapter(tmp_path, trained, mini):
    profile = tiny_profile()
    empty = RunPaths(tmp_path, "reduced")
    with pytest.raises(FileNotFoundError, match=r"Chapter 1 \(01_data_simulation\)"):
        predict_test_set(empty, profile, "proposed", progress=False)
    shutil.copytree(mini["data"], empty.data)
    with pytest.raises(FileNotFoundError, match=r"Chapter 2 \(02_encoder\)"):
        predict_test_set(empty, profile, "b1", progress=False)
    with pytest.raises(FileNotFoundError, match=r"Chapter 2 \(02_encoder\)"):
        load_trained_encoder(empty, "proposed")
    (empty.test_audio / "001_mixture.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"001_mixture.wav is missing: run Chapter 1"):
        predict_test_set(
            empty, profile, "proposed", model=identity_encoder("proposed"), progress=False
        )
    # a run folder of the other variant is refused
    shutil.copytree(trained.encoder("proposed"), empty.encoder("b1"))
    with pytest.raises(ValueError, match="holds a 'proposed' encoder"):
        load_trained_encoder(empty, "b1")


def test_given_model_is_identified_by_its_weights(tmp_path, mini):
    profile = tiny_profile()
    paths = RunPaths(tmp_path, "reduced")
    shutil.copytree(mini["data"], paths.data)
    errors = predict_test_set(paths, profile, "b1", model=identity_encoder("b1"), progress=False)
    # the identity 'encoder' returns the mixture: its errors are the mixture's
    np.testing.assert_allclose(errors["e1"], errors["mixture_e1"])
    np.testing.assert_allclose(errors["e2"], errors["mixture_e2"])
    stamp = (paths.encoder("b1") / "test" / "MADE_FROM").read_text()
    assert stamp.startswith("weights ") and "inference" in stamp
    timing = read_timing(paths.encoder_estimates("b1") / "timing.csv")
    assert timing[0]["seconds"] == pytest.approx(errors["seconds"][0], rel=1e-5)
