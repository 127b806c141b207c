"""Training the encoder: resumable, deterministic, with the paper's schedule.

See original_code.md#oc-encoder-training.

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
  (:class:`~synthsep_lib.pipeline.encoder_feed.BlockFeed`), and fit's epoch number is handed to the
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
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import keras
import pandas as pd

from synthsep_lib import corpora
from synthsep_lib.encoder.loss import perceptual_loss
from synthsep_lib.encoder.model import build_encoder
from synthsep_lib.encoder.prediction import check_variant
from synthsep_lib.pipeline.encoder_feed import training_feed, validation_feed
from synthsep_lib.pipeline.keras_training import (
    CHECKPOINT_NAME,
    TrainingSetup,
    as_numpy,
    feed_state,
    load_keras_file,
    seed_states,
    train_resumable,
)
from synthsep_lib.pipeline.runs import (
    CHAPTER_DATA,
    CHAPTER_ENCODER,
    RunPaths,
    require_artifact,
    splits_fingerprint,
)

__all__ = [
    "encoder_run_config",
    "learning_rate_at",
    "load_checkpoint",
    "train_encoder",
]


#: Settings that may change between a run and its resumption: the number of epochs to
#: reach, and how many processes simulate mixtures (the batches do not depend on it).
RESUMABLE_CHANGES = ("encoder.epochs", "encoder.feed_workers")

#: Keras objects a saved encoder refers to by name.
CUSTOM_OBJECTS = {"perceptual_loss": perceptual_loss}


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
    """
    check_variant(variant)
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

    See original_code.md#oc-encoder-training: 1e-3 · 0.98^e, so 1e-3 in epoch 0 and about
    4.2e-5 in epoch 499.
    """
    return float(encoder_cfg.learning_rate * encoder_cfg.lr_decay ** int(epoch))


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

    Raises
    ------
    FileNotFoundError, ValueError
        The file is missing, or damaged or truncated (see
        :func:`~synthsep_lib.pipeline.keras_training.load_keras_file`); the message names
        it and says to run Chapter 2 again.
    """
    return load_keras_file(
        checkpoint,
        custom_objects=CUSTOM_OBJECTS,
        compile=compile,
        advice=f"run {CHAPTER_ENCODER} again to train the encoder",
    )


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
        Corpus readers; default :func:`corpora.open_corpora` ``(profile, data_root)``.
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
    """
    check_variant(variant)
    enc = profile.encoder
    epochs = int(enc.epochs if epochs is None else epochs)
    folder = paths.encoder(variant)
    folder.mkdir(parents=True, exist_ok=True)
    if splits is None:
        splits = corpora.load_splits(require_artifact(paths.splits, CHAPTER_DATA))
    config = encoder_run_config(profile, variant, splits)
    seed = int(enc.seed)
    feeds = []

    def setup(state, initial_epoch: int) -> TrainingSetup:
        readers = (lj, esc) if lj is not None and esc is not None else None
        readers = readers or corpora.open_corpora(profile, data_root)
        train_feed = training_feed(*readers, splits, profile, variant)
        valid_feed = validation_feed(*readers, splits, profile, variant)
        train_feed.set_epoch(initial_epoch)
        feeds.append(train_feed)
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

        def trainer_state(model, epoch: int, row: dict) -> dict:
            return {
                "learning_rate": learning_rate_at(epoch, enc),
                "next_learning_rate": learning_rate_at(epoch + 1, enc),
                "feed": feed_state(train_feed, valid_feed, epoch),
                "rng": {
                    "scheme": (
                        "keras.utils.set_random_seed(seed) when training starts or resumes; "
                        "at the start of epoch e: random.seed(seed + e), numpy.random.seed("
                        "seed + e) and SeedGenerator i of the model gets state "
                        "[SeedSequence([seed, 2, e, i]) -> int, 0]"
                    ),
                    "seed": seed,
                    "next_python_numpy_seed": seed + epoch + 1,
                    "seed_generator_states_at_save": [
                        [int(x) for x in as_numpy(v)] for v in seed_states(model)
                    ],
                },
            }

        # the rate of the epoch enters the logs before the checkpoint stores them
        schedule = keras.callbacks.LearningRateScheduler(lambda e: learning_rate_at(e, enc))
        return TrainingSetup(model, train_feed, valid_feed, trainer_state, [schedule])

    history = train_resumable(
        folder,
        config,
        what="encoder",
        resumable=RESUMABLE_CHANGES,
        epochs=epochs,
        seed=seed,
        setup=setup,
        label=f"encoder {variant}" if progress else None,
        callbacks=callbacks,
        strategy=strategy,
        deterministic=deterministic,
    )
    if feeds:
        history.attrs["short_utterances"] = list(feeds[0].short_utterances)
    return history
