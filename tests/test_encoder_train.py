"""Encoder training: exact resume, interruption, config checks, feed errors, NaN loss,
MirroredStrategy (synthsep_lib.pipeline.encoder_training).

Most tests swap the encoder for a tiny model (an LSTM and a Dropout with their own
SeedGenerators, BatchNorm, a convolution) that TensorFlow traces in about a second; the
real encoder is trained end to end in tests/test_encoder_inference.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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

from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.files import file_sha1  # noqa: E402
from synthsep_lib.pipeline import encoder_training as train_module  # noqa: E402
from synthsep_lib.pipeline.encoder_feed import FeedError, training_feed  # noqa: E402
from synthsep_lib.pipeline.encoder_training import (  # noqa: E402
    learning_rate_at,
    load_checkpoint,
    train_encoder,
)
from synthsep_lib.pipeline.keras_training import (  # noqa: E402
    NonFiniteLossError,
    feed_dataset,
    read_checkpoint_state,
)
from synthsep_lib.pipeline.runs import RunConfigError, RunPaths  # noqa: E402

DATA_OVERRIDES = ENCODER_TEST_DATA
TINY = {
    "linear_lstm_units": 8,
    "mel_lstm_units": 8,
    "hourglass_filters": 8,
    "batch_size": 4,
    "steps_per_epoch": 2,
    "validation_steps": 1,
    "epochs": 2,
    "feed_workers": 0,
}


def tiny_profile(**encoder):
    return load_profile("reduced", {"data": DATA_OVERRIDES, "encoder": {**TINY, **encoder}})


def tiny_encoder(variant, cfg, *, linear_bins=512, mel_bins=80, block_frames=None):
    """Stand-in for build_encoder: same inputs/outputs, traced in about a second."""
    from keras import layers

    frames = cfg.block_frames
    bins = mel_bins if variant == "proposed" else linear_bins
    input1 = keras.Input((frames, linear_bins), name="input1")
    input2 = keras.Input((frames, mel_bins), name="input2")
    h = layers.Concatenate()([input1, input2])
    h = layers.LSTM(4, dropout=0.25, recurrent_dropout=0.25, return_sequences=True)(h)
    h = layers.Dense(bins)(h)
    h = layers.Dropout(0.25)(h)
    h = layers.Reshape((frames, bins, 1))(h)
    h = layers.BatchNormalization()(h)
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid")(h)
    return keras.Model([input1, input2], out, name=f"tiny_{variant}")


@pytest.fixture(scope="module")
def mini(encoder_mini_run):
    return encoder_mini_run


@pytest.fixture()
def tiny(monkeypatch):
    monkeypatch.setattr(train_module, "build_encoder", tiny_encoder)


def new_paths(tmp_path, mini, name):
    """A run root whose data/ is Chapter 1's (copied) and whose encoder/ is empty."""
    paths = RunPaths(tmp_path / name, "reduced")
    shutil.copytree(mini["data"], paths.data)
    return paths


def train(paths, mini, profile=None, **kwargs):
    kwargs.setdefault("progress", False)
    return train_encoder(
        paths,
        profile or tiny_profile(),
        kwargs.pop("variant", "proposed"),
        lj=kwargs.pop("lj", mini["lj"]),
        esc=mini["esc"],
        splits=mini["splits"],
        **kwargs,
    )


def training_state(folder: Path):
    """Weights and optimizer variables (by position) of a run's checkpoint."""
    model = load_checkpoint(folder / "checkpoint.keras")
    return model.get_weights(), [v.numpy() for v in model.optimizer.variables]


def assert_same_state(a: Path, b: Path):
    weights_a, opt_a = training_state(a)
    weights_b, opt_b = training_state(b)
    assert len(weights_a) == len(weights_b) and len(opt_a) == len(opt_b)
    for x, y in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(opt_a, opt_b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, mini):
    """The reference: 2 epochs in one call (tiny model)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(train_module, "build_encoder", tiny_encoder)
    try:
        paths = new_paths(tmp_path_factory.mktemp("straight"), mini, "runs")
        history = train(paths, mini, epochs=2)
    finally:
        mp.undo()
    return paths.encoder("proposed"), history


def drop_seconds(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"])


# ---------------------------------------------------------------------------------------
def test_learning_rate_schedule():
    cfg = load_profile("paper").encoder
    assert learning_rate_at(0, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(1, cfg) == pytest.approx(9.8e-4)
    # original_code.md#oc-encoder-training: the factor at epoch 499 is 0.98**499 ≈ 4.2e-5
    assert learning_rate_at(499, cfg) == pytest.approx(4.19e-8, rel=5e-3)


def test_straight_run_artifacts(straight_run, mini):
    folder, history = straight_run
    assert history["epoch"].tolist() == [0, 1]
    assert history["learning_rate"].tolist() == pytest.approx([1e-3, 9.8e-4])
    for column in ("loss", "perceptual_loss", "val_loss", "val_perceptual_loss", "seconds"):
        assert np.isfinite(history[column]).all(), column
    config = json.loads((folder / "config.json").read_text())
    assert config["variant"] == "proposed"
    assert config["encoder"]["batch_size"] == 4 and config["features"]["num_mels"] == 80
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] == 2 and state["optimizer_iterations"] == 4
    assert state["learning_rate"] == pytest.approx(9.8e-4)
    assert state["feed"]["seed"] == 1234 and state["feed"]["next_epoch"] == 2
    assert state["checkpoint_sha1"] == file_sha1(folder / "checkpoint.keras")
    assert len(state["rng"]["seed_generator_states_at_save"]) == 2  # LSTM cell + Dropout
    embedded = read_checkpoint_state(folder / "checkpoint.keras")
    assert embedded["epoch"] == 2 and embedded["config"] == config
    assert len(embedded["history"]) == 2
    # a finished run returns its history without building, loading or training a model
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "build_encoder", None)
        mp.setattr(train_module, "load_checkpoint", None)
        again = train_encoder(
            RunPaths(folder.parents[2], "reduced"), tiny_profile(), "proposed", progress=False
        )
    pd.testing.assert_frame_equal(again, history)


def test_resume_is_exact(tmp_path, mini, tiny, straight_run):
    folder_a, history_a = straight_run
    paths = new_paths(tmp_path, mini, "stepwise")
    first = train(paths, mini, epochs=1)
    assert first["epoch"].tolist() == [0]
    folder = paths.encoder("proposed")
    # An interruption between the checkpoint and the rest: state.json and the CSV row
    # missing. Resuming reads the state the checkpoint carries and rewrites both.
    (folder / "state.json").unlink()
    (folder / "history.csv").write_text("epoch,loss\n")
    second = train(paths, mini, epochs=2)
    assert_same_state(folder_a, folder)
    pd.testing.assert_frame_equal(drop_seconds(second), drop_seconds(history_a))
    assert json.loads((folder / "state.json").read_text())["epoch"] == 2


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 0:
            raise KeyboardInterrupt


def test_interrupted_mid_epoch_then_resumed_is_exact(tmp_path, mini, tiny, straight_run):
    folder_a, history_a = straight_run
    paths = new_paths(tmp_path, mini, "interrupted")
    with pytest.raises(KeyboardInterrupt):
        train(paths, mini, epochs=2, callbacks=[_Interrupt()])
    folder = paths.encoder("proposed")
    assert json.loads((folder / "state.json").read_text())["epoch"] == 1
    assert pd.read_csv(folder / "history.csv")["epoch"].tolist() == [0]
    resumed = train(paths, mini, epochs=2)
    assert_same_state(folder_a, folder)
    pd.testing.assert_frame_equal(drop_seconds(resumed), drop_seconds(history_a))


def test_changed_settings_are_refused_on_resume(tmp_path, mini, tiny):
    paths = new_paths(tmp_path, mini, "config")
    train(paths, mini, epochs=1)
    with pytest.raises(RunConfigError, match=r"encoder\.batch_size \(stored 4, now 2\)") as info:
        train(paths, mini, tiny_profile(batch_size=2, learning_rate=0.01), epochs=2)
    assert "encoder.learning_rate" in str(info.value)
    # more epochs and another number of feed workers are not a different run
    history = train(paths, mini, tiny_profile(epochs=3, feed_workers=0), epochs=2)
    assert history["epoch"].tolist() == [0, 1]


class _CorruptOne:
    """An LJSpeech reader whose ``load_target`` returns NaN samples for one utterance."""

    def __init__(self, lj, bad: str):
        self._lj, self.bad = lj, bad

    def __getattr__(self, name):
        return getattr(self._lj, name)

    def load_target(self, utt, cfg):
        s1 = self._lj.load_target(utt, cfg)
        if utt == self.bad:
            s1 = s1.copy()
            s1[len(s1) // 2] = np.nan
        return s1


@pytest.mark.parametrize("workers", [0, 1])
def test_feed_error_reaches_the_caller(tmp_path, mini, tiny, workers):
    profile = tiny_profile(steps_per_epoch=3, feed_workers=workers)
    feed = training_feed(mini["lj"], mini["esc"], mini["splits"], profile, "proposed")
    # Batches 0 and 1 may be read before training to learn the shapes (Keras reads
    # both, feed_dataset batch 0); batch 2 goes through tf.data (and, with a worker,
    # through a worker process).
    early = {p.utterance for i in (0, 1) for p in feed.batch_plan(i, 0)}
    late = [p.utterance for p in feed.batch_plan(2, 0) if p.utterance not in early]
    assert late, "no utterance is only in batch 2; pick another seed"
    paths = new_paths(tmp_path, mini, "feed")
    with pytest.raises(FeedError, match=late[0]) as info:
        train(paths, mini, profile, epochs=1, lj=_CorruptOne(mini["lj"], late[0]))
    assert "NaN" in str(info.value)
    assert [u for u, _ in info.value.sources] == [late[0]]
    assert not (paths.encoder("proposed") / "checkpoint.keras").exists()


def test_fit_draws_the_feeds_batches_in_order_without_the_tf_data_autotuner(mini):
    profile = tiny_profile(steps_per_epoch=3)
    feed = training_feed(mini["lj"], mini["esc"], mini["splits"], profile, "proposed")
    dataset = feed_dataset(feed)
    # the autotuner stalled an epoch's first step by seconds (feed_dataset's docstring)
    assert dataset.options().autotune.enabled is False
    assert int(dataset.cardinality()) == 3
    drawn = list(dataset.as_numpy_iterator())
    assert len(drawn) == 3
    for i, (inputs, target) in enumerate(drawn):
        expected_inputs, expected_target = feed[i]
        assert inputs.keys() == expected_inputs.keys()
        for name in inputs:
            np.testing.assert_array_equal(inputs[name], expected_inputs[name])
        np.testing.assert_array_equal(target, expected_target)
    # a feed with worker processes goes to Keras' own queue, which turns autotuning off
    workers = training_feed(
        mini["lj"], mini["esc"], mini["splits"], tiny_profile(feed_workers=2), "proposed"
    )
    assert feed_dataset(workers) is workers


def nan_encoder(variant, cfg, *, linear_bins=512, mel_bins=80, block_frames=None):
    from keras import layers

    model = tiny_encoder(variant, cfg, linear_bins=linear_bins, mel_bins=mel_bins)
    out = layers.Lambda(lambda t: t * float("nan"))(model.output)
    return keras.Model(model.inputs, out)


def test_nan_loss_stops_without_saving(tmp_path, mini, monkeypatch):
    monkeypatch.setattr(train_module, "build_encoder", nan_encoder)
    paths = new_paths(tmp_path, mini, "nan")
    with pytest.raises(NonFiniteLossError, match="training loss became nan at batch 0 of epoch 0"):
        train(paths, mini, epochs=1)
    assert not (paths.encoder("proposed") / "checkpoint.keras").exists()


def test_missing_splits_name_chapter_1(tmp_path, mini):
    with pytest.raises(FileNotFoundError, match=r"Chapter 1 \(01_data_simulation\)"):
        train_encoder(RunPaths(tmp_path, "reduced"), tiny_profile(), "proposed", progress=False)
    with pytest.raises(ValueError, match="unknown encoder variant"):
        train_encoder(RunPaths(tmp_path, "reduced"), tiny_profile(), "b2", progress=False)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    from synthsep_lib import corpora
    from synthsep_lib.pipeline import encoder_training as train_module
    from synthsep_lib.pipeline.runs import RunPaths

    sys.path.insert(0, sys.argv[2])
    from test_encoder_train import tiny_encoder, tiny_profile

    train_module.build_encoder = tiny_encoder
    args = json.loads(sys.argv[1])
    paths = RunPaths(args["run_root"], "reduced")
    history = train_module.train_encoder(
        paths,
        tiny_profile(steps_per_epoch=2),
        "b1",
        lj=corpora.LJSpeech(args["lj"]),
        esc=corpora.ESC50(args["esc"]),
        epochs=1,
        strategy=strategy,
        progress=True,
    )
    print("REPLICAS", strategy.num_replicas_in_sync)
    print("ROWS", len(history))
    """
)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, mini):
    paths = new_paths(tmp_path, mini, "mirrored")
    args = {
        "run_root": str(tmp_path / "mirrored"),
        "lj": str(mini["lj"].root),
        "esc": str(mini["esc"].root),
    }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, json.dumps(args), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REPLICAS 2" in result.stdout and "ROWS 1" in result.stdout
    folder = paths.encoder("b1")
    assert (folder / "checkpoint.keras").exists()
    history = pd.read_csv(folder / "history.csv")
    assert history["epoch"].tolist() == [0] and np.isfinite(history["loss"]).all()
    assert json.loads((folder / "state.json").read_text())["optimizer_iterations"] == 2
