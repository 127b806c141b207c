"""The encoder's training data feed: mixtures simulated on the fly, cut into 64-frame blocks.

The paper never stores training mixtures. For every utterance it draws, the original
generator picks an ESC-50 interferer at random, mixes it with the utterance by the
paper's recipe (original_code.md#oc-mixing), computes the features of the mixture and
of the scaled target (original_code.md#oc-mel-spectrum) and cuts ``round(T / 64)``
blocks of 64 frames at random start frames (original_code.md#oc-training-blocks).
:class:`BlockFeed` does the same as a ``keras.utils.PyDataset``, so ``model.fit`` can
run it in worker processes or threads.

What a batch holds (``variant`` = ``"proposed"`` or ``"b1"``)::

    inputs = {"input1": (B, 64, 512) mixture linear spectrum,
              "input2": (B, 64, 80)  mixture mel spectrum}
    target = (B, 64, F, 1) scaled target: mel (F = 80, Proposed) or linear (F = 512, B1)

all float32 in [0, 1]. The original's target tensor had two more channels (a one-hot
"which source dominates" mask) that its loss never used
(original_code.md#oc-training-blocks); they are left out.

Determinism and exact resume
----------------------------
Batch ``index`` of epoch ``e`` is a pure function of ``(seed, e, index)`` and the two
lists, whatever the worker scheduling:

* **Which utterances.** Utterances are consumed from an endless stream: pass ``p`` of
  the stream is a permutation of the (long enough) utterances drawn by a NumPy
  generator seeded with ``SeedSequence([seed, 0, p])``. Like the original's pointer into
  its shuffled list (reset and reshuffled at the end of the list), the stream continues
  across epochs, so every utterance is used about equally often. A batch takes
  utterances from the stream until it holds ``B`` blocks. Where each epoch and each
  batch start in the stream is computed up front from the utterances' frame counts
  alone (no audio is read), by replaying the epochs from epoch 0 — milliseconds per
  epoch — so ``set_epoch(400)`` lands exactly where 400 uninterrupted epochs would.
* **Which interferer and which frames.** For batch ``(e, index)`` a generator seeded
  with ``SeedSequence([seed, 1, e, index])`` draws, for each of its utterances in order,
  the interferer index (uniform over the noise list) and then ``round(T / 64)`` block
  starts ``floor(u · (T − 64))`` (:func:`synthsep_lib.spectrogram_blocks.sample_block_starts`), the
  original's order of draws.

The seed does not depend on ``variant``: a Proposed and a B1 feed with the same seed and
lists serve the same mixtures and blocks, so the two encoders see identical data.

**Overflow.** The original filled a batch from 4 utterances at a time and kept up to
``2·B`` blocks beyond the batch for the next one (original_code.md#oc-training-blocks).
Here the blocks of the last utterance beyond ``B`` are **discarded**: with overflow,
batch ``i`` would depend on batch ``i − 1`` and could not be computed from its own index
by an independent worker (nor reproduced when resuming). About 10 % (B = 16) or 5 % (B = 32) of the drawn blocks
on the mini corpus are dropped; they cost nothing, as features are computed only for
the frames of the blocks kept (:func:`frame_features`, about 65 % of an utterance's
frames), which made the feed about twice as fast as featurising whole utterances.

Epochs in Keras 3
-----------------
``model.fit`` calls ``PyDataset.on_epoch_begin()`` and ``on_epoch_end()`` around every
epoch, but also calls ``on_epoch_end()`` once before the first epoch (the iterator's
``reset()``) and at every ``evaluate()`` (so on the validation data every epoch); under a
``tf.distribute`` strategy it begins an epoch to peek at one batch and ends it again.
:meth:`BlockFeed.on_epoch_end` therefore advances the epoch only after an
``on_epoch_begin()``. The exact way is explicit: :meth:`BlockFeed.set_epoch`, or the
callback :meth:`BlockFeed.epoch_callback`, which sets the epoch from ``fit``'s own epoch
number (``initial_epoch`` included) before the workers of that epoch start. With
``use_multiprocessing`` Keras forks a new worker pool at the start of every epoch, so the
workers always see the epoch set in the main process.

Pass ``shuffle=False`` to ``fit``: its default ``shuffle=True`` makes Keras visit the
batch indices of each epoch in an order drawn from Python's global ``random``. Every
batch stays the same, but the order the model sees them in would not be reproducible.
(Under a ``tf.distribute`` strategy with worker processes, Keras may also carry batches
prefetched during its one-batch peek over into the first epoch; their content is still
that of their own index.)

Validation uses the same class on the validation lists with ``fixed_epoch=0``
(:func:`validation_feed`): the validation batches are identical every epoch.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import soundfile as sf

from synthsep_lib import audio, mixing, spectrogram_blocks

__all__ = [
    "FEED_VARIANTS",
    "FeedError",
    "UtterancePlan",
    "block_segments",
    "frame_features",
    "BlockFeed",
    "training_feed",
    "validation_feed",
    "feed_rate",
]

#: Target feature of each encoder variant: Proposed predicts the mel, B1 the linear spectrum.
FEED_VARIANTS = {"proposed": "mel", "b1": "linear"}

#: Processes (by pid) whose BLAS thread count the feed has limited, and to what.
_BLAS_LIMITED: dict[int, int] = {}

#: Entropy tags that keep the utterance stream and the per-batch draws independent.
_STREAM_TAG = 0
_BATCH_TAG = 1


class FeedError(ValueError):
    """A batch could not be made: non-finite features or a mixture that cannot be simulated.

    Attributes
    ----------
    sources : list of (str, str)
        ``(utterance id, noise file)`` of the offending blocks or utterances.
    """

    def __init__(self, message: str, sources: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.sources = [tuple(x) for x in sources]

    def __reduce__(self):  # keep ``sources`` when a worker process sends the error back
        return (type(self), (str(self), self.sources))


#: Blocks whose frames are at most this many frames apart share one feature segment
#: (a segment costs 3 linear and 6 mel frames of padding).
_MERGE_GAP = 8


def block_segments(
    starts, block_frames: int = spectrogram_blocks.BLOCK_FRAMES
) -> list[tuple[int, int]]:
    """Frame ranges ``[a, b)`` that cover the blocks starting at ``starts``, merged.

    Blocks that overlap, touch or are at most a few frames apart are merged, so that
    :func:`frame_features` computes every frame a batch needs once and (almost) no
    other frame. Random training blocks cover about 65 % of an utterance's frames.

    Parameters
    ----------
    starts : array_like of int
        Block start frames, any order.
    block_frames : int
        Block length (64).

    Returns
    -------
    list of (int, int)
        Sorted, disjoint ranges.
    """
    segments: list[list[int]] = []
    for s in sorted(int(s) for s in starts):
        if segments and s <= segments[-1][1] + _MERGE_GAP:
            segments[-1][1] = max(segments[-1][1], s + block_frames)
        else:
            segments.append([s, s + block_frames])
    return [(a, b) for a, b in segments]


def frame_features(
    signal: np.ndarray, segments, feat, kinds: Sequence[str] = ("linear", "mel")
) -> list[np.ndarray]:
    """:func:`audio.encoder_features` of ``signal``, computed only at the frames in ``segments``.

    Frame m of the encoder features looks at samples ``[256 m, 256 m + 1024)`` of the
    signal (the mel with the first 768 samples taken as zeros, as ``mel_spectrogram``
    of ``signal[768:]`` does; zeros after the end). A segment ``[a, b)`` therefore needs
    only samples ``[256 a, 256 b + 768)``: the linear spectrum of that excerpt gives
    frames a … b − 1 first, and the mel spectrum of it (which puts 768 zeros in front)
    gives them from its 4th frame on. The values equal those of the whole-signal features
    (to float rounding: the mel's matrix product may round differently).

    Parameters
    ----------
    signal : numpy.ndarray, shape (L,)
        Saved-audio layout (768-sample lead-in, L = 256 T).
    segments : sequence of (int, int)
        Frame ranges, ``0 <= a < b <= T`` (e.g. :func:`block_segments`).
    feat : FeatureConfig
    kinds : sequence of {"linear", "mel"}
        Which features to compute, in the order returned.

    Returns
    -------
    list of numpy.ndarray, float32
        Per kind an array of shape (T, linear_bins) or (T, num_mels); rows outside the
        segments are left uninitialised.
    """
    hop, lead = feat.hop_size, feat.lead_in
    if lead % hop:
        raise ValueError(f"lead_in {lead} must be a multiple of hop_size {hop}")
    signal = np.asarray(signal)
    t = signal.shape[0] // hop
    zeroed = signal.copy()
    zeroed[:lead] = 0.0  # what mel_spectrogram(signal[lead:]) sees in front
    bins = {"linear": feat.linear_bins, "mel": feat.num_mels}
    out = [np.empty((t, bins[k]), dtype=np.float32) for k in kinds]
    for a, b in segments:
        if not 0 <= a < b <= t:
            raise ValueError(f"frame range [{a}, {b}) outside the signal's {t} frames")
        n = b - a
        for k, kind in enumerate(kinds):
            source = signal if kind == "linear" else zeroed
            excerpt = np.zeros(n * hop + lead, dtype=signal.dtype)
            part = source[a * hop : b * hop + lead]
            excerpt[: part.shape[0]] = part
            if kind == "linear":
                out[k][a:b] = audio.linear_spectrogram(excerpt, feat)[:n]
            else:
                skip = lead // hop
                out[k][a:b] = audio.mel_spectrogram(excerpt, feat)[skip : skip + n]
    return out


@dataclass(frozen=True)
class UtterancePlan:
    """One utterance's share of a batch.

    Attributes
    ----------
    utterance : str
        LJSpeech utterance id.
    noise : str
        ESC-50 file name of its interferer.
    num_frames : int
        T, frames of s1 (and of its mixture), from the WAV header.
    starts : tuple of int
        Start frames of the blocks that go into the batch, in batch order.
    discarded : int
        Blocks drawn for this utterance but left out because the batch was full (only
        the batch's last utterance can have some).
    """

    utterance: str
    noise: str
    num_frames: int
    starts: tuple[int, ...]
    discarded: int = 0


class _LRU:
    """A small thread-safe least-recently-used cache of read-only arrays."""

    def __init__(self, maxsize: int):
        self.maxsize = int(maxsize)
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key, load: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
        value = load()  # outside the lock: loads run in parallel in threads
        value.setflags(write=False)
        if self.maxsize > 0:
            with self._lock:
                self._data[key] = value
                self._data.move_to_end(key)
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)


def _limit_blas(threads: int | None) -> None:
    """Limit numpy's BLAS to ``threads`` threads in this process, once per process.

    The feed's matrix products (80 mel filters × a few hundred frames) are far too small
    for several BLAS threads: on 2 cores shared with the training step, OpenBLAS' extra
    threads made the feed about 3× slower. TensorFlow has its own thread pools and is not
    affected. Without ``threadpoolctl`` (a dependency of scikit-learn, which librosa
    needs) nothing is changed.
    """
    if threads is None or _BLAS_LIMITED.get(os.getpid()) == threads:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with librosa
        pass
    else:
        threadpool_limits(limits=int(threads), user_api="blas")  # stays until process exit
    _BLAS_LIMITED[os.getpid()] = threads


def _lj_frames(lj, utt: str, feat) -> int:
    """T of ``lj.load_target(utt)`` from the WAV header: ``ceil(n / 256) + 3``.

    See original_code.md#oc-lead-in.
    """
    path = lj.wav_path(utt)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise audio.AudioFileError(f"cannot read the header of {path} ({err})") from err
    n = int(info.frames)
    if int(info.samplerate) != feat.sample_rate:  # load_wav resamples: ceil(n · sr / rate)
        n = math.ceil(n * feat.sample_rate / int(info.samplerate))
    return audio.num_frames(n, feat)


class BlockFeed(keras.utils.PyDataset):
    """Batches of 64-frame blocks of freshly simulated mixtures for encoder training.

    See the module docstring for the sampling scheme, determinism and epochs.

    Parameters
    ----------
    lj : corpora.LJSpeech
        Reader of the target utterances.
    esc : corpora.ESC50
        Reader of the noise clips.
    utterance_ids : sequence of str
        Target utterances (e.g. ``splits.target_train``). Utterances shorter than one
        block are skipped (:attr:`short_utterances`).
    noise_files : sequence of str
        ESC-50 file names of the interferers (e.g. ``splits.noise_train``).
    profile : Profile
        Uses ``profile.features`` and ``profile.encoder`` (``batch_size``,
        ``block_frames``, and the defaults of ``steps``, ``seed``, ``workers``).
    variant : {"proposed", "b1"}
        Target feature: the scaled target's normalised mel (80 bins) or linear spectrum
        (512 bins).
    steps : int, optional
        Batches per epoch, ``len(feed)``; default ``profile.encoder.steps_per_epoch``.
    seed : int, optional
        Non-negative seed of every draw; default ``profile.encoder.seed``.
    workers : int, optional
        Keras workers; default ``profile.encoder.feed_workers``. 0 or 1 without
        multiprocessing: batches are made in the training process.
    use_multiprocessing : bool
        Worker processes (True) or threads (False).
    max_queue_size : int
        Batches Keras keeps ready ahead of the model.
    batch_size : int, optional
        Blocks per batch, B; default ``profile.encoder.batch_size``.
    fixed_epoch : int, optional
        Serve this epoch for ever (validation): :meth:`set_epoch` and
        :meth:`on_epoch_end` then change nothing.
    blas_threads : int or None
        Threads numpy's BLAS may use in every process that makes batches (the training
        process too when ``workers`` is 0 or threads are used); set once per process on
        its first batch, and kept. 1 (default) is fastest; None leaves BLAS alone.
    target_cache, noise_cache : int
        Sizes of the per-process LRU caches of loaded s1 signals and of 22.05 kHz noise
        clips (about 0.6 MB and 0.44 MB each at the paper's scale). The corpus is never
        preloaded; a cache starts empty in a worker process that was spawned, and as a
        copy of the main process's in one that was forked.

    Attributes
    ----------
    utterances : tuple of str
        The utterances used (long enough), in the given order.
    short_utterances : tuple of str
        Utterances skipped because T < ``block_frames``, known before any batch is made.
    skipped : int
        ``len(short_utterances)``.
    num_frames : dict of str to int
        T of every utterance used.
    epoch : int
        The epoch whose batches ``feed[i]`` returns.
    batch_size, steps, seed, variant, target_bins

    Raises
    ------
    ValueError
        Unknown variant, negative seed, empty noise list, non-positive steps or batch
        size, or no utterance at least one block long.
    """

    def __init__(
        self,
        lj,
        esc,
        utterance_ids: Sequence[str],
        noise_files: Sequence[str],
        profile,
        *,
        variant: str = "proposed",
        steps: int | None = None,
        seed: int | None = None,
        workers: int | None = None,
        use_multiprocessing: bool = True,
        max_queue_size: int = 10,
        batch_size: int | None = None,
        fixed_epoch: int | None = None,
        blas_threads: int | None = 1,
        target_cache: int = 256,
        noise_cache: int = 1024,
    ):
        enc = profile.encoder
        workers = enc.feed_workers if workers is None else int(workers)
        super().__init__(
            workers=workers,
            use_multiprocessing=bool(use_multiprocessing),
            max_queue_size=max_queue_size,
        )
        if variant not in FEED_VARIANTS:
            raise ValueError(
                f"unknown encoder variant {variant!r}; expected one of {sorted(FEED_VARIANTS)}"
            )
        self.variant = variant
        self.lj = lj
        self.esc = esc
        self.features = profile.features
        self.block_frames = int(enc.block_frames)
        self.batch_size = int(enc.batch_size if batch_size is None else batch_size)
        self.steps = int(enc.steps_per_epoch if steps is None else steps)
        self.seed = int(enc.seed if seed is None else seed)
        if self.batch_size < 1 or self.steps < 1:
            raise ValueError(
                f"batch_size and steps must be positive, got {self.batch_size} and {self.steps}"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")
        self.noises = tuple(str(n) for n in noise_files)
        if not self.noises:
            raise ValueError("the noise list is empty; the feed needs at least one noise clip")
        self.target_bins = (
            self.features.num_mels if variant == "proposed" else self.features.linear_bins
        )

        # Frame counts from the WAV headers: which utterances are too short is known now.
        frames = {str(u): _lj_frames(lj, str(u), self.features) for u in utterance_ids}
        self.short_utterances = tuple(u for u, t in frames.items() if t < self.block_frames)
        self.utterances = tuple(u for u, t in frames.items() if t >= self.block_frames)
        if not self.utterances:
            raise ValueError(
                f"none of the {len(frames)} utterances has at least {self.block_frames} frames "
                f"(one block); nothing to train on"
            )
        self.num_frames = {u: frames[u] for u in self.utterances}
        self._blocks = np.array(
            [
                spectrogram_blocks.count_blocks(frames[u], self.block_frames)
                for u in self.utterances
            ],
            dtype=np.int64,
        )
        self.fixed_epoch = None if fixed_epoch is None else int(fixed_epoch)
        self.blas_threads = None if blas_threads is None else int(blas_threads)
        self._passes: dict[int, np.ndarray] = {}
        self._epoch_starts = [0]  # stream position where epoch e begins
        self._lock = threading.Lock()
        self._begun = False
        self._target_cache = _LRU(target_cache)
        self._noise_cache = _LRU(noise_cache)
        self._cache_sizes = (int(target_cache), int(noise_cache))
        self.set_epoch(0 if self.fixed_epoch is None else self.fixed_epoch, _force=True)

    # -- pickling (spawned worker processes): caches are per process ------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_target_cache"] = None
        state["_noise_cache"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._target_cache = _LRU(self._cache_sizes[0])
        self._noise_cache = _LRU(self._cache_sizes[1])
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BlockFeed({self.variant!r}, {len(self.utterances)} utterances "
            f"({self.skipped} skipped), {len(self.noises)} noises, batch {self.batch_size}, "
            f"{self.steps} steps, epoch {self.epoch}, seed {self.seed})"
        )

    @property
    def epoch(self) -> int:
        """The epoch whose batches ``feed[i]`` returns (set by :meth:`set_epoch`)."""
        return self._layout[0]

    @property
    def skipped(self) -> int:
        """Number of utterances skipped for being shorter than one block."""
        return len(self.short_utterances)

    def __len__(self) -> int:
        return self.steps

    # -- epochs ---------------------------------------------------------------------
    def set_epoch(self, epoch: int, *, _force: bool = False) -> None:
        """Make ``feed[i]`` return the batches of ``epoch`` (0-based).

        Call it when resuming training at ``epoch`` (or use :meth:`epoch_callback`).
        Ignored by a feed with ``fixed_epoch``.
        """
        if self.fixed_epoch is not None and not _force:
            return
        epoch = int(epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        # Laid out now, in the main process; one tuple so threads never see a mix.
        self._layout = (epoch, self._batch_bounds(epoch))

    def on_epoch_begin(self) -> None:
        """Keras hook: note that an epoch has begun (see :meth:`on_epoch_end`)."""
        self._begun = True

    def on_epoch_end(self) -> None:
        """Keras hook: advance to the next epoch if one was begun.

        Keras also calls this before the first epoch and at every ``evaluate``; those
        calls, without an ``on_epoch_begin`` since the last one, change nothing.
        """
        if self._begun:
            self._begun = False
            if self.fixed_epoch is None:
                self.set_epoch(self.epoch + 1)

    def epoch_callback(self) -> keras.callbacks.Callback:
        """A Keras callback that calls :meth:`set_epoch` with ``fit``'s epoch number.

        Pass it to ``model.fit(..., callbacks=[feed.epoch_callback()])``: the feed then
        serves epoch ``e`` during ``fit``'s epoch ``e`` (``initial_epoch`` included),
        however often Keras calls the dataset's epoch hooks.
        """
        return _SetFeedEpoch(self)

    # -- the stream of utterances ---------------------------------------------------------
    def _pass(self, p: int) -> np.ndarray:
        perm = self._passes.get(p)
        if perm is None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, _STREAM_TAG, p]))
            perm = rng.permutation(len(self.utterances))
            self._passes[p] = perm
        return perm

    def _stream(self, q: int) -> int:
        """Index into :attr:`utterances` of stream position ``q``."""
        n = len(self.utterances)
        return int(self._pass(q // n)[q % n])

    def _walk(self, start: int) -> np.ndarray:
        """Stream positions where the ``steps`` batches of an epoch starting at ``start``
        begin, plus the end position (shape ``(steps + 1,)``)."""
        bounds = np.empty(self.steps + 1, dtype=np.int64)
        q = start
        for i in range(self.steps):
            bounds[i] = q
            have = 0
            while have < self.batch_size:
                have += int(self._blocks[self._stream(q)])
                q += 1
        bounds[self.steps] = q
        return bounds

    def _batch_bounds(self, epoch: int) -> np.ndarray:
        """:meth:`_walk` of ``epoch``, replaying the epochs before it if needed."""
        with self._lock:
            while len(self._epoch_starts) <= epoch:
                e = len(self._epoch_starts) - 1
                self._epoch_starts.append(int(self._walk(self._epoch_starts[e])[-1]))
            start = self._epoch_starts[epoch]
            bounds = self._walk(start)
            n = len(self.utterances)
            for p in [p for p in list(self._passes) if p < start // n - 1]:
                self._passes.pop(p, None)  # passes well behind this epoch are not needed again
            return bounds

    def _check_index(self, index) -> int:
        index = int(index)
        if not 0 <= index < self.steps:
            raise IndexError(f"batch index {index} out of range for {self.steps} steps per epoch")
        return index

    def batch_plan(self, index: int, epoch: int | None = None) -> list[UtterancePlan]:
        """Which utterances, interferers and start frames make up batch ``index``.

        Parameters
        ----------
        index : int
            Batch number within the epoch, ``0 <= index < steps``.
        epoch : int, optional
            Default: the feed's current epoch. A feed with ``fixed_epoch`` always uses
            that one.

        Returns
        -------
        list of UtterancePlan
            In batch order; ``[(p.utterance, p.noise, s) for p in plan for s in p.starts]``
            names the B blocks of ``feed[index]`` in order.
        """
        index = self._check_index(index)
        if epoch is None:
            epoch = self.epoch
        elif self.fixed_epoch is not None:
            epoch = self.fixed_epoch
        epoch = int(epoch)
        current, bounds = self._layout
        if epoch != current:
            bounds = self._batch_bounds(epoch)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _BATCH_TAG, epoch, index]))
        plan, room = [], self.batch_size
        for q in range(int(bounds[index]), int(bounds[index + 1])):
            utt = self.utterances[self._stream(q)]
            noise = self.noises[int(rng.integers(len(self.noises)))]
            t = self.num_frames[utt]
            starts = spectrogram_blocks.sample_block_starts(t, rng, self.block_frames, utt)
            kept = [int(s) for s in starts[:room]]
            room -= len(kept)
            plan.append(UtterancePlan(utt, noise, t, tuple(kept), len(starts) - len(kept)))
        return plan

    # -- loading and features ----------------------------------------------------------
    def _target_signal(self, utt: str) -> np.ndarray:
        return self._target_cache.get(utt, lambda: self.lj.load_target(utt, self.features))

    def _noise_clip(self, name: str) -> np.ndarray:
        return self._noise_cache.get(name, lambda: self.esc.load(name, self.features.sample_rate))

    def cache_info(self) -> dict[str, int]:
        """Hits, misses and sizes of this process's signal caches."""
        t, n = self._target_cache, self._noise_cache
        return {
            "target_hits": t.hits,
            "target_misses": t.misses,
            "targets_cached": len(t),
            "noise_hits": n.hits,
            "noise_misses": n.misses,
            "noises_cached": len(n),
        }

    def _utterance_blocks(self, p: UtterancePlan):
        """Mixture linear, mixture mel and target blocks of one planned utterance."""
        feat = self.features
        try:
            s1 = self._target_signal(p.utterance)
            clip = self._noise_clip(p.noise)
            if s1.shape[0] != p.num_frames * feat.hop_size:
                raise ValueError(
                    f"s1 has {s1.shape[0]} samples, but its WAV header promised "
                    f"{p.num_frames} frames of {feat.hop_size}"
                )
            mix = mixing.simulate_mixture_paper(s1, clip, target_id=p.utterance, noise_id=p.noise)
            segments = block_segments(p.starts, self.block_frames)
            linear, mel = frame_features(mix.mixture, segments, feat)
            kind = FEED_VARIANTS[self.variant]
            target = frame_features(mix.target, segments, feat, kinds=(kind,))[0]
        except ValueError as err:
            raise FeedError(
                f"cannot make training blocks from utterance {p.utterance!r} with noise "
                f"{p.noise!r}: {err}",
                [(p.utterance, p.noise)],
            ) from err
        starts = np.asarray(p.starts, dtype=np.int64)
        b = self.block_frames
        return (
            spectrogram_blocks.extract_blocks(linear, starts, b),
            spectrogram_blocks.extract_blocks(mel, starts, b),
            spectrogram_blocks.extract_blocks(target, starts, b),
        )

    def __getitem__(self, index):
        """Batch ``index`` of the current epoch.

        Returns
        -------
        inputs : dict
            ``"input1"``: (B, 64, 512) float32, the mixtures' normalised linear spectra;
            ``"input2"``: (B, 64, 80) float32, their normalised mel spectra.
        target : numpy.ndarray, float32, shape (B, 64, F, 1)
            The scaled targets' normalised mel (F = 80) or linear spectrum (F = 512).

        Raises
        ------
        FeedError
            If a block holds NaN/inf values or a mixture cannot be simulated; the message
            names the utterance(s) and noise file(s).
        IndexError
            If ``index`` is not in ``[0, steps)``.
        """
        plan = self.batch_plan(index)
        _limit_blas(self.blas_threads)
        feat, b, n = self.features, self.block_frames, self.batch_size
        x1 = np.empty((n, b, feat.linear_bins), dtype=np.float32)
        x2 = np.empty((n, b, feat.num_mels), dtype=np.float32)
        y = np.empty((n, b, self.target_bins, 1), dtype=np.float32)
        sources, k = [], 0
        for p in plan:
            if not p.starts:
                continue
            lin, mel, tgt = self._utterance_blocks(p)
            m = len(p.starts)
            x1[k : k + m], x2[k : k + m], y[k : k + m, ..., 0] = lin, mel, tgt
            sources += [(p.utterance, p.noise)] * m
            k += m
        bad = ~(
            np.isfinite(x1).all(axis=(1, 2))
            & np.isfinite(x2).all(axis=(1, 2))
            & np.isfinite(y).all(axis=(1, 2, 3))
        )
        if bad.any():
            culprits = list(dict.fromkeys(sources[i] for i in np.flatnonzero(bad)))
            named = ", ".join(f"{u!r} with noise {z!r}" for u, z in culprits)
            raise FeedError(
                f"batch {index} of epoch {self.epoch}: {int(bad.sum())} block(s) hold NaN or "
                f"infinite values, from utterance {named}",
                culprits,
            )
        return {"input1": x1, "input2": x2}, y


class _SetFeedEpoch(keras.callbacks.Callback):
    """Keras callback: ``feed.set_epoch(epoch)`` at the start of every ``fit`` epoch."""

    def __init__(self, feed: BlockFeed):
        super().__init__()
        self.feed = feed

    def on_epoch_begin(self, epoch, logs=None):
        self.feed.set_epoch(epoch)


def training_feed(lj, esc, splits, profile, variant: str = "proposed", **kwargs) -> BlockFeed:
    """The training feed of a profile: ``target_train`` × ``noise_train``.

    ``steps_per_epoch`` batches per epoch, seeded with ``profile.encoder.seed``;
    ``kwargs`` go to :class:`BlockFeed` (e.g. ``workers``).
    """
    kwargs.setdefault("steps", profile.encoder.steps_per_epoch)
    return BlockFeed(
        lj, esc, splits.target_train, splits.noise_train, profile, variant=variant, **kwargs
    )


def validation_feed(lj, esc, splits, profile, variant: str = "proposed", **kwargs) -> BlockFeed:
    """The validation feed of a profile: ``target_valid`` × ``noise_valid``, always epoch 0.

    ``validation_steps`` batches, identical every epoch (``fixed_epoch=0``);
    ``kwargs`` go to :class:`BlockFeed`.
    """
    kwargs.setdefault("steps", profile.encoder.validation_steps)
    kwargs.setdefault("fixed_epoch", 0)
    return BlockFeed(
        lj, esc, splits.target_valid, splits.noise_valid, profile, variant=variant, **kwargs
    )


def feed_rate(feed: BlockFeed, batches: int | None = None, *, through_keras: bool = False) -> float:
    """Blocks per second the feed produces.

    Parameters
    ----------
    feed : BlockFeed
    batches : int, optional
        Batches to time (default: one epoch, ``len(feed)``); indices wrap around the epoch.
    through_keras : bool
        False: time ``feed[i]`` in this process (what ``fit`` does with no workers).
        True: pull the batches through Keras' own worker queue with the feed's
        ``workers`` / ``use_multiprocessing`` settings, as ``fit`` would (worker start-up
        included); the feed's epoch is restored afterwards.

    Returns
    -------
    float
        ``batches · batch_size / seconds``.
    """
    batches = len(feed) if batches is None else int(batches)
    if batches < 1:
        raise ValueError(f"batches must be positive, got {batches}")
    if not through_keras:
        t0 = time.perf_counter()
        for i in range(batches):
            feed[i % len(feed)]
        return batches * feed.batch_size / (time.perf_counter() - t0)
    # Keras' adapter is what fit() uses; it is not public API, hence the private import.
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    epoch, done = feed.epoch, 0
    t0 = time.perf_counter()
    try:
        while done < batches:
            adapter = PyDatasetAdapter(feed)
            adapter.on_epoch_begin()
            for _ in adapter.get_numpy_iterator():
                done += 1
                if done >= batches:
                    break
            adapter.on_epoch_end()
        return batches * feed.batch_size / (time.perf_counter() - t0)
    finally:
        feed.set_epoch(epoch)
