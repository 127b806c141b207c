"""Baseline B2 (synthsep_lib.baselines.denoising_wavenet and ..._train): the paper's
network size, outputs aligned with their inputs, the segment feed, exact resume with the
plateau schedule, and the test-set runner.

Training tests use a tiny configuration (receptive field 15, target field 64) that
TensorFlow traces in about a second.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

pytestmark = pytest.mark.filterwarnings(
    # Keras' own model.save converts variables with np.array(variable) (NumPy 2 notice)
    "ignore:__array__ implementation:DeprecationWarning",
)

from conftest import ENCODER_TEST_DATA  # noqa: E402
from keras import layers  # noqa: E402

from synthsep_lib import audio  # noqa: E402
from synthsep_lib.baselines.denoising_wavenet import (  # noqa: E402
    build_denoising_wavenet,
    conditioning_parameters,
    denoise,
)
from synthsep_lib.config import DenoiserConfig, load_profile  # noqa: E402
from synthsep_lib.encoder.model import count_parameters  # noqa: E402
from synthsep_lib.pipeline.denoiser_training import (  # noqa: E402
    SegmentFeed,
    count_segments,
    segment_feeds,
    train_denoiser,
)
from synthsep_lib.pipeline.denoising import denoise_test_set, load_trained_denoiser  # noqa: E402
from synthsep_lib.pipeline.encoder_feed import FeedError  # noqa: E402
from synthsep_lib.pipeline.runs import RunConfigError, RunPaths  # noqa: E402

TINY = {
    "stacks": 1,
    "dilation_depth": 2,  # dilations 1, 2, 4: receptive field 15
    "residual_filters": 4,
    "skip_filters": 4,
    "final_filters": [8, 4],
    "target_field": 64,  # input windows of 78 samples, outputs of 66
    "batch_size": 4,
    "steps_per_epoch": 2,
    "validation_steps": 1,
    "epochs": 2,
    "inference_batch": 3,
    "feed_workers": 0,
}
# A plateau that cuts the rate whenever it may: no epoch counts as an improvement.
EAGER_PLATEAU = {"lr_patience": 1, "lr_cooldown": 2, "lr_min_delta": 1e9}


def tiny_profile(**denoiser):
    return load_profile("reduced", {"data": ENCODER_TEST_DATA, "denoiser": {**TINY, **denoiser}})


TINY_CFG = tiny_profile().denoiser


def centre_model(cfg, shift: int = 0):
    """A stand-in with B2's inputs and outputs whose speech is the window itself at the
    padded target field (moved ``shift`` samples later), and whose noise is 0."""
    n, p = cfg.input_length, cfg.padded_target_field
    first = cfg.half_receptive_field - cfg.target_padding + shift
    window = keras.Input((n,), name="mixture")
    x = layers.Reshape((n, 1))(window)
    speech = layers.Reshape((p,), name="speech")(layers.Cropping1D((first, n - first - p))(x))
    noise = layers.Subtract(name="noise")([speech, speech])
    return keras.Model(window, {"speech": speech, "noise": noise})


def silent_speech_model(cfg):
    """The real network with its last layer zeroed: speech 0, noise = the window."""
    model = build_denoising_wavenet(cfg)
    last = model.get_layer("speech_conv")
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    return model


# ---------------------------------------------------------------------------------------
# Configuration and network
# ---------------------------------------------------------------------------------------
def test_profiles_and_geometry():
    paper = load_profile("paper").denoiser
    assert paper == DenoiserConfig()
    assert (paper.receptive_field, paper.half_receptive_field) == (6139, 3069)
    assert (paper.target_field, paper.padded_target_field, paper.input_length) == (1601, 1603, 7739)
    reduced = load_profile("reduced").denoiser
    assert reduced.receptive_field == 2 * 2 * 127 + 1 and reduced.final_filters == (128, 64)
    assert TINY_CFG.input_length == 78 and TINY_CFG.padded_target_field == 66


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"final_filters": [8, 4, 2]}, "final_filters must be two"),
        ({"kernel_size": 2}, "kernel_size must be odd"),
        ({"target_padding": 8}, r"target_padding must be in \[0, 7\]"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_profile(**settings)


def test_paper_network_has_the_authors_parameter_count():
    cfg = DenoiserConfig()
    model = build_denoising_wavenet(cfg)
    assert tuple(model.inputs[0].shape) == (None, 7739)
    assert {k: tuple(t.shape) for k, t in model.output.items()} == {
        "speech": (None, 1603),
        "noise": (None, 1603),
    }
    assert count_parameters(model)["total"] == 6_292_097
    assert conditioning_parameters(cfg) == 50_560
    # original_code.md#oc-b2-architecture: the authors' model, zero-fed condition layers included
    assert count_parameters(model)["total"] + conditioning_parameters(cfg) == 6_342_657


def test_noise_is_the_window_minus_speech_at_the_padded_target_field():
    cfg = TINY_CFG
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, cfg.input_length)).astype(np.float32)
    first = cfg.half_receptive_field - cfg.target_padding  # 6 here, 3068 in the paper
    centre = x[:, first : first + cfg.padded_target_field]
    out = build_denoising_wavenet(cfg).predict_on_batch(x)
    np.testing.assert_allclose(out["speech"] + out["noise"], centre, atol=1e-6)
    assert np.abs(out["speech"]).max() > 0
    silent = silent_speech_model(cfg).predict_on_batch(x)
    np.testing.assert_array_equal(silent["speech"], 0.0)
    np.testing.assert_array_equal(silent["noise"], centre)


# ---------------------------------------------------------------------------------------
# Whole-file denoising: aligned, same length
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 63, 64, 65, 5 * 64 + 7])
def test_denoise_is_aligned_with_its_input(length):
    cfg = TINY_CFG
    x = np.random.default_rng(length).uniform(-1, 1, length).astype(np.float32)
    speech, noise = denoise(centre_model(cfg), x, cfg, batch_size=2, return_noise=True)
    assert speech.shape == noise.shape == (length,)
    np.testing.assert_array_equal(speech, x)  # output[j] ↔ input[j]
    np.testing.assert_array_equal(noise, 0.0)
    # a model whose output is one sample late shows up one sample early: nothing is
    # shifted or re-aligned behind the model's back
    late = denoise(centre_model(cfg, shift=1), x, cfg)
    np.testing.assert_array_equal(late[:-1], x[1:])
    assert late[-1] == 0.0


def test_denoise_with_the_real_network_is_aligned():
    cfg = TINY_CFG
    x = np.random.default_rng(1).uniform(-1, 1, 3 * cfg.target_field + 5).astype(np.float32)
    speech, noise = denoise(silent_speech_model(cfg), x, cfg, return_noise=True)
    np.testing.assert_array_equal(speech, 0.0)
    np.testing.assert_array_equal(noise, x)
    trained_like = build_denoising_wavenet(cfg)
    one = denoise(trained_like, x, cfg, batch_size=1)
    many = denoise(trained_like, x, cfg, batch_size=64)
    np.testing.assert_allclose(one, many, atol=1e-6)


@pytest.mark.parametrize(
    ("mixture", "kwargs", "message"),
    [
        (np.zeros((2, 100)), {}, r"1-D array of samples; got shape \(2, 100\)"),
        (np.zeros(0), {}, "non-empty"),
        (np.array([0.0, np.nan]), {}, "NaN"),
        (np.zeros(100), {"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_denoise_rejects_bad_input(mixture, kwargs, message):
    with pytest.raises(ValueError, match=message):
        denoise(centre_model(TINY_CFG), mixture, TINY_CFG, **kwargs)


def test_denoise_rejects_a_model_of_other_settings():
    with pytest.raises(ValueError, match="windows of 78 samples .* say 7739 and 1603"):
        denoise(centre_model(TINY_CFG), np.zeros(100), DenoiserConfig())


# ---------------------------------------------------------------------------------------
# The segment feed
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("samples", "expected"), [(15_477, 0), (15_478, 1), (46_433, 2), (61_912, 4), (10**6, 4)]
)
def test_count_segments_is_the_authors_rule(samples, expected):
    assert count_segments(samples, 7739, 4) == expected


@pytest.fixture(scope="module")
def mini(encoder_mini_run):
    return encoder_mini_run


def test_segment_feed_batches(mini):
    profile = tiny_profile()
    cfg = profile.denoiser
    train, valid = segment_feeds(mini["lj"], mini["esc"], mini["splits"], profile)
    x, y = train[1]
    assert x.shape == (4, 78) and x.dtype == np.float32
    assert y["speech"].shape == y["noise"].shape == (4, 66)
    first = cfg.half_receptive_field - cfg.target_padding
    # mixture = scaled target + scaled noise, so the two targets add up to the input
    np.testing.assert_allclose(x[:, first : first + 66], y["speech"] + y["noise"], atol=1e-6)
    assert np.abs(y["speech"]).max() > 0 and np.abs(y["noise"]).max() > 0
    plan = train.batch_plan(1)
    assert sum(len(p.starts) for p in plan) == 4
    for p in plan:
        length = p.num_frames * 256
        assert len(p.starts) + p.discarded == count_segments(length, 78, cfg.max_segments)
        assert all(0 <= s < length - 78 for s in p.starts)
    # batch (epoch, index) is a pure function of the seed: a new feed serves the same
    again = SegmentFeed(
        mini["lj"], mini["esc"], mini["splits"].target_train, mini["splits"].noise_train, profile
    )
    again.set_epoch(1)
    train.set_epoch(1)
    np.testing.assert_array_equal(again[0][0], train[0][0])
    train.set_epoch(0)
    assert not np.array_equal(again[0][0], train[0][0])
    # validation: the same batches every epoch
    before = valid[0][0]
    valid.set_epoch(3)
    np.testing.assert_array_equal(valid[0][0], before)
    assert "SegmentFeed(" in repr(train)


class _CorruptOne:
    """An LJSpeech reader whose ``load_target`` returns NaN samples for one utterance."""

    def __init__(self, lj, bad: str):
        self._lj, self.bad = lj, bad

    def __getattr__(self, name):
        return getattr(self._lj, name)

    def load_target(self, utt, cfg):
        s1 = self._lj.load_target(utt, cfg).copy()
        if utt == self.bad:
            s1[len(s1) // 2] = np.nan
        return s1


def test_feed_names_the_utterance_it_cannot_mix(mini):
    profile = tiny_profile()
    bad = SegmentFeed(
        mini["lj"], mini["esc"], mini["splits"].target_train, mini["splits"].noise_train, profile
    ).batch_plan(0)[0]
    feed = SegmentFeed(
        _CorruptOne(mini["lj"], bad.utterance),
        mini["esc"],
        mini["splits"].target_train,
        mini["splits"].noise_train,
        profile,
    )
    with pytest.raises(FeedError, match=f"{bad.utterance}.*NaN") as info:
        feed[0]
    assert info.value.sources == [(bad.utterance, bad.noise)]


# ---------------------------------------------------------------------------------------
# Training: exact resume, plateau schedule, settings; the test-set runner
# ---------------------------------------------------------------------------------------
def new_paths(root, mini):
    paths = RunPaths(root, "reduced")
    shutil.copytree(mini["data"], paths.data)
    return paths


def train(paths, mini, profile, **kwargs):
    return train_denoiser(
        paths,
        profile,
        lj=mini["lj"],
        esc=mini["esc"],
        splits=mini["splits"],
        progress=kwargs.pop("progress", False),
        **kwargs,
    )


def training_state(paths):
    model = keras.models.load_model(paths.baseline("b2") / "checkpoint.keras")
    return model.get_weights() + [v.numpy() for v in model.optimizer.variables]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, mini):
    """The reference: 4 epochs in one call, with a plateau that cuts the rate eagerly."""
    paths = new_paths(tmp_path_factory.mktemp("b2_straight"), mini)
    history = train(paths, mini, tiny_profile(**EAGER_PLATEAU), epochs=4, progress=True)
    return paths, history


def test_straight_run_artifacts(straight_run):
    paths, history = straight_run
    folder = paths.baseline("b2")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    # no epoch improves: cut after epoch 1, two epochs of cooldown, cut after epoch 3
    assert history["learning_rate"].tolist() == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])
    for column in ("loss", "speech_loss", "noise_loss", "val_loss", "seconds"):
        assert np.isfinite(history[column]).all(), column
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] == 4 and state["optimizer_iterations"] == 8
    assert state["next_learning_rate"] == pytest.approx(1e-5)
    assert state["plateau"]["cooldown_counter"] == 2 and state["plateau"]["wait"] == 0
    config = json.loads((folder / "config.json").read_text())
    assert config["method"] == "b2" and config["denoiser"]["final_filters"] == [8, 4]
    assert list((folder / "logs").rglob("events.out.tfevents.*"))


def test_resume_is_exact(tmp_path, mini, straight_run):
    reference, history = straight_run
    profile = tiny_profile(**EAGER_PLATEAU)
    paths = new_paths(tmp_path, mini)
    folder = paths.baseline("b2")
    train(paths, mini, profile, epochs=1)  # resuming after 1 needs the best loss so far
    train(paths, mini, profile, epochs=2)  # resuming after 2 needs the cooldown left
    # an interruption after the checkpoint was written: state.json and the CSV row lost
    (folder / "state.json").unlink()
    (folder / "history.csv").write_text("epoch,loss\n")
    resumed = train(paths, mini, profile, epochs=4)
    for a, b in zip(training_state(reference), training_state(paths), strict=True):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(
        resumed.drop(columns=["seconds"]), history.drop(columns=["seconds"])
    )


def test_changed_settings_are_refused(straight_run, tmp_path):
    paths = straight_run[0]
    with pytest.raises(RunConfigError, match=r"denoiser\.batch_size \(stored 4, now 2\)"):
        train_denoiser(paths, tiny_profile(**EAGER_PLATEAU, batch_size=2), progress=False)
    # more epochs to reach, other feed workers or inference batch: the same run, finished
    same = tiny_profile(**EAGER_PLATEAU, feed_workers=1, inference_batch=7, epochs=4)
    history = train_denoiser(paths, same, progress=False)
    assert history.attrs["initial_epoch"] == 4 and len(history) == 4
    with pytest.raises(FileNotFoundError, match=r"Chapter 1 \(01_data_simulation\)"):
        train_denoiser(RunPaths(tmp_path, "reduced"), tiny_profile(), progress=False)


def test_denoise_test_set_writes_aligned_outputs_and_resumes(straight_run, tmp_path, mini):
    paths = straight_run[0]
    profile = tiny_profile(**EAGER_PLATEAU)
    first = denoise_test_set(paths, profile, progress=False)
    assert first["written"].all() and len(first) == 3
    model = load_trained_denoiser(paths)
    for row in first.itertuples():
        mixture = audio.load_wav(paths.test_audio / f"{row.pair:03d}_mixture.wav", 22050)
        output = audio.load_wav(row.path, 22050)
        assert output.shape == mixture.shape
        np.testing.assert_allclose(output, denoise(model, mixture, profile), atol=1e-6)
    timing = pd.read_csv(paths.outputs("b2") / "timing.csv")
    assert timing.columns.tolist() == ["pair", "seconds", "audio_seconds"]
    assert timing["pair"].tolist() == first["pair"].tolist() and (timing["seconds"] > 0).all()
    again = denoise_test_set(paths, profile, progress=False)
    assert not again["written"].any()
    np.testing.assert_allclose(again["seconds"], first["seconds"], rtol=1e-5)
    # another model's outputs are not kept
    other = denoise_test_set(paths, profile, model=centre_model(profile.denoiser), progress=False)
    assert other["written"].all()
    with pytest.raises(FileNotFoundError, match=r"Chapter 4 \(04_baselines\)"):
        denoise_test_set(new_paths(tmp_path / "fresh", mini), profile, progress=False)
