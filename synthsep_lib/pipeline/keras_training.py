"""One resumable Keras trainer for every Keras model of the book (the encoders, B2).

A run folder holds::

    config.json       the settings the run depends on (written at the start)
    checkpoint.keras  the full model after the last finished epoch, optimizer state
                      included; it also holds a copy of state.json (a
                      ``synthsep_state.json`` entry in the zip)
    state.json        epochs done, schedule and feed state, RNG scheme, the per-epoch
                      logs so far and the SHA-1 of the checkpoint it belongs to
    history.csv       one row per epoch (Keras' CSVLogger)
    logs/             TensorBoard event files

:func:`open_run_folder` resumes what is there (refusing other settings, by name) or
starts clean; :func:`fit_resumable` runs ``model.fit`` with the callbacks that make a run
exact to resume, logged and safe; :class:`SaveCheckpoint` writes the checkpoint and its
state atomically after every epoch. Files are written in that order — checkpoint (with
its embedded state), ``state.json``, the row of ``history.csv`` — so an interruption
between any two leaves a consistent run: on resume the state is read from the
checkpoint itself and ``history.csv`` is rewritten from it.
"""

from __future__ import annotations

import csv
import datetime
import importlib.util
import json
import math
import os
import random
import re
import shutil
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from synthsep_lib.files import atomic_path, file_sha1, write_json_atomic
from synthsep_lib.pipeline.encoder_feed import FeedError
from synthsep_lib.pipeline.runs import RunConfigError, check_same_settings

__all__ = [
    "CHECKPOINT_NAME",
    "STATE_NAME",
    "CONFIG_NAME",
    "HISTORY_NAME",
    "LOG_DIR_NAME",
    "NonFiniteLossError",
    "default_strategy",
    "tensorboard_available",
    "read_checkpoint_state",
    "load_keras_file",
    "load_training_state",
    "open_run_folder",
    "fit_resumable",
    "feed_dataset",
    "TrainingSetup",
    "train_resumable",
    "feed_state",
    "SaveCheckpoint",
    "seed_states",
    "Determinism",
    "EpochSeconds",
    "EpochProgress",
    "StopOnNonFinite",
    "as_numpy",
    "feed_error_from",
    "read_history",
    "write_history",
]

CHECKPOINT_NAME = "checkpoint.keras"


STATE_NAME = "state.json"


CONFIG_NAME = "config.json"


HISTORY_NAME = "history.csv"


LOG_DIR_NAME = "logs"


#: Entry of the checkpoint's zip file that holds its copy of ``state.json``.
STATE_ENTRY = "synthsep_state.json"


_SEED_TAG = 2  # keeps the SeedGenerator reseeding apart from the feed's seed sequences


class NonFiniteLossError(FloatingPointError):
    """The training or validation loss became NaN or infinite; training was stopped."""


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed (Keras' TensorBoard callback needs it)."""
    return importlib.util.find_spec("tensorboard") is not None


def default_strategy():
    """``tf.distribute.MirroredStrategy()`` over all GPUs if there are several, else the
    default (single-device) strategy.
    """
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------
#: What a ``.keras`` file always holds (Keras 3's saving format).
_KERAS_CONFIG_ENTRY = "config.json"


#: Errors of reading a zip file that mean its bytes are not what was written.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)


def _damaged(path: str | os.PathLike, detail: object, advice: str) -> ValueError:
    """The one-line error of an unreadable Keras file: its path, why, and what to do."""
    return ValueError(
        f"{path} is damaged or truncated, not a readable Keras model file ({detail}); "
        f"delete it and {advice}"
    )


def read_checkpoint_state(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The training state stored inside a checkpoint written by :class:`SaveCheckpoint`.

    Parameters
    ----------
    checkpoint : path-like
        A ``checkpoint.keras`` file.

    Returns
    -------
    dict or None
        The state (same content as ``state.json`` without ``checkpoint_sha1``), or None
        if the file holds none (a plain Keras model file).

    Raises
    ------
    ValueError
        If the file is not a readable ``.keras`` (zip) file (damaged or truncated); the
        message names it and says to delete it and train afresh.
    """
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            if STATE_ENTRY not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_ENTRY).decode("utf-8"))
    except (*_ZIP_ERRORS, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _damaged(checkpoint, err, "train afresh") from err


def load_keras_file(
    path: str | os.PathLike,
    *,
    compile: bool = False,
    custom_objects: dict[str, Any] | None = None,
    advice: str = "save or train the model again",
) -> keras.Model:
    """``keras.models.load_model`` that names a missing or damaged file and what to do.

    Keras reports every unreadable ``.keras`` file (empty, truncated by an interrupted copy,
    not a zip file) as "File not found", and a damaged entry as a bare ``BadZipFile``;
    here the zip is opened first and any such failure becomes one sentence naming
    ``path``.

    Parameters
    ----------
    path : path-like
        A ``.keras`` file.
    compile : bool
        Restore the optimizer (and its state) and the loss too; False for inference only.
    custom_objects : dict, optional
        Passed to ``keras.models.load_model`` (e.g. a custom loss).
    advice : str
        How to get a good file, a lowercase clause, e.g. ``"run Chapter 2 (02_encoder)
        again to train the encoder"``; the messages end with it.

    Returns
    -------
    keras.Model

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a zip file, is truncated or fails a CRC check (the message names
        it and says to delete it and follow ``advice``), or is a zip file but no Keras
        model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; {advice}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except _ZIP_ERRORS as err:
        raise _damaged(path, err, advice) from err
    if _KERAS_CONFIG_ENTRY not in names:
        raise ValueError(
            f"{path} is a zip file but no Keras model file (it has no {_KERAS_CONFIG_ENTRY}); "
            f"{advice}"
        )
    try:
        return keras.models.load_model(path, custom_objects=custom_objects, compile=compile)
    except _ZIP_ERRORS as err:  # an entry's bytes changed: Keras reads it and the CRC fails
        raise _damaged(path, err, advice) from err


def seed_states(model: keras.Model) -> list:
    """The state variables of every ``SeedGenerator`` of the model, in layer order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _reseed(model: keras.Model, seed: int, epoch: int) -> None:
    """Derive the random state of ``epoch`` from ``(seed, epoch)`` (see the module notes).

    Python's and NumPy's generators get ``seed + epoch``; every ``SeedGenerator`` of the
    model (the dropout masks) a state drawn from ``SeedSequence([seed, 2, epoch, i])``.
    TensorFlow's global seed is set once per training call, not here: it
    is part of the key under which ``tf.function`` caches the traced train step, so a new
    value every epoch would retrace it (about 6 s per epoch on 2 CPU cores, and a cache
    that grows without bound). The train step draws no random numbers from it.
    """
    random.seed(int(seed) + int(epoch))
    np.random.seed(int(seed) + int(epoch))
    for i, state in enumerate(seed_states(model)):
        entropy = np.random.SeedSequence([int(seed), _SEED_TAG, int(epoch), i])
        value = int(entropy.generate_state(1, np.uint32)[0] % (2**31 - 1)) + 1
        state.assign(np.array([value, 0], dtype=state.dtype))


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` (per-epoch logs) as CSVLogger would: epoch first, then sorted keys."""
    if not rows:
        if path.exists():
            path.unlink()
        return
    keys = sorted({k for row in rows for k in row if k != "epoch"})
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["epoch"] + keys)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "NA") for k in ["epoch"] + keys})


def read_history(path: Path) -> pd.DataFrame:
    """``history.csv`` as written by :func:`write_history` (empty if there is none)."""
    if not path.exists():
        return pd.DataFrame(columns=["epoch"])
    return pd.read_csv(path)


# ---------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------
class Determinism(keras.callbacks.Callback):
    """At each epoch start: random state from ``(seed, epoch)`` for Python, NumPy, TF and
    the model's SeedGenerators."""

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_epoch_begin(self, epoch, logs=None):
        _reseed(self.model, self.seed, epoch)


class EpochSeconds(keras.callbacks.Callback):
    """Adds ``seconds`` (wall time of the epoch, validation included) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._t0


def as_numpy(value) -> np.ndarray:
    """A NumPy copy of a float, tensor or Keras variable."""
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(as_numpy(value)))
    except (TypeError, ValueError):
        return True


class StopOnNonFinite(keras.callbacks.Callback):
    """Like ``keras.callbacks.TerminateOnNaN``, but raises at once with a clear message,
    so that the epoch is neither finished nor checkpointed."""

    def __init__(self, last_saved: int):
        super().__init__()
        self.last_saved = last_saved
        self.epoch = 0

    def _message(self, what: str, value, where: str) -> str:
        lr = float(as_numpy(self.model.optimizer.learning_rate))
        saved = (
            f"the checkpoint holds the model after epoch {self.last_saved}"
            if self.last_saved
            else "no checkpoint was written yet"
        )
        return (
            f"the {what} became {float(as_numpy(value))} {where} of epoch {self.epoch} "
            f"(learning rate {lr:.3g}); training stopped before saving this epoch, {saved}. "
            "Non-finite input blocks would have been reported by the data feed, so try a "
            "lower learning rate or restart from the checkpoint."
        )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get("loss")
        if value is not None and not _finite(value):
            raise NonFiniteLossError(self._message("training loss", value, f"at batch {batch}"))

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not _finite(value):
                raise NonFiniteLossError(self._message(key, value, "at the end"))
        self.last_saved = epoch + 1


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over the steps of all remaining epochs, with the latest losses."""

    def __init__(self, label: str, initial_epoch: int, epochs: int, steps: int):
        super().__init__()
        self.label, self.epochs, self.steps = label, epochs, steps
        self.initial_epoch = initial_epoch
        self.bar = None
        self.postfix: dict[str, str] = {}

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=(self.epochs - self.initial_epoch) * self.steps,
            desc=self.label,
            unit="step",
        )

    def on_epoch_begin(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.set_description(f"{self.label} epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            if logs and "loss" in logs:
                self.postfix["loss"] = f"{float(as_numpy(logs['loss'])):.4g}"
            self.bar.set_postfix(self.postfix, refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None and logs and "val_loss" in logs:
            self.postfix["val_loss"] = f"{float(as_numpy(logs['val_loss'])):.4g}"
            self.bar.set_postfix(self.postfix)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SaveCheckpoint(keras.callbacks.Callback):
    """Saves the full model and the training state after every epoch, atomically.

    Parameters
    ----------
    folder : Path
        The run folder.
    config : dict
        The run's settings, stored in the state (compared on resume).
    epochs : int
        Epochs planned.
    history : list of dict
        Logged epochs so far; each epoch's logs are appended.
    trainer_state : callable
        ``trainer_state(model, epoch, row) -> dict``: what else this trainer needs to
        resume exactly (learning rates, feed state, RNG scheme …), merged into the state.
    """

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        epochs: int,
        history: list[dict[str, Any]],
        trainer_state: Callable[[keras.Model, int, dict[str, float]], dict[str, Any]],
    ):
        super().__init__()
        self.folder, self.config, self.epochs = folder, config, epochs
        self.history, self.trainer_state = history, trainer_state

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch)}
        row.update({key: float(as_numpy(value)) for key, value in (logs or {}).items()})
        self.history.append(row)
        state = {
            "epoch": int(epoch) + 1,
            "epochs_planned": self.epochs,
            "optimizer_iterations": int(as_numpy(self.model.optimizer.iterations)),
            **self.trainer_state(self.model, int(epoch), row),
            "config": self.config,
            "history": self.history,
            "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        }
        checkpoint = self.folder / CHECKPOINT_NAME
        with atomic_path(checkpoint) as tmp:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(STATE_ENTRY, json.dumps(state, indent=2, sort_keys=True))
            sha1 = file_sha1(tmp)
        write_json_atomic(self.folder / STATE_NAME, {**state, "checkpoint_sha1": sha1})


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
_FEED_ERROR = re.compile(rf"{FeedError.__name__}: ([^\n]+)")


_FEED_SOURCE = re.compile(r"'([^']+)' with noise '([^']+)'")


def feed_error_from(err: BaseException) -> FeedError | None:
    """The data feed's error carried (as text) by a TensorFlow error from ``fit``.

    Batches pass through ``tf.data`` (and, with workers, a process pool), which turns a
    Python exception into a TensorFlow error whose message holds the original one; the
    feed's message (naming the utterance and noise file) is taken back out of it.
    """
    match = _FEED_ERROR.search(str(err))
    if match is None:
        return None
    message = match.group(1)
    return FeedError(message, _FEED_SOURCE.findall(message))


def _read_side_state(side: Path, checkpoint: Path) -> dict[str, Any]:
    """``state.json`` beside ``checkpoint``: a JSON object, or an error naming the file."""
    fresh = f"delete {side.parent} (or use another run root) to train afresh"
    expected = f"it should hold the training state of {checkpoint} as a JSON object"
    try:
        state = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunConfigError(f"{side} is not valid JSON ({err}); {expected}; {fresh}") from err
    if not isinstance(state, dict):
        raise RunConfigError(
            f"{side} holds a JSON {type(state).__name__}, not an object; {expected}; {fresh}"
        )
    return state


def load_training_state(folder: Path) -> dict[str, Any] | None:
    """State of the run in ``folder``, or None for a fresh run.

    Raises
    ------
    RunConfigError
        The checkpoint holds no state and ``state.json`` is missing, not a JSON object
        or of another checkpoint; the message names the file and says to train afresh.
    ValueError
        The checkpoint is damaged or truncated (see :func:`read_checkpoint_state`).
    """
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.exists():
        return None
    state = read_checkpoint_state(checkpoint)
    if state is None:
        side = folder / STATE_NAME
        if side.exists():
            state = _read_side_state(side, checkpoint)
            if state.get("checkpoint_sha1") != file_sha1(checkpoint):
                state = None
        if state is None:
            raise RunConfigError(
                f"{checkpoint} holds no training state that matches it, so training cannot "
                "resume from it exactly; delete the folder (or use another run root) to "
                "train afresh"
            )
    return state


def open_run_folder(
    folder: Path, config: dict[str, Any], what: str, resumable: Sequence[str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], int]:
    """Get a Keras run folder ready to train: resume what is there, or start clean.

    With a checkpoint in ``folder`` its stored settings must equal ``config`` except for
    the ``resumable`` keys (else :class:`RunConfigError` names the differences); its
    history is rewritten from the checkpoint (rows of an epoch that was not saved go).
    Without one, the history and TensorBoard logs of an aborted earlier attempt are
    removed, so nothing of it mixes with the new run. ``config.json`` is (re)written.

    Parameters
    ----------
    folder : Path
        The run folder (created).
    config : dict
        The settings of this run (``config.json``).
    what : str
        Name of the model in messages ("encoder", "B2").
    resumable : sequence of str
        Flattened keys that may change between sessions (e.g. ``"encoder.epochs"``).

    Returns
    -------
    state : dict or None
        The checkpoint's training state, None for a fresh run.
    history_rows : list of dict
        Logged epochs so far.
    initial_epoch : int
        Epochs already done.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = load_training_state(folder)
    if state is not None:
        stored = state.get("config", {})
        check_same_settings(stored, config, tuple(resumable), what, folder, "delete the folder")
    history_rows: list[dict[str, Any]] = list(state["history"]) if state else []
    history_path = folder / HISTORY_NAME
    write_json_atomic(folder / CONFIG_NAME, config)
    if state is None:
        # A fresh run: nothing of an aborted earlier attempt may mix with it.
        if history_path.exists():
            history_path.unlink()
        shutil.rmtree(folder / LOG_DIR_NAME, ignore_errors=True)
    else:
        write_history(history_path, history_rows)
        if not (folder / STATE_NAME).exists():
            sha1 = file_sha1(folder / CHECKPOINT_NAME)
            write_json_atomic(folder / STATE_NAME, {**state, "checkpoint_sha1": sha1})
    return state, history_rows, int(state["epoch"]) if state else 0


def fit_resumable(
    model: keras.Model,
    train_feed,
    valid_feed,
    *,
    folder: Path,
    seed: int,
    epochs: int,
    initial_epoch: int,
    checkpoint: keras.callbacks.Callback,
    before_checks: Sequence[keras.callbacks.Callback] = (),
    after_checks: Sequence[keras.callbacks.Callback] = (),
    label: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
) -> None:
    """``model.fit`` with the callbacks that make a run resumable, logged and safe.

    The order matters and is the same for every Keras trainer of the book (the encoders,
    B2): at an epoch start the random state (:class:`Determinism`) and the feed's epoch
    come first; at an epoch end ``before_checks`` (e.g. the learning-rate schedule),
    the epoch's seconds, the NaN stop, ``after_checks`` (e.g. B2's plateau rule), then
    TensorBoard (so a finished epoch's events are written before it counts as done),
    ``checkpoint``, the CSV row of ``history.csv``, the progress bar and ``callbacks``.
    A data-feed failure surfacing as a TensorFlow error is re-raised as its
    :class:`FeedError`; the CSV file and the bar are closed whatever happens.

    Parameters
    ----------
    model : keras.Model
        Compiled.
    train_feed, valid_feed : keras.utils.PyDataset
        Feeds with ``epoch_callback()`` (``BlockFeed`` or a subclass).
    folder : Path
        The run folder (``history.csv``, ``logs/``).
    seed : int
        Seed of the per-epoch random state.
    epochs, initial_epoch : int
        Train epochs ``initial_epoch .. epochs - 1``.
    checkpoint : keras.callbacks.Callback
        Writes the resumable state at each epoch end.
    before_checks, after_checks : sequence of keras.callbacks.Callback
        Trainer-specific callbacks placed as described above.
    label : str, optional
        Progress-bar label; None shows no bar.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks, run last.
    """
    csv_logger = keras.callbacks.CSVLogger(str(folder / HISTORY_NAME), append=True)
    bar = None
    if label is not None:
        bar = EpochProgress(label, initial_epoch, epochs, len(train_feed))
    chain = [
        Determinism(seed),
        train_feed.epoch_callback(),
        *before_checks,
        EpochSeconds(),
        StopOnNonFinite(initial_epoch),
        *after_checks,
    ]
    if tensorboard_available():
        log_dir = str(folder / LOG_DIR_NAME)
        chain.append(
            keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)
        )
    else:
        warnings.warn(
            "TensorBoard is not installed, so no TensorBoard logs are written (history.csv "
            "holds the same curves); `pip install tensorboard` to get them",
            UserWarning,
            stacklevel=3,
        )
    chain += [checkpoint, csv_logger] + ([bar] if bar is not None else []) + list(callbacks or [])
    try:
        model.fit(
            feed_dataset(train_feed),
            validation_data=feed_dataset(valid_feed),
            epochs=epochs,
            initial_epoch=initial_epoch,
            shuffle=False,  # batch i of epoch e is already a random draw; keep fit's order
            callbacks=chain,
            verbose=0,
        )
    except (FeedError, NonFiniteLossError, KeyboardInterrupt):
        raise
    except Exception as err:
        feed_error = feed_error_from(err)
        if feed_error is None:
            raise
        raise feed_error from None
    finally:
        if bar is not None:
            bar.close()
        if csv_logger.csv_file is not None and not csv_logger.csv_file.closed:
            csv_logger.csv_file.close()


def feed_dataset(feed):
    """The ``tf.data`` pipeline ``fit`` draws a feed's batches from, autotuning off.

    An in-process feed (no worker threads or processes) becomes ``feed[0], feed[1], …``
    through ``from_generator`` with one batch prefetched, as Keras would make it but
    without tf.data's autotuner: behind Keras' ``prefetch(AUTOTUNE)`` it stalled the
    first step of an epoch by 4–10 s in about half the epochs of the reduced encoders
    and B2 on 2 CPU cores. A feed with workers is returned as it is: Keras' worker queue
    already switches the autotuner off. The feed's epoch is set by its
    ``epoch_callback()``, which :func:`fit_resumable` installs.
    """
    if feed.workers > 1 or (feed.workers > 0 and feed.use_multiprocessing):
        return feed
    # The batch dimension left open, as Keras leaves it: the step is traced the same way.
    spec = tf.nest.map_structure(lambda a: tf.TensorSpec((None, *a.shape[1:]), a.dtype), feed[0])
    dataset = tf.data.Dataset.from_generator(
        lambda: (feed[i] for i in range(len(feed))), output_signature=spec
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(feed)))
    return dataset.prefetch(1).with_options(options)


def create_variables_before_fit(model, valid_feed) -> None:
    """Create the optimizer's and the metrics' variables before ``fit`` traces its step.

    Keras creates them inside the first training step, and TensorFlow traces a function
    that creates variables twice; created beforehand, the training step is traced once
    (about 10 s less per run for the reduced encoder on 2 CPU cores). Evaluating the
    first validation batch builds the metrics and traces the validation step, which
    ``fit`` would trace anyway. In inference mode no batch-normalisation statistic moves
    and no dropout mask is drawn, so training computes exactly what it would otherwise.
    """
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    inputs, targets = valid_feed[0][:2]
    model.evaluate(inputs, targets, verbose=0)


def feed_state(train_feed, valid_feed, epoch: int) -> dict[str, Any]:
    """Where the data feed stands after ``epoch`` (stored with every checkpoint)."""
    return {
        "seed": train_feed.seed,
        "next_epoch": int(epoch) + 1,
        "steps_per_epoch": len(train_feed),
        "validation_steps": len(valid_feed),
        "validation_epoch": 0,
    }


@dataclass
class TrainingSetup:
    """What a trainer hands :func:`train_resumable`: its model, feeds and extras.

    Attributes
    ----------
    model : keras.Model
        Compiled: new, or loaded from the run's checkpoint.
    train_feed, valid_feed : keras.utils.PyDataset
        Feeds with ``epoch_callback()``; the training feed already set to the first
        epoch to train.
    trainer_state : callable
        ``trainer_state(model, epoch, row) -> dict`` for :class:`SaveCheckpoint`.
    before_checks, after_checks : list of keras.callbacks.Callback
        Placed as :func:`fit_resumable` describes.
    """

    model: keras.Model
    train_feed: Any
    valid_feed: Any
    trainer_state: Callable[[keras.Model, int, dict[str, float]], dict[str, Any]]
    before_checks: list = field(default_factory=list)
    after_checks: list = field(default_factory=list)


def train_resumable(
    folder: Path,
    config: dict[str, Any],
    *,
    what: str,
    resumable: Sequence[str],
    epochs: int,
    seed: int,
    setup: Callable[[dict[str, Any] | None, int], TrainingSetup],
    label: str | None = None,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
    strategy=None,
    deterministic: bool = True,
) -> pd.DataFrame:
    """Train a Keras model in a run folder up to ``epochs``, resuming what is there.

    Parameters
    ----------
    folder : Path
        The run folder.
    config : dict
        The run's settings (``config.json``; a resume must match them).
    what : str
        Name of the model in messages ("encoder", "B2").
    resumable : sequence of str
        Flattened config keys that may change between sessions.
    epochs : int
        Epochs to reach (>= 0).
    seed : int
        Seed of TensorFlow and of the per-epoch random state.
    setup : callable
        ``setup(state, initial_epoch) -> TrainingSetup``, called inside the distribution
        strategy's scope; ``state`` is the checkpoint's training state (None for a fresh
        run).
    label : str, optional
        Progress-bar label; None shows no bar.
    callbacks : sequence of keras.callbacks.Callback, optional
        Extra callbacks, run last.
    strategy : tf.distribute.Strategy, optional
        Default: :func:`default_strategy`.
    deterministic : bool
        ``tf.config.experimental.enable_op_determinism()`` (exact resume on a CPU).

    Returns
    -------
    pandas.DataFrame
        ``history.csv``; ``attrs``: ``run_dir`` and ``initial_epoch``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    state, history_rows, initial_epoch = open_run_folder(folder, config, what, resumable)
    history_path = folder / HISTORY_NAME
    if initial_epoch < epochs:
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        strategy = default_strategy() if strategy is None else strategy
        keras.utils.set_random_seed(int(seed))
        with strategy.scope():
            run = setup(state, initial_epoch)
            create_variables_before_fit(run.model, run.valid_feed)
        checkpoint = SaveCheckpoint(folder, config, epochs, history_rows, run.trainer_state)
        fit_resumable(
            run.model,
            run.train_feed,
            run.valid_feed,
            folder=folder,
            seed=int(seed),
            epochs=epochs,
            initial_epoch=initial_epoch,
            checkpoint=checkpoint,
            before_checks=run.before_checks,
            after_checks=run.after_checks,
            label=label,
            callbacks=callbacks,
        )
    history = read_history(history_path)
    history.attrs.update(run_dir=str(folder), initial_epoch=initial_epoch)
    return history
