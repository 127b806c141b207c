"""Damaged Keras files: a truncated or garbage ``.keras`` and a garbage ``state.json`` are
reported by name, with what to do (synthsep_lib.pipeline.keras_training).

Keras itself reports any unreadable ``.keras`` as "File not found", and a bad ``state.json``
used to surface as a bare JSONDecodeError; these tests pin the clearer messages, through
every loader of a trained Keras model.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

pytestmark = pytest.mark.filterwarnings(
    # Keras' own model.save converts variables with np.array(variable) (NumPy 2 notice)
    "ignore:__array__ implementation:DeprecationWarning",
)

from synthsep_lib.pipeline.denoising import load_trained_denoiser  # noqa: E402
from synthsep_lib.pipeline.encoder_training import load_checkpoint  # noqa: E402
from synthsep_lib.pipeline.keras_training import (  # noqa: E402
    CHECKPOINT_NAME,
    STATE_NAME,
    load_keras_file,
    load_training_state,
)
from synthsep_lib.pipeline.runs import RunConfigError, RunPaths  # noqa: E402
from synthsep_lib.pipeline.separators import load_separator  # noqa: E402

ENCODER_CHAPTER = r"Chapter 2 \(02_encoder\)"
B2_CHAPTER = r"Chapter 4 \(04_baselines\)"


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A tiny compiled plain Keras model file (no training state inside), about 11 kB."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.layers[0].set_weights([np.arange(6, dtype="float32").reshape(3, 2), np.ones(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)  # saved with its (zero) slots
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


def damage(good: Path, target: Path, how: str) -> Path:
    """Write a damaged copy of ``good`` at ``target``."""
    data = bytearray(good.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    if how == "empty":
        data = bytearray()
    elif how == "half":  # an interrupted copy: the zip's central directory is lost
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = bytearray(b"this is not a zip file\n" * 20)
    elif how == "bad-crc":  # the zip opens, but the weights' bytes changed
        with zipfile.ZipFile(good) as archive:
            info = archive.getinfo("model.weights.h5")
        assert info.compress_type == zipfile.ZIP_STORED  # so the flipped bytes are raw data
        middle = info.header_offset + 100 + info.compress_size // 2
        data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
    target.write_bytes(bytes(data))
    return target


def _encoder(path: Path, tmp_path: Path):
    return load_checkpoint(path, compile=False)


def _denoiser(path: Path, tmp_path: Path):
    return load_trained_denoiser(RunPaths(tmp_path / "runs", "reduced"))


def _separator(path: Path, tmp_path: Path):
    return load_separator("b2", RunPaths(tmp_path / "runs", "reduced"))


LOADERS = {
    # loader, where it reads the file (under tmp_path), the chapter its message names
    "encoder": (_encoder, "given.keras", ENCODER_CHAPTER),
    "denoiser": (_denoiser, f"runs/reduced/baselines/b2/{CHECKPOINT_NAME}", B2_CHAPTER),
    "separator-b2": (_separator, f"runs/reduced/baselines/b2/{CHECKPOINT_NAME}", B2_CHAPTER),
}


@pytest.mark.parametrize("how", ["empty", "half", "garbage", "bad-crc"])
@pytest.mark.parametrize("loader", list(LOADERS))
def test_damaged_keras_file_is_named_as_damaged(saved_model, tmp_path, loader, how):
    load, where, chapter = LOADERS[loader]
    path = damage(saved_model, tmp_path / where, how)
    with pytest.raises(ValueError) as caught:
        load(path, tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert "damaged or truncated" in message
    assert "not found" not in message.lower()
    assert f"delete it and run {chapter.replace(chr(92), '')}" in message
    assert "\n" not in message  # the CLI shows the first line only


def test_good_keras_files_still_load(saved_model, tmp_path):
    expected = keras.models.load_model(saved_model, compile=False).get_weights()
    encoder = load_checkpoint(saved_model, compile=False)
    b2_file = tmp_path / "runs" / "reduced" / "baselines" / "b2" / CHECKPOINT_NAME
    b2_file.parent.mkdir(parents=True)
    shutil.copyfile(saved_model, b2_file)
    denoiser = load_trained_denoiser(RunPaths(tmp_path / "runs", "reduced"))
    plain = load_keras_file(saved_model)
    for model in (encoder, denoiser, plain):
        for a, b in zip(model.get_weights(), expected, strict=True):
            np.testing.assert_array_equal(a, b)
    assert getattr(plain, "optimizer", None) is None  # compile=False by default
    compiled = load_keras_file(saved_model, compile=True)
    assert float(compiled.optimizer.learning_rate) == pytest.approx(0.01)


def test_missing_keras_file_is_file_not_found(tmp_path):
    missing = tmp_path / "nothing.keras"
    with pytest.raises(FileNotFoundError, match=rf"{ENCODER_CHAPTER}") as caught:
        load_checkpoint(missing, compile=False)
    assert str(missing) in str(caught.value)
    with pytest.raises(FileNotFoundError, match="train it again") as caught:
        load_keras_file(missing, advice="train it again")
    assert str(missing) in str(caught.value)


def test_a_zip_that_is_not_a_keras_model_is_named(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no config.json") as caught:
        load_keras_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "content, what",
    [
        (b'{"epoch": 3, "histo', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "a JSON list"),
        (b'"done"', "a JSON str"),
    ],
)
def test_garbage_state_json_is_named(saved_model, tmp_path, content, what):
    """A checkpoint without embedded state (a plain Keras file) and a bad state.json."""
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copyfile(saved_model, folder / CHECKPOINT_NAME)
    side = folder / STATE_NAME
    side.write_bytes(content)
    with pytest.raises(RunConfigError) as caught:
        load_training_state(folder)
    message = str(caught.value)
    assert str(side) in message and what in message
    assert "training state" in message  # what it should hold
    assert f"delete {folder}" in message  # how to recover


def test_state_json_of_another_checkpoint_is_still_refused(saved_model, tmp_path):
    """A valid state.json whose checkpoint_sha1 differs keeps the existing refusal."""
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copyfile(saved_model, folder / CHECKPOINT_NAME)
    (folder / STATE_NAME).write_text('{"epoch": 1, "checkpoint_sha1": "0000"}')
    with pytest.raises(RunConfigError, match="holds no training state that matches it"):
        load_training_state(folder)
