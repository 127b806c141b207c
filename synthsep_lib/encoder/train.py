"""Training the encoder: resumable, deterministic, with the paper's schedule (PAPER_FACTS §4.6).

:func:`train_encoder` trains the Proposed or the B1 encoder of a profile and leaves in
``runs/<profile>/encoder/<variant>/``::

    config.json       the profile's feature and encoder settings, the variant and the
                      fingerprint of the data split (written at the start)
    checkpoint.keras  the full model after the last finished epoch, optimizer state
                      included (Adam's iteration count and moments); it also holds a copy
                      of state.json (a ``synthsep_state.json`` entry in the zip)
    state.json        epochs done, learning rate, feed seed, RNG scheme, the per-epoch
                      logs so far and the SHA-1 of the checkpoint it belongs to
    history.csv       one row per epoch (Keras' CSVLogger): loss (perceptual loss + L2),
                      perceptual_loss, the same on the validation blocks, learning_rate,
                      seconds
    logs/             TensorBoard event files

As in the original: Adam with learning rate 1e-3 (Keras defaults otherwise), the rate
multiplied by 0.98 per epoch (``lr(e) = 1e-3 · 0.98^e``, e counted from 0), the loss of
:func:`synthsep_lib.encoder.loss.perceptual_loss`, ``steps_per_epoch`` training batches
and ``validation_steps`` validation batches per epoch (200 and 20 at the paper's scale).
Unlike the original (a checkpoint every 10 epochs if the validation loss improved), the
model is saved after **every** epoch, because it is what resuming needs; the validation
curve in ``history.csv`` tells which epoch was best.

Exact resume
------------
Stopping after epoch k and calling :func:`train_encoder` again gives, bit for bit on a
CPU, the model that an uninterrupted run would have. What makes this hold:

* the checkpoint is the whole training state: weights, BatchNorm statistics and the
  optimizer's variables (``model.save``); the learning rate is a function of the epoch;
* every batch of the data feed is a pure function of ``(seed, epoch, index)``
  (:class:`~synthsep_lib.encoder.feed.BlockFeed`), and fit's epoch number is handed to the
  feed at each epoch start; batches are not shuffled by Keras;
* at each epoch start the random state is re-derived from ``(seed, epoch)``: Python's
  and NumPy's generators get ``seed + epoch`` and every ``SeedGenerator`` of the model
  (the LSTMs' dropout masks, which Keras does not store in ``.keras`` files) a state drawn
  from ``(seed, epoch, its position)``. TensorFlow's global seed is set once, to ``seed``,
  by ``keras.utils.set_random_seed(seed)`` when training starts or resumes (it keys
  ``tf.function``'s cache, so changing it per epoch would retrace the train step);
* ``tf.config.experimental.enable_op_determinism()`` makes TensorFlow's kernels
  deterministic (it also turns XLA off; pass ``deterministic=False`` on a GPU for speed).

Files are written atomically: the checkpoint first (with its embedded state), then
``state.json``, then the row of ``history.csv``. An interruption between any two leaves a
consistent run: on resume the state is read from the checkpoint itself and
``history.csv`` is rewritten from it.

Used in: Chapter 2 (02_encoder)
"""

from __future__ import annotations

import csv
import dataclasses
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from synthsep_lib import corpora
from synthsep_lib.encoder.feed import FeedError, training_feed, validation_feed
from synthsep_lib.encoder.loss import perceptual_loss
from synthsep_lib.encoder.model import VARIANTS, build_encoder
from synthsep_lib.runs import (
    RunConfigError,
    RunPaths,
    atomic_path,
    config_differences,
    file_sha1,
    require_artifact,
    splits_fingerprint,
    write_json_atomic,
)

__all__ = [
    "CHAPTER_DATA",
    "CHAPTER_ENCODER",
    "CHECKPOINT_NAME",
    "STATE_NAME",
    "CONFIG_NAME",
    "HISTORY_NAME",
    "LOG_DIR_NAME",
    "RunConfigError",
    "NonFiniteLossError",
    "encoder_run_config",
    "learning_rate_at",
    "default_strategy",
    "tensorboard_available",
    "read_checkpoint_state",
    "load_checkpoint",
    "train_encoder",
    # building blocks shared with B2's trainer (synthsep_lib.baselines)
    "open_run_folder",
    "fit_resumable",
    "Determinism",
    "EpochSeconds",
    "EpochProgress",
    "StopOnNonFinite",
    "as_numpy",
    "feed_error_from",
    "load_training_state",
    "read_history",
    "write_history",
]

#: Chapters named in "run this first" messages.
CHAPTER_DATA = "Chapter 1 (01_data_simulation)"
CHAPTER_ENCODER = "Chapter 2 (02_encoder)"

CHECKPOINT_NAME = "checkpoint.keras"
STATE_NAME = "state.json"
CONFIG_NAME = "config.json"
HISTORY_NAME = "history.csv"
LOG_DIR_NAME = "logs"
#: Entry of the checkpoint's zip file that holds its copy of ``state.json``.
STATE_ENTRY = "synthsep_state.json"

#: Settings that may change between a run and its resumption: the number of epochs to
#: reach, and how many processes simulate mixtures (the batches do not depend on it).
RESUMABLE_CHANGES = ("encoder.epochs", "encoder.feed_workers")

#: Keras objects a saved encoder refers to by name.
CUSTOM_OBJECTS = {"perceptual_loss": perceptual_loss}

_SEED_TAG = 2  # keeps the SeedGenerator reseeding apart from the feed's seed sequences


class NonFiniteLossError(FloatingPointError):
    """The training or validation loss became NaN or infinite; training was stopped.

    Used in: Chapter 2 (02_encoder)
    """


# ---------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------
def encoder_run_config(profile, variant: str, splits=None) -> dict[str, Any]:
    """The settings an encoder run depends on, as stored in ``config.json``.

    Parameters
    ----------
    profile : Profile
        Its ``features`` and ``encoder`` sections are stored.
    variant : {"proposed", "b1"}
    splits : corpora.Splits, optional
        If given, the SHA-1 of its six lists is stored as ``data.splits_sha1``.

    Returns
    -------
    dict
        ``{"variant", "profile", "features": {...}, "encoder": {...}, "data": {...}}``.

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
    config = {
        "variant": variant,
        "profile": profile.name,
        "features": profile.features.to_dict(),
        "encoder": dataclasses.asdict(profile.encoder),
        "data": {},
    }
    if splits is not None:
        config["data"]["splits_sha1"] = splits_fingerprint(splits)
    return config


def learning_rate_at(epoch: int, encoder_cfg) -> float:
    """Learning rate of 0-based ``epoch``: ``learning_rate · lr_decay ** epoch``.

    PAPER_FACTS §4.6: 1e-3 · 0.98^e, so 1e-3 in epoch 0 and about 4.2e-5 in epoch 499.

    Used in: Chapter 2 (02_encoder)
    """
    return float(encoder_cfg.learning_rate * encoder_cfg.lr_decay ** int(epoch))


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed (Keras' TensorBoard callback needs it).

    Used in: Chapter 2 (02_encoder)
    """
    return importlib.util.find_spec("tensorboard") is not None


def default_strategy():
    """``tf.distribute.MirroredStrategy()`` over all GPUs if there are several, else the
    default (single-device) strategy.

    Used in: Chapter 2 (02_encoder)
    """
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown encoder variant {variant!r}; expected one of {VARIANTS}")


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------
def read_checkpoint_state(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The training state stored inside a checkpoint written by :func:`train_encoder`.

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
        If the file is not a readable ``.keras`` (zip) file.

    Used in: Chapter 2 (02_encoder)
    """
    try:
        with zipfile.ZipFile(checkpoint) as archive:
            if STATE_ENTRY not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_ENTRY).decode("utf-8"))
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as err:
        raise ValueError(f"{checkpoint} is not a readable Keras checkpoint ({err})") from err


def load_checkpoint(checkpoint: str | os.PathLike, compile: bool = True) -> keras.Model:
    """Load an encoder checkpoint (``keras.models.load_model`` with the custom loss).

    Parameters
    ----------
    checkpoint : path-like
        A ``.keras`` file written by :func:`train_encoder`.
    compile : bool
        Restore the optimizer (and its state) and the loss too; False for inference only.

    Returns
    -------
    keras.Model

    Used in: Chapter 2 (02_encoder)
    """
    return keras.models.load_model(checkpoint, custom_objects=CUSTOM_OBJECTS, compile=compile)


def _seed_states(model: keras.Model) -> list:
    """The state variables of every ``SeedGenerator`` of the model, in layer order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def _reseed(model: keras.Model, seed: int, epoch: int) -> None:
    """Derive the random state of ``epoch`` from ``(seed, epoch)`` (see the module notes).

    Python's and NumPy's generators get ``seed + epoch``; every ``SeedGenerator`` of the
    model (the dropout masks) a state drawn from ``SeedSequence([seed, 2, epoch, i])``.
    TensorFlow's global seed is set once per call of :func:`train_encoder`, not here: it
    is part of the key under which ``tf.function`` caches the traced train step, so a new
    value every epoch would retrace it (about 6 s per epoch on 2 CPU cores, and a cache
    that grows without bound). The train step draws no random numbers from it.
    """
    random.seed(int(seed) + int(epoch))
    np.random.seed(int(seed) + int(epoch))
    for i, state in enumerate(_seed_states(model)):
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


class _Checkpoint(keras.callbacks.Callback):
    """Saves the full model and the training state after every epoch, atomically."""

    def __init__(self, folder: Path, state: dict[str, Any], history: list[dict[str, Any]]):
        super().__init__()
        self.folder = folder
        self.state = state
        self.history = history

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            row[key] = float(as_numpy(value))
        self.history.append(row)
        enc = self.state["encoder_cfg"]
        state = {
            "epoch": int(epoch) + 1,
            "epochs_planned": self.state["epochs"],
            "learning_rate": learning_rate_at(epoch, enc),
            "next_learning_rate": learning_rate_at(epoch + 1, enc),
            "optimizer_iterations": int(as_numpy(self.model.optimizer.iterations)),
            "feed": {
                "seed": self.state["feed_seed"],
                "next_epoch": int(epoch) + 1,
                "steps_per_epoch": self.state["steps"],
                "validation_steps": self.state["validation_steps"],
                "validation_epoch": 0,
            },
            "rng": {
                "scheme": (
                    "keras.utils.set_random_seed(seed) when training starts or resumes; at "
                    "the start of epoch e: random.seed(seed + e), numpy.random.seed(seed + e) "
                    "and SeedGenerator i of the model gets state "
                    "[SeedSequence([seed, 2, e, i]) -> int, 0]"
                ),
                "seed": self.state["seed"],
                "next_python_numpy_seed": self.state["seed"] + int(epoch) + 1,
                "seed_generator_states_at_save": [
                    [int(x) for x in as_numpy(v)] for v in _seed_states(self.model)
                ],
            },
            "config": self.state["config"],
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


def load_training_state(folder: Path) -> dict[str, Any] | None:
    """State of the run in ``folder``, or None for a fresh run."""
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.exists():
        return None
    state = read_checkpoint_state(checkpoint)
    if state is None:
        side = folder / STATE_NAME
        if side.exists():
            state = json.loads(side.read_text(encoding="utf-8"))
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

    Used in: Chapter 2 (02_encoder), Chapter 4 (04_baselines)
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = load_training_state(folder)
    if state is not None:
        diffs = config_differences(state.get("config", {}), config, ignore=resumable)
        if diffs:
            raise RunConfigError(
                f"the {what} run in {folder} was trained with other settings: "
                f"{'; '.join(diffs)}. Use the same settings to resume, or delete the folder "
                "(or choose another run root) to train afresh."
            )
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

    Used in: Chapter 2 (02_encoder), Chapter 4 (04_baselines)
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
            train_feed,
            validation_data=valid_feed,
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


def train_encoder(
    paths: RunPaths,
    profile,
    variant: str,
    *,
    lj=None,
    esc=None,
    splits=None,
    epochs: int | None = None,
    progress: bool = True,
    strategy=None,
    data_root: str | os.PathLike = "data",
    callbacks: list | None = None,
    deterministic: bool = True,
) -> pd.DataFrame:
    """Train (or resume training) the Proposed or the B1 encoder of a profile.

    The run lives in ``paths.encoder(variant)``; see the module docstring for its files
    and for how resuming is made exact. If the folder holds a checkpoint, training
    continues after its last epoch; a finished run returns its history at once.

    Parameters
    ----------
    paths : RunPaths
        The run directory; ``data/splits.json`` (Chapter 1) is read unless ``splits`` is
        given.
    profile : Profile
        Features and encoder settings (sizes, batch size, steps, epochs, schedule, seed,
        feed workers).
    variant : {"proposed", "b1"}
        ``proposed`` learns the target's mel, ``b1`` its 512-bin linear spectrum.
    lj, esc : corpora.LJSpeech, corpora.ESC50, optional
        Corpus readers; default :func:`corpora.ensure_corpora` ``(profile, data_root)``.
    splits : corpora.Splits, optional
        Default: ``paths.splits``. Training uses ``target_train × noise_train``,
        validation ``target_valid × noise_valid`` (the same batches every epoch).
    epochs : int, optional
        Total number of epochs to reach (not "more epochs"); default
        ``profile.encoder.epochs``.
    progress : bool
        Show a tqdm progress bar.
    strategy : tf.distribute.Strategy, optional
        Default: :func:`default_strategy` (MirroredStrategy when several GPUs are
        visible). The model is built (or loaded) and trained in its scope; each batch
        of ``batch_size`` blocks is split across the replicas.
    data_root : path-like
        Where the corpora live if ``lj`` / ``esc`` are not given.
    callbacks : list of keras.callbacks.Callback, optional
        Extra callbacks, run after the built-in ones.
    deterministic : bool
        Call ``tf.config.experimental.enable_op_determinism()`` (process-wide; it also
        disables XLA). Needed for bit-exact resumption.

    Returns
    -------
    pandas.DataFrame
        ``history.csv``: one row per epoch with ``epoch`` (0-based), ``loss`` (perceptual
        loss + L2 penalties), ``perceptual_loss``, ``val_loss``, ``val_perceptual_loss``,
        ``learning_rate`` and ``seconds``. ``attrs`` holds ``run_dir``,
        ``initial_epoch`` (epochs already done when called) and ``short_utterances``.

    Raises
    ------
    FileNotFoundError
        If ``splits`` is not given and Chapter 1's ``splits.json`` is missing.
    RunConfigError
        If the folder holds a run made with other settings (the message names them).
    FeedError
        If the data feed cannot make a batch (non-finite features, a mixture that cannot
        be simulated); the message names the utterance and noise file.
    NonFiniteLossError
        If the loss becomes NaN or infinite (the epoch is not saved).

    Used in: Chapter 2 (02_encoder)
    """
    _check_variant(variant)
    enc = profile.encoder
    epochs = int(enc.epochs if epochs is None else epochs)
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    folder = paths.encoder(variant)
    folder.mkdir(parents=True, exist_ok=True)
    if splits is None:
        splits = corpora.load_splits(require_artifact(paths.splits, CHAPTER_DATA))
    config = encoder_run_config(profile, variant, splits)

    state, history_rows, initial_epoch = open_run_folder(
        folder, config, "encoder", RESUMABLE_CHANGES
    )
    history_path = folder / HISTORY_NAME
    if initial_epoch >= epochs:
        history = read_history(history_path)
        history.attrs.update(run_dir=str(folder), initial_epoch=initial_epoch)
        return history

    if lj is None or esc is None:
        lj, esc = corpora.ensure_corpora(profile, data_root, progress=progress)
    train_feed = training_feed(lj, esc, splits, profile, variant)
    valid_feed = validation_feed(lj, esc, splits, profile, variant)
    train_feed.set_epoch(initial_epoch)

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = default_strategy() if strategy is None else strategy
    keras.utils.set_random_seed(int(enc.seed))
    with strategy.scope():
        if state is None:
            model = build_encoder(
                variant,
                enc,
                linear_bins=profile.features.linear_bins,
                mel_bins=profile.features.num_mels,
            )
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate=enc.learning_rate),
                loss=perceptual_loss,
                metrics=[perceptual_loss],
            )
        else:
            model = load_checkpoint(folder / CHECKPOINT_NAME, compile=True)

    run_state = {
        "encoder_cfg": enc,
        "epochs": epochs,
        "feed_seed": train_feed.seed,
        "seed": int(enc.seed),
        "steps": len(train_feed),
        "validation_steps": len(valid_feed),
        "config": config,
    }
    checkpoint = _Checkpoint(folder, run_state, history_rows)
    fit_resumable(
        model,
        train_feed,
        valid_feed,
        folder=folder,
        seed=int(enc.seed),
        epochs=epochs,
        initial_epoch=initial_epoch,
        checkpoint=checkpoint,
        # the rate of the epoch enters the logs before the checkpoint stores them
        before_checks=[keras.callbacks.LearningRateScheduler(lambda e: learning_rate_at(e, enc))],
        label=f"encoder {variant}" if progress else None,
        callbacks=callbacks,
    )
    history = read_history(history_path)
    history.attrs.update(
        run_dir=str(folder),
        initial_epoch=initial_epoch,
        short_utterances=list(train_feed.short_utterances),
    )
    return history
