"""Chapter 8's harder conditions: fixed sets of mixtures beyond the paper's recipe, and
every method of Table I run and scored on them.

The paper mixes one LJSpeech utterance with one ESC-50 clip, scaled by peaks, in no room.
Its conclusion plans harder conditions; this module builds them as one seeded set of
test mixtures (:class:`~synthsep_lib.pipeline.runs.MixtureSetPaths` named
:data:`SET_NAME`), in the layout of Chapter 1's test set, so that every runner of the
book separates them unchanged. Each condition changes one thing from the reference
(``conditions.reference_snr_db``, no room, one interferer of the paper's categories,
an eSpeak voice), for the same ``conditions.pairs`` utterances and noise clips:

================  ==========================================  ==========================
condition         what changes                                ``level`` (unit)
================  ==========================================  ==========================
``snr``           the SNR (the sweep holds the reference)     SNR (dB)
``room``          target and noise in a reverberant room      T60 (s)
``interferers``   a second noise clip at the same time        interferers (2)
``unseen-noise``  a clip of a category the paper left out     1
``real-voice``    a real human voice (CMU ARCTIC) as target   1
================  ==========================================  ==========================

All mixtures use the SNR-controlled protocol
(:func:`~synthsep_lib.harder_mixing.simulate_mixture_harder`): the paper's peak scaling
gives whatever SNR the peaks imply, which a sweep cannot hold fixed. The reference of the
evaluation is always the dry, unscaled utterance (``NNN_source.wav``); in a room, its
reverberation counts as part of the "noise" the methods must remove.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd

from .. import audio, corpora
from ..files import reset_if_stale, write_text_atomic
from ..harder_mixing import room_impulse_responses, simulate_mixture_harder
from ..mixing import MANIFEST_COLUMNS, read_test_manifest, test_wav_name, write_test_manifest
from .runs import MixtureSetPaths, splits_fingerprint

__all__ = [
    "SET_NAME",
    "CONDITIONS",
    "METHODS",
    "METRICS",
    "REAL_VOICE_ID",
    "mixture_set_paths",
    "plan_conditions",
    "write_conditions",
    "separate_conditions",
    "score_conditions",
]

#: Folder of the set under ``runs/<profile>/mixture_sets/``.
SET_NAME = "harder_conditions"

#: Condition → what it is, in the order of the manifest.
CONDITIONS = {
    "snr": "SNR sweep",
    "room": "reverberant room",
    "interferers": "two interferers",
    "unseen-noise": "noise of a category left out of training",
    "real-voice": "a real human voice",
}

#: The methods of Table I run on every mixture (the paper's rows and Chapter 7's two);
#: the oracles fed the true mel are left out: they never see the mixture.
METHODS = (
    "input",
    "proposed",
    "proposed-parallel",
    "proposed-parallel-ft",
    "b1",
    "b2",
    "ibm-gt",
    "proposed-res-gt",
    "b1-gt",
)

#: Metrics of the chapter (names of :func:`~synthsep_lib.evaluation.metrics.compute_metrics`):
#: the paper's raw PESQ, STOI, DNSMOS (no reference) and SI-SDR.
METRICS = ("pesq_paper", "stoi", "dnsmos_ovrl", "si_sdr")

#: ``target_id`` of the real voice's mixtures.
REAL_VOICE_ID = "arctic_a0009"

#: Columns the set's manifest adds to :data:`~synthsep_lib.mixing.MANIFEST_COLUMNS`.
EXTRA_COLUMNS = (
    "condition",
    "level",
    "noise_files",
    "noise_offsets",
    "noise_category",
    "t60",
    "measured_t60",
    "room_seed",
    "protocol",
)


def mixture_set_paths(run_root, profile_name: str) -> MixtureSetPaths:
    """The run folder view of the harder-conditions set (:data:`SET_NAME`)."""
    return MixtureSetPaths(run_root, profile_name, SET_NAME)


def plan_conditions(splits, esc, profile) -> pd.DataFrame:
    """Draw the set's utterances, clips and rooms (no audio is read): one row per mixture.

    With ``rng = numpy.random.default_rng(conditions.seed)``: ``pairs`` distinct test
    utterances; for each, one test clip (the paper's categories, clips unseen in training)
    and a second one for the two-interferer condition; and ``pairs`` clips of the
    categories the paper left out (:data:`~synthsep_lib.corpora.NOISE_TARGETS`), from
    distinct categories as far as there are enough. Each noise starts at a random
    fraction of its clip (``offset_fraction``), each room has its own seed.

    Parameters
    ----------
    splits : corpora.Splits
        ``target_test`` and ``noise_test``.
    esc : corpora.ESC50
        Its ``clips`` table (for the unseen categories).
    profile : Profile
        ``conditions``.

    Returns
    -------
    pandas.DataFrame
        Columns ``condition``, ``level``, ``target_id``, ``noise_files`` (list),
        ``offset_fractions`` (list), ``noise_category`` (of the first clip), ``t60``
        (0 = no room), ``room_seed``.

    Raises
    ------
    ValueError
        If the split has fewer test utterances than ``pairs`` or no test clip.
    """
    cond = profile.conditions
    targets, noises = list(splits.target_test), list(splits.noise_test)
    if len(targets) < cond.pairs:
        raise ValueError(
            f"conditions.pairs is {cond.pairs}, but the split has {len(targets)} test utterances"
        )
    if not noises:
        raise ValueError("the split has no test noise clip")
    rng = np.random.default_rng(cond.seed)
    utterances = [targets[i] for i in rng.choice(len(targets), cond.pairs, replace=False)]
    clips = [
        noises[i] for i in rng.choice(len(noises), cond.pairs, replace=len(noises) < cond.pairs)
    ]
    seconds = []
    for clip in clips:
        others = [n for n in noises if n != clip] or [clip]
        seconds.append(others[int(rng.integers(len(others)))])
    table = esc.clips.set_index("filename")
    unseen = esc.clips[~esc.clips["target"].isin(corpora.NOISE_TARGETS)]
    if unseen.empty:
        raise ValueError("the ESC-50 corpus has no clip outside the paper's categories")
    categories = sorted(unseen["category"].unique())
    chosen = rng.choice(len(categories), cond.pairs, replace=len(categories) < cond.pairs)
    unseen_clips = []
    for c in chosen:
        candidates = sorted(unseen.loc[unseen["category"] == categories[c], "filename"])
        unseen_clips.append(candidates[int(rng.integers(len(candidates)))])
    fractions = rng.random((cond.pairs, 2))

    rows = []

    def add(condition, level, pair, target_id, files, t60=0.0):
        rows.append(
            {
                "condition": condition,
                "level": float(level),
                "target_id": target_id,
                "noise_files": list(files),
                "offset_fractions": [float(f) for f in fractions[pair, : len(files)]],
                "noise_category": str(table.loc[files[0], "category"]),
                "t60": float(t60),
                "room_seed": int(cond.seed) * 1000 + len(rows),
            }
        )

    for snr in cond.snr_levels_db:
        for p in range(cond.pairs):
            add("snr", snr, p, utterances[p], [clips[p]])
    for t60 in cond.t60_seconds:
        for p in range(cond.pairs):
            add("room", t60, p, utterances[p], [clips[p]], t60)
    for p in range(cond.pairs):
        add("interferers", 2, p, utterances[p], [clips[p], seconds[p]])
    for p in range(cond.pairs):
        add("unseen-noise", 1, p, utterances[p], [unseen_clips[p]])
    for p in range(cond.pairs):
        add("real-voice", 1, p, REAL_VOICE_ID, [clips[p]])
    return pd.DataFrame(rows)


def _signature(plan: pd.DataFrame, profile, splits, real_voice: np.ndarray) -> str:
    """SHA-1 of everything the set's audio is made from."""
    digest = hashlib.sha1()
    digest.update(plan.to_json(orient="records").encode())
    digest.update(json.dumps(profile.features.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps(dataclasses.asdict(profile.conditions), sort_keys=True).encode())
    digest.update(splits_fingerprint(splits).encode())
    digest.update(np.ascontiguousarray(real_voice, np.float32).tobytes())
    return digest.hexdigest()


def _central(wav: np.ndarray, seconds: float, sample_rate: int) -> np.ndarray:
    """The central ``seconds`` of ``wav`` (shape (n,)); all of it if ``seconds`` is 0 or
    longer than ``wav``."""
    keep = round(seconds * sample_rate)
    if keep <= 0 or keep >= wav.size:
        return wav
    start = (wav.size - keep) // 2
    return wav[start : start + keep]


def write_conditions(
    paths: MixtureSetPaths, profile, lj, esc, splits, real_voice: np.ndarray, *, progress=True
) -> pd.DataFrame:
    """Write the set's manifest and mixtures (resumable, atomic), as Chapter 1 does.

    For every row of :func:`plan_conditions`: the target (the utterance or the real voice,
    its central ``conditions.max_seconds`` when that is set, prepared as
    ``lj.load_target`` does: peak 0.999, 768 zeros in front, a multiple of 256), the
    clips at their offsets, and for ``room`` rows the room of
    :func:`~synthsep_lib.harder_mixing.room_impulse_responses`, mixed by
    :func:`~synthsep_lib.harder_mixing.simulate_mixture_harder` at the row's SNR;
    ``data/test/NNN_{target,noise,mixture,source}.wav`` (float WAV) and
    ``data/test_manifest.csv``. A set made from other settings, splits or voice is
    deleted first; a complete one is read back.

    Parameters
    ----------
    paths : MixtureSetPaths
    profile : Profile
    lj : corpora.LJSpeech
    esc : corpora.ESC50
    splits : corpora.Splits
    real_voice : numpy.ndarray, shape (n,)
        The real recording at ``profile.features.sample_rate``, not padded
        (:func:`~synthsep_lib.pipeline.real_voice.load_real_voice`).
    progress : bool

    Returns
    -------
    pandas.DataFrame
        The manifest: :data:`~synthsep_lib.mixing.MANIFEST_COLUMNS` and
        :data:`EXTRA_COLUMNS` (lists joined with ``;``).
    """
    feat, cond = profile.features, profile.conditions
    plan = plan_conditions(splits, esc, profile)
    made_from = _signature(plan, profile, splits, real_voice)
    reset_if_stale(paths.test_audio, made_from)
    stamp = paths.data / "made_from.txt"
    kinds = ("target", "noise", "mixture", "source")
    complete = paths.test_manifest.exists() and all(
        (paths.test_audio / test_wav_name(p, k)).exists() for p in range(len(plan)) for k in kinds
    )
    if complete and stamp.exists() and stamp.read_text() == made_from:
        return read_test_manifest(paths.test_manifest)

    def target(target_id: str) -> np.ndarray:
        """s1 of a row: the (central ``max_seconds`` of the) utterance, prepared as r9y9's."""
        raw = real_voice if target_id == REAL_VOICE_ID else lj.load(target_id, feat)
        return audio.prepare_lj_audio(_central(raw, cond.max_seconds, feat.sample_rate), feat)

    clips: dict[str, np.ndarray] = {}
    iterator = plan.iterrows()
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(plan), desc="harder conditions", unit="mixture")
    rows = []
    for pair, row in iterator:
        s1 = target(row.target_id)
        noises = []
        for name in row.noise_files:
            if name not in clips:
                clips[name] = esc.load(name, feat.sample_rate)
            noises.append(clips[name])
        offsets = [int(f * len(n)) for f, n in zip(row.offset_fractions, noises, strict=True)]
        room = None
        if row.t60 > 0:
            room = room_impulse_responses(
                row.t60, 1 + len(noises), feat.sample_rate, int(row.room_seed)
            )
        snr = cond.reference_snr_db if row.condition != "snr" else row.level
        mix = simulate_mixture_harder(
            s1,
            noises,
            snr,
            rooms=room,
            noise_offsets=offsets,
            target_id=row.target_id,
            noise_ids=list(row.noise_files),
        )
        signals = {"target": mix.target, "noise": mix.noise, "mixture": mix.mixture, "source": s1}
        for kind in kinds:
            audio.save_wav(
                paths.test_wav(pair, kind), signals[kind], feat.sample_rate, subtype="FLOAT"
            )
        rows.append(
            {
                "pair": pair,
                "target_id": row.target_id,
                "noise_file": row.noise_files[0],
                "noise_offset": offsets[0],
                "noise_peak_scale": mix.noise_gain,
                "mixture_scale": mix.scale,
                "snr_db": mix.snr_db,
                "num_samples": int(s1.shape[0]),
                "condition": row.condition,
                "level": row.level,
                "noise_files": ";".join(row.noise_files),
                "noise_offsets": ";".join(str(o) for o in offsets),
                "noise_category": row.noise_category,
                "t60": row.t60,
                "measured_t60": room.measured_t60 if room is not None else 0.0,
                "room_seed": row.room_seed,
                "protocol": "snr",
            }
        )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS) + list(EXTRA_COLUMNS))
    write_test_manifest(paths.test_manifest, manifest)
    write_text_atomic(stamp, made_from)
    return read_test_manifest(paths.test_manifest)


def separate_conditions(paths: MixtureSetPaths, profile, *, device="cpu", progress=False):
    """Run every method of :data:`METHODS` on the set with the run's trained models.

    The runners of Chapters 2–4 and 7, unchanged (resumable, timed, atomic): the two
    encoders' estimates, the signal-processing rows, the profile's WaveNet (published or
    trained; all mixtures, whatever ``vocoder.synthesis_files`` says), B2 and both
    parallel vocoders.

    Returns
    -------
    pandas.DataFrame
        One row per (method, pair) with
        :data:`~synthsep_lib.pipeline.test_set.OUTPUT_COLUMNS`.

    Raises
    ------
    FileNotFoundError
        A trained model is missing (the message names the chapter that trains it).
    """
    from . import denoising, encoder_inference, signal_methods, vocoding
    from .parallel_vocoder_training import load_parallel_vocoder
    from .vocoder_training import load_profile_wavenet

    run_root = paths.root.parent
    for variant in ("proposed", "b1"):
        encoder_inference.predict_test_set(paths, profile, variant, progress=progress)
    signal_rows = [m for m in METHODS if m in signal_methods.METHODS]
    written = [signal_methods.write_signal_outputs(paths, profile, signal_rows, progress=progress)]
    pairs = [int(p) for p in read_test_manifest(paths.test_manifest)["pair"]]
    wavenet = load_profile_wavenet(run_root, profile, device)
    written.append(
        vocoding.vocode_test_set(
            paths, profile, wavenet, mel_source="encoder", pairs=pairs, progress=progress
        )
    )
    written.append(denoising.denoise_test_set(paths, profile, progress=progress))
    for method, stage in (("proposed-parallel", "clean"), ("proposed-parallel-ft", "finetuned")):
        vocoder = load_parallel_vocoder(run_root, profile, stage, device)
        written.append(
            vocoding.vocode_test_set_parallel(
                paths, profile, vocoder, method, pairs=pairs, progress=progress
            )
        )
    return pd.concat(written, ignore_index=True)


def score_conditions(paths: MixtureSetPaths, profile, *, n_jobs=2, progress=False):
    """:data:`METRICS` of every method's outputs, with each mixture's condition.

    Returns
    -------
    pandas.DataFrame
        One row per (method, pair): ``method``, ``pair``, the metric columns, and the
        manifest's ``condition``, ``level``, ``snr_db``, ``t60``, ``measured_t60``,
        ``target_id``, ``noise_files``, ``noise_category``.
    """
    from .scoring import evaluate_outputs

    scores = evaluate_outputs(
        paths, profile, METHODS, metrics=list(METRICS), n_jobs=n_jobs, progress=progress
    )
    manifest = read_test_manifest(paths.test_manifest)
    keep = [
        "pair",
        "condition",
        "level",
        "snr_db",
        "t60",
        "measured_t60",
        "target_id",
        "noise_files",
        "noise_category",
    ]
    return scores.merge(manifest[keep], on="pair", how="left")
