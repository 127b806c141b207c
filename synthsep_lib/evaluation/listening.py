"""The paper's listening test: stimuli, sessions, a crash-safe response store, analysis.

The paper (PAPER_FACTS §9) ran two paired-comparison tests, **Proposed vs B1** and
**Proposed vs B2**. Each trial plays the outputs of two systems for the same mixture, in
random A/B order, with the mixture as reference. Two attributes were asked in two
separate sessions, on one five-point scale:

* ``naturalness``: "A sounds more natural than B";
* ``preference``: "You overall prefer A over B";

answered Worse, Slightly worse, Not sure, Slightly better, Better (scored 1-5).

What this module adds around that design:

* :func:`prepare_stimuli` loudness-normalises every stimulus to the same integrated
  loudness (ITU-R BS.1770 with ``pyloudnorm``), so that level does not decide preference.
* :func:`make_session_plan` draws one listener's session (seeded, so a session that
  was interrupted continues with the same trials).
* :class:`ResponseStore` appends every answer to a CSV file at once (flushed and
  synced): a kernel crash loses nothing, and the listener resumes where they stopped.
* :class:`ListeningTestWidget` is the ipywidgets front end; all its logic lives in the
  store and the plan, so it is a thin layer.
* :func:`simulate_listener` answers a plan like a seeded listener, so the analysis and its
  figures run headless (CI, the rendered book); its answers carry ``simulated=True``.
* The analysis: :func:`answer_distribution` (the paper's Fig. 3), :func:`mean_scores`,
  :func:`sign_test`, :func:`attribute_agreement`, :func:`listener_consistency`,
  :func:`summary_table`; :func:`export_webmushra` writes the stimuli for webMUSHRA.

**Score convention.** An answer is stored twice: ``answer`` is what the listener clicked
on the A-vs-B scale (5 = A better), ``a`` says which system was played as A, and
``score`` is the same answer about the *scored* system (``system``, the Proposed one):
``score = answer`` if the system was A, else ``6 - answer``. All analysis uses
``score``, so the A/B randomisation is undone (5 = Proposed better).

Used in: Chapter 6 (06_listening_test).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from .. import audio
from ..runs import (
    RunPaths,
    atomic_path,
    file_sha1,
    require_artifact,
    reset_if_stale,
    write_text_atomic,
)
from .runner import CHAPTER_ONE, output_path
from .tables import TABLE_ONE_ROWS

__all__ = [
    "SCALE",
    "ATTRIBUTES",
    "COMPARISONS",
    "RESPONSE_COLUMNS",
    "PAPER_LISTENING",
    "listening_dir",
    "stimulus_path",
    "loudness_lufs",
    "prepare_stimuli",
    "read_stimuli",
    "make_session_plan",
    "ResponseStore",
    "ListeningTestWidget",
    "simulate_listener",
    "simulated_responses",
    "answer_distribution",
    "mean_scores",
    "sign_test",
    "attribute_agreement",
    "listener_consistency",
    "summary_table",
    "export_webmushra",
]

#: The paper's five-point scale, scored 1-5 in this order.
SCALE = ("Worse", "Slightly worse", "Not sure", "Slightly better", "Better")

#: Attribute -> the statement listeners rate (one attribute per session).
ATTRIBUTES = {
    "naturalness": "A sounds more natural than B",
    "preference": "You overall prefer A over B",
}

#: (scored system, opponent) method folders of the paper's two tests.
COMPARISONS = (("proposed", "b1"), ("proposed", "b2"))

#: Columns of the response CSV (and of every responses table in this module).
RESPONSE_COLUMNS = (
    "listener",
    "attribute",
    "trial",
    "pair",
    "system",
    "opponent",
    "a",
    "answer",
    "score",
    "simulated",
    "time",
)

#: What the paper reports (PAPER_FACTS §9; 16 listeners x 20 pairs per test). The
#: percentages are of the naturalness answers "Better" and "Slightly better".
PAPER_LISTENING = pd.DataFrame(
    {
        "naturalness mean": [4.29, 4.49],
        "preference mean": [4.28, 4.18],
        "pearson r": [0.51, 0.38],
        "mean abs diff": [0.48, 0.68],
        "naturalness % Better": [47.0, 48.0],
        "naturalness % Slightly better": [41.0, 34.0],
    },
    index=pd.Index(["Proposed vs B1", "Proposed vs B2"], name="comparison"),
)

CHAPTER_FOUR = "Chapter 4 (04_baselines)"
REFERENCE_ROLE = "mixture"
STIMULI_MANIFEST = "stimuli.csv"
# BS.1770 measures 400 ms gating blocks; shorter signals get one ungated block.
BS1770_BLOCK_S = 0.4
# The absolute gate of BS.1770: blocks quieter than this are silence.
SILENCE_LUFS = -70.0
_STIMULI_DTYPES = {
    "pair": int,
    "role": str,
    "file": str,
    "source": str,
    "duration_s": float,
    "loudness_lufs": float,
    "measurement": str,
    "gain_db": float,
    "limiter_db": float,
}
_DISPLAY = {method: name for name, method in TABLE_ONE_ROWS.items()}
_KEY = ("listener", "attribute", "pair", "system", "opponent")


# --------------------------------------------------------------------------------------
# Names and small helpers
# --------------------------------------------------------------------------------------


def listening_dir(paths: RunPaths) -> Path:
    """``runs/<profile>/eval/listening/``: stimuli, responses and exports of the test.

    Used in: Chapter 6 (06_listening_test).
    """
    return paths.eval / "listening"


def stimulus_path(stimuli_dir: str | os.PathLike, pair: int, role: str) -> Path:
    """``<stimuli_dir>/<pair:03d>_<role>.wav``; ``role`` is a method folder or ``mixture``.

    Used in: Chapter 6 (06_listening_test).
    """
    return Path(stimuli_dir) / f"{int(pair):03d}_{role}.wav"


def _comparison_label(system: str, opponent: str) -> str:
    return f"{_DISPLAY.get(system, system)} vs {_DISPLAY.get(opponent, opponent)}"


def _stable_seed(*parts) -> int:
    """A 64-bit seed from strings/ints, the same in every Python process (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _check_listener(listener) -> str:
    if not isinstance(listener, str) or not listener.strip():
        raise ValueError(f"listener id must be a non-empty string; got {listener!r}")
    if any(c in listener for c in "\r\n"):
        raise ValueError(f"listener id must be one line of text; got {listener!r}")
    return listener.strip()


def _check_attribute(attribute) -> str:
    if attribute not in ATTRIBUTES:
        raise ValueError(f"attribute must be one of {sorted(ATTRIBUTES)}; got {attribute!r}")
    return attribute


def _answer_value(answer) -> int:
    """An answer as 1-5: an int in 1..5 or one of the :data:`SCALE` labels."""
    if isinstance(answer, str) and answer in SCALE:
        return SCALE.index(answer) + 1
    if isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and 1 <= answer <= 5:
        return int(answer)
    raise ValueError(f"answer must be an integer 1-5 or one of {list(SCALE)}; got {answer!r}")


def _response_row(trial: Mapping, answer, simulated: bool, time: str = "") -> dict:
    """One response from a plan row and the A-vs-B answer (see the score convention)."""
    value = _answer_value(answer)
    listener = _check_listener(trial["listener"])
    attribute = _check_attribute(trial["attribute"])
    system, opponent, a = str(trial["system"]), str(trial["opponent"]), str(trial["a"])
    if system == opponent:
        raise ValueError(f"a trial compares two different systems; got {system!r} twice")
    if a not in (system, opponent):
        raise ValueError(f"system played as A must be {system!r} or {opponent!r}; got {a!r}")
    pair = trial["pair"]
    if isinstance(pair, bool) or not isinstance(pair, (int, np.integer)) or pair < 0:
        raise ValueError(f"pair must be a test pair number (int >= 0); got {pair!r}")
    return {
        "listener": listener,
        "attribute": attribute,
        "trial": int(trial["trial"]),
        "pair": int(pair),
        "system": system,
        "opponent": opponent,
        "a": a,
        "answer": value,
        "score": value if a == system else 6 - value,
        "simulated": bool(simulated),
        "time": time,
    }


# --------------------------------------------------------------------------------------
# Stimuli
# --------------------------------------------------------------------------------------


def loudness_lufs(wav, sample_rate: int, name: str = "signal") -> tuple[float, str]:
    """Integrated loudness of a mono signal (ITU-R BS.1770-4, via ``pyloudnorm``).

    BS.1770 averages K-weighted power over 400 ms blocks, gated at -70 LUFS and at
    10 LU below the ungated level. A signal shorter than one block (0.4 s) cannot be
    gated; it is measured as **one ungated block** spanning the whole signal (K-weighted
    mean power), with a warning.

    Parameters
    ----------
    wav : array_like, shape (n,)
        Samples in [-1, 1].
    sample_rate : int
        Hz.
    name : str
        Names the signal in warnings and errors (e.g. its file).

    Returns
    -------
    (float, str)
        Loudness in LUFS, and how it was measured: ``"BS.1770"`` or
        ``"ungated (shorter than 0.4 s)"``.

    Raises
    ------
    ValueError
        If the signal is silent (quieter than the -70 LUFS absolute gate throughout):
        its loudness, and so its gain, is undefined.

    Used in: Chapter 6 (06_listening_test).
    """
    import pyloudnorm

    x = np.asarray(wav, dtype=np.float64)
    duration = x.shape[0] / sample_rate
    if duration >= BS1770_BLOCK_S:
        block, method = BS1770_BLOCK_S, "BS.1770"
    else:
        warnings.warn(
            f"{name} lasts {duration:.3f} s, shorter than one 0.4 s BS.1770 block; "
            "measuring it as a single ungated block",
            UserWarning,
            stacklevel=2,
        )
        # Slightly less than the whole signal: pyloudnorm needs more samples than a block.
        block = x.shape[0] * (1 - 1e-9) / sample_rate
        method = "ungated (shorter than 0.4 s)"
    with np.errstate(divide="ignore"):
        lufs = float(pyloudnorm.Meter(sample_rate, block_size=block).integrated_loudness(x))
    if not np.isfinite(lufs) or lufs < SILENCE_LUFS:
        raise ValueError(
            f"{name} is silent (loudness {lufs:.1f} LUFS, below the {SILENCE_LUFS:.0f} LUFS "
            "gate of BS.1770); it cannot be loudness-normalised"
        )
    return lufs, method


def _stimulus_inputs(paths: RunPaths, methods: Sequence[str], pairs) -> dict[int, dict[str, Path]]:
    """Pair -> role -> input WAV, for the pairs that have an output of every method."""
    available = []
    for method in methods:
        found = {int(p.stem) for p in paths.outputs(method).glob("[0-9][0-9][0-9].wav")}
        if not found:
            raise FileNotFoundError(
                f"{paths.outputs(method)} holds no outputs of {method!r}: run the chapter that "
                f"produces it ({CHAPTER_FOUR} for the baselines) with the same profile and run root."
            )
        available.append(found)
    common = sorted(set.intersection(*available))
    if pairs is not None:
        missing = sorted(set(map(int, pairs)) - set(common))
        if missing:
            raise ValueError(
                f"test pairs {missing} lack an output of at least one of {list(methods)} "
                f"(pairs with all outputs: {common})"
            )
        common = sorted(set(map(int, pairs)))
    inputs = {}
    for pair in common:
        mixture = paths.test_audio / f"{pair:03d}_mixture.wav"
        inputs[pair] = {REFERENCE_ROLE: require_artifact(mixture, CHAPTER_ONE)}
        inputs[pair].update({m: output_path(paths, m, pair) for m in methods})
    return inputs


def prepare_stimuli(
    paths: RunPaths,
    sample_rate: int,
    methods: Sequence[str] = ("proposed", "b1", "b2"),
    *,
    pairs: Iterable[int] | None = None,
    target_lufs: float = -23.0,
    peak_dbfs: float = -1.0,
    dest: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Loudness-normalised copies of each method's outputs and of the mixtures.

    Every stimulus (each method's output and the mixture, the reference) is scaled to
    ``target_lufs`` integrated loudness (:func:`loudness_lufs`), so that a louder system
    is not preferred for being louder. **Clip safety**: if a scaled stimulus of a trial
    would peak above ``peak_dbfs``, *all* stimuli of that trial are lowered by the same
    amount (recorded as ``limiter_db``), which keeps them loudness-matched to each other
    while no sample clips. Files are 16-bit WAV, written atomically.

    A trial (test pair) whose stimulus is silent is left out with a warning. The folder
    is rebuilt only when the inputs or settings change (``MADE_FROM`` stamp).

    Parameters
    ----------
    paths : RunPaths
        Reads ``outputs/<method>/<pair>.wav`` and ``data/test/<pair>_mixture.wav``.
    sample_rate : int
        Hz (``cfg.features.sample_rate``); files at another rate are resampled.
    methods : sequence of str
        Method folders; only pairs with an output of every method are used.
    pairs : iterable of int, optional
        Test pairs to use; default all pairs with every output.
    target_lufs : float
        Integrated loudness of every stimulus (LUFS); -23 is EBU R128's programme level.
    peak_dbfs : float
        Highest sample peak allowed after scaling (dB full scale, < 0).
    dest : path-like, optional
        Output folder; default ``eval/listening/stimuli/``.

    Returns
    -------
    pandas.DataFrame
        One row per stimulus: ``pair``, ``role`` (method or ``mixture``), ``file`` (name in
        ``dest``), ``source`` (input path), ``duration_s``, ``loudness_lufs`` (measured
        before scaling), ``measurement``, ``gain_db`` (total applied, limiter included),
        ``limiter_db`` (<= 0). Also written to ``dest/stimuli.csv``.

    Raises
    ------
    FileNotFoundError
        If a method has no outputs or a mixture is missing (names the chapter to run).
    ValueError
        For bad settings, pairs without every output, or when no usable pair remains.

    Used in: Chapter 6 (06_listening_test).
    """
    if not methods or len(set(methods)) != len(methods) or REFERENCE_ROLE in methods:
        raise ValueError(f"methods must be distinct method folders; got {list(methods)!r}")
    if not np.isfinite(peak_dbfs) or peak_dbfs >= 0:
        raise ValueError(f"peak_dbfs must be below 0 dB full scale; got {peak_dbfs!r}")
    if not np.isfinite(target_lufs) or target_lufs >= 0:
        raise ValueError(f"target_lufs must be a negative loudness in LUFS; got {target_lufs!r}")
    dest = Path(dest) if dest is not None else listening_dir(paths) / "stimuli"
    inputs = _stimulus_inputs(paths, methods, pairs)
    made_from = hashlib.sha1(
        repr(
            (
                sample_rate,
                target_lufs,
                peak_dbfs,
                [(p, r, file_sha1(f)) for p, roles in inputs.items() for r, f in roles.items()],
            )
        ).encode()
    ).hexdigest()
    manifest_path = dest / STIMULI_MANIFEST
    # "*.*": the WAVs and the manifest, not the MADE_FROM stamp. The manifest is written
    # last, so with an unchanged stamp its presence means the folder is complete.
    if not reset_if_stale(dest, made_from, pattern="*.*") and manifest_path.exists():
        table = read_stimuli(dest)
        left_out = sorted(set(inputs) - set(table["pair"]))
        if left_out:
            warnings.warn(
                f"test pairs {left_out} were left out of the listening test when its stimuli "
                "were prepared (a stimulus was silent or unreadable)",
                stacklevel=2,
            )
        return table

    peak_limit = 10 ** (peak_dbfs / 20)
    records = []
    for pair, roles in inputs.items():
        try:
            measured = {}
            for role, source in roles.items():
                wav = audio.load_wav(source, sample_rate).astype(np.float64)
                measured[role] = (wav, *loudness_lufs(wav, sample_rate, name=str(source)))
        except ValueError as error:
            warnings.warn(f"test pair {pair} left out of the listening test: {error}", stacklevel=2)
            continue
        gains = {role: target_lufs - lufs for role, (_, lufs, _) in measured.items()}
        peak = max(np.max(np.abs(w)) * 10 ** (gains[r] / 20) for r, (w, _, _) in measured.items())
        limiter_db = min(0.0, 20 * np.log10(peak_limit / peak))
        for role, (wav, lufs, how) in measured.items():
            gain_db = gains[role] + limiter_db
            path = stimulus_path(dest, pair, role)
            audio.save_wav(path, wav * 10 ** (gain_db / 20), sample_rate)
            records.append(
                {
                    "pair": pair,
                    "role": role,
                    "file": path.name,
                    "source": str(roles[role]),
                    "duration_s": wav.shape[0] / sample_rate,
                    "loudness_lufs": lufs,
                    "measurement": how,
                    "gain_db": gain_db,
                    "limiter_db": limiter_db,
                }
            )
    if not records:
        raise ValueError(f"no test pair of {list(methods)} is usable for the listening test")
    with atomic_path(manifest_path) as tmp:
        pd.DataFrame(records).to_csv(tmp, index=False, float_format="%.6g")
    return read_stimuli(dest)


def read_stimuli(stimuli_dir: str | os.PathLike) -> pd.DataFrame:
    """The stimuli table that :func:`prepare_stimuli` wrote to ``<stimuli_dir>/stimuli.csv``.

    Raises
    ------
    FileNotFoundError
        If the table is missing (names the function to run).

    Used in: Chapter 6 (06_listening_test).
    """
    path = Path(stimuli_dir) / STIMULI_MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run prepare_stimuli first")
    return pd.read_csv(path, dtype=_STIMULI_DTYPES)


# --------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------


def make_session_plan(
    stimuli: pd.DataFrame,
    listener: str,
    attribute: str,
    n_pairs: int,
    seed: int = 0,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
) -> pd.DataFrame:
    """The trials of one listener's session for one attribute, seeded.

    For each comparison ``(system, opponent)``, ``n_pairs`` test pairs are drawn without
    replacement from those with stimuli of both systems; the trials of all comparisons
    are then shuffled and the scored system is played as A in half of them (rounded up,
    in random trials). The pairs depend on (``listener``, ``seed``) only, so a listener's
    two sessions rate the **same** pairs (the two attributes can then be correlated per
    pair, as the paper did), in a different order and A/B assignment; everything depends
    on (``listener``, ``attribute``, ``seed``) only, so a resumed session continues the
    same plan.

    Parameters
    ----------
    stimuli : pandas.DataFrame
        From :func:`prepare_stimuli` / :func:`read_stimuli` (columns ``pair``, ``role``).
    listener : str
        Listener id (non-empty).
    attribute : {"naturalness", "preference"}
    n_pairs : int
        Trials per comparison (the paper: 20).
    seed : int
        Seed of the test (the same for every listener).
    comparisons : sequence of (str, str)
        (scored system, opponent) pairs of method folders.

    Returns
    -------
    pandas.DataFrame
        One row per trial in presentation order: ``listener``, ``attribute``, ``trial``
        (0-based position), ``pair``, ``system``, ``opponent``, ``a`` and ``b`` (the
        systems played as A and B).

    Raises
    ------
    ValueError
        For an empty listener, an unknown attribute, or ``n_pairs`` outside 1 and the
        number of pairs available for a comparison.

    Used in: Chapter 6 (06_listening_test).
    """
    listener = _check_listener(listener)
    attribute = _check_attribute(attribute)
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive integer; got {n_pairs!r}")
    roles = stimuli.groupby("role")["pair"].agg(lambda p: set(map(int, p)))
    items = []
    for system, opponent in comparisons:
        if system == opponent:
            raise ValueError(f"a comparison needs two different systems; got {system!r} twice")
        both = (
            roles.get(system, set()) & roles.get(opponent, set()) & roles.get(REFERENCE_ROLE, set())
        )
        if n_pairs > len(both):
            raise ValueError(
                f"n_pairs={n_pairs} but only {len(both)} test pairs have stimuli of "
                f"{system!r}, {opponent!r} and the mixture; lower n_pairs or prepare more stimuli"
            )
        rng = np.random.default_rng(_stable_seed(seed, listener, system, opponent))
        items += [
            (int(p), system, opponent) for p in rng.choice(sorted(both), n_pairs, replace=False)
        ]
    rng = np.random.default_rng(_stable_seed(seed, listener, attribute))
    order = rng.permutation(len(items))
    system_first = rng.permutation(np.arange(len(items)) < (len(items) + 1) // 2)
    rows = []
    for trial, (index, first) in enumerate(zip(order, system_first, strict=True)):
        pair, system, opponent = items[index]
        a, b = (system, opponent) if first else (opponent, system)
        rows.append(
            {
                "listener": listener,
                "attribute": attribute,
                "trial": trial,
                "pair": pair,
                "system": system,
                "opponent": opponent,
                "a": a,
                "b": b,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------


class ResponseStore:
    """Answers of a listening test in a CSV file, one line per answer, written at once.

    :meth:`add` appends one line, then flushes and ``fsync``-s the file: an answer that
    was accepted survives a kernel crash or a power cut. A crash *during* a write can
    leave a torn last line (no newline at its end); :meth:`read` drops it with a
    warning, and the next :meth:`add` cuts it off before appending. The file is re-read
    before every answer, so two widgets on the same file cannot record an answer twice.

    Parameters
    ----------
    path : path-like
        The CSV file (created with its header on the first answer).
    pairs : iterable of int, optional
        Test pairs that exist; an answer about another pair is rejected.

    Used in: Chapter 6 (06_listening_test).
    """

    def __init__(self, path: str | os.PathLike, pairs: Iterable[int] | None = None):
        self.path = Path(path)
        self.pairs = None if pairs is None else {int(p) for p in pairs}

    def _header(self) -> str:
        return ",".join(RESPONSE_COLUMNS) + "\n"

    def _complete_bytes(self) -> bytes:
        """The file's complete lines (a torn last line is left out, with a warning)."""
        if not self.path.exists():
            return b""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            warnings.warn(
                f"{self.path}: dropping an incomplete last line {data[cut:]!r} "
                "(an answer interrupted while being written)",
                UserWarning,
                stacklevel=3,
            )
            data = data[:cut]
        if data and not data.startswith(self._header().encode()):
            raise ValueError(
                f"{self.path} is not a response file of this test: its header is "
                f"{data.splitlines()[0]!r}, expected {self._header().strip()!r}"
            )
        return data

    def read(self) -> pd.DataFrame:
        """All complete answers.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`RESPONSE_COLUMNS`; ``trial``, ``pair``, ``answer``, ``score``
            are ints (1-5 for the last two), ``simulated`` is bool.

        Raises
        ------
        ValueError
            If the header differs or a complete line is malformed (names the line).
        """
        return self._parse(self._complete_bytes())

    def _parse(self, data: bytes) -> pd.DataFrame:
        rows = []
        for line, row in enumerate(csv.DictReader(io.StringIO(data.decode("utf-8"))), start=2):
            try:
                parsed = _response_row(
                    {**row, "pair": int(row["pair"]), "trial": int(row["trial"])},
                    int(row["answer"]),
                    simulated=row["simulated"] == "True",
                    time=row["time"],
                )
                if parsed["score"] != int(row["score"]):
                    raise ValueError(f"score {row['score']} does not follow from the answer")
            except (TypeError, ValueError) as error:
                raise ValueError(f"{self.path}, line {line} is malformed: {error}") from error
            rows.append(parsed)
        frame = pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))
        return frame.astype({c: int for c in ("trial", "pair", "answer", "score")}).astype(
            {"simulated": bool}
        )

    def add(self, trial: Mapping, answer, *, simulated: bool = False) -> dict:
        """Validate and append one answer; return the stored row.

        Parameters
        ----------
        trial : mapping
            A row of a plan (:func:`make_session_plan`): ``listener``, ``attribute``,
            ``trial``, ``pair``, ``system``, ``opponent``, ``a``.
        answer : int or str
            On the A-vs-B scale: 1-5 or one of :data:`SCALE` (5 = "Better": A better).
        simulated : bool
            True for answers of :func:`simulate_listener`.

        Raises
        ------
        ValueError
            For an invalid answer, listener, attribute, pair or system, or an answer the
            listener already gave for this attribute, pair and comparison.
        """
        row = _response_row(
            trial, answer, simulated, time=datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
        if self.pairs is not None and row["pair"] not in self.pairs:
            raise ValueError(
                f"pair {row['pair']} is not one of the test's pairs {sorted(self.pairs)}"
            )
        data = self._complete_bytes()
        if data:
            done = self._parse(data)
            key = tuple(row[k] for k in _KEY)
            if key in set(done[list(_KEY)].itertuples(index=False, name=None)):
                raise ValueError(
                    f"listener {row['listener']!r} already rated pair {row['pair']} "
                    f"({_comparison_label(row['system'], row['opponent'])}) for "
                    f"{row['attribute']}; an answer cannot be given twice"
                )
            if self.path.stat().st_size != len(data):
                with open(self.path, "r+b") as handle:  # cut the torn line off
                    handle.truncate(len(data))
        else:
            write_text_atomic(self.path, self._header())
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow([row[c] for c in RESPONSE_COLUMNS])
        with open(self.path, "a", encoding="utf-8", newline="") as handle:
            handle.write(line.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        return row

    def remaining(self, plan: pd.DataFrame) -> pd.DataFrame:
        """The trials of ``plan`` not answered yet, in plan order (for resuming)."""
        done = self.read()
        answered = set(done[list(_KEY)].itertuples(index=False, name=None))
        keep = [
            tuple(row) not in answered
            for row in plan[list(_KEY)].itertuples(index=False, name=None)
        ]
        return plan[keep]


class ListeningTestWidget:
    """One session of the listening test in a notebook (ipywidgets).

    Shows the question, a progress line "trial k of n", players for the mixture
    (reference), A and B, the five answers and a Submit button. Submit hands the answer
    to :meth:`ResponseStore.add` and moves on; a rejected answer shows the store's
    message. A new widget on the same plan and store resumes at the first unanswered
    trial.

    Parameters
    ----------
    plan : pandas.DataFrame
        From :func:`make_session_plan` (one listener, one attribute).
    store : ResponseStore
    stimuli_dir : path-like
        Folder of :func:`prepare_stimuli`.

    Used in: Chapter 6 (06_listening_test).
    """

    def __init__(self, plan: pd.DataFrame, store: ResponseStore, stimuli_dir: str | os.PathLike):
        import ipywidgets as w

        if plan.empty or plan["listener"].nunique() != 1 or plan["attribute"].nunique() != 1:
            raise ValueError("plan must hold the trials of one listener and one attribute")
        self.plan, self.store, self.stimuli_dir = plan, store, Path(stimuli_dir)
        attribute = plan["attribute"].iloc[0]
        self.question = w.HTML(
            f"<b>{ATTRIBUTES[attribute]}</b> (listener {plan['listener'].iloc[0]})"
        )
        self.progress = w.HTML()
        self.players = {
            role: w.Audio(format="wav", autoplay=False, loop=False)
            for role in ("mixture", "A", "B")
        }
        self.choice = w.ToggleButtons(options=list(SCALE), value=None)
        self.submit = w.Button(description="Submit", button_style="primary")
        self.message = w.HTML()
        self.submit.on_click(self._on_submit)
        players = [w.VBox([w.Label(name), player]) for name, player in self.players.items()]
        self.box = w.VBox(
            [self.question, self.progress, w.HBox(players), self.choice, self.submit, self.message]
        )
        self.current = None
        self._next()

    def _repr_mimebundle_(self, **kwargs):
        return self.box._repr_mimebundle_(**kwargs)

    def _next(self) -> None:
        """Show the first unanswered trial, or that the session is complete."""
        remaining = self.store.remaining(self.plan)
        self.choice.value = None
        if remaining.empty:
            self.current = None
            self.progress.value = f"all {len(self.plan)} trials answered"
            self.message.value = "Session complete, thank you."
            self.submit.disabled = self.choice.disabled = True
            return
        self.current = remaining.iloc[0].to_dict()
        done = len(self.plan) - len(remaining)
        self.progress.value = f"trial {done + 1} of {len(self.plan)}"
        pair = self.current["pair"]
        for role, method in (
            ("mixture", REFERENCE_ROLE),
            ("A", self.current["a"]),
            ("B", self.current["b"]),
        ):
            self.players[role].value = stimulus_path(self.stimuli_dir, pair, method).read_bytes()

    def _on_submit(self, _button=None) -> None:
        """Record the chosen answer for the current trial (the Submit button's handler)."""
        if self.current is None:
            return
        if self.choice.value is None:
            self.message.value = "Choose one of the five answers first."
            return
        try:
            self.store.add(self.current, self.choice.value)
        except ValueError as error:
            self.message.value = f"Not recorded: {error}"
            return
        self.message.value = ""
        self._next()


# --------------------------------------------------------------------------------------
# Simulated listener
# --------------------------------------------------------------------------------------


def simulate_listener(
    plan: pd.DataFrame,
    seed: int = 0,
    strength: float | Mapping[str, float] = 1.0,
    spread: float = 1.0,
    attribute_noise: float = 0.5,
) -> pd.DataFrame:
    """Answers of a seeded simulated listener to a plan (labelled ``simulated=True``).

    For each (listener, pair, comparison) the listener perceives an advantage of the
    scored system ``d ~ N(strength, spread)`` in score units, the same in both sessions;
    each attribute adds its own ``N(0, attribute_noise)``, so the two attributes agree
    but not perfectly. The score is ``3 + d + noise`` rounded and clipped to 1-5, and is
    turned back into an A-vs-B answer according to the plan's A/B order.

    Parameters
    ----------
    plan : pandas.DataFrame
        From :func:`make_session_plan`.
    seed : int
    strength : float or mapping opponent -> float
        Mean advantage of the scored system (score units; 0 = no preference).
    spread, attribute_noise : float
        Standard deviations (score units), >= 0.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESPONSE_COLUMNS`, one row per trial; ``time`` is empty.

    Used in: Chapter 6 (06_listening_test).
    """
    if spread < 0 or attribute_noise < 0:
        raise ValueError(
            f"spread and attribute_noise must be >= 0; got {spread}, {attribute_noise}"
        )
    rows = []
    for trial in plan.to_dict("records"):
        key = (seed, trial["listener"], trial["pair"], trial["system"], trial["opponent"])
        mean = strength[trial["opponent"]] if isinstance(strength, Mapping) else strength
        advantage = np.random.default_rng(_stable_seed(*key)).normal(mean, spread)
        noise = np.random.default_rng(_stable_seed(*key, trial["attribute"])).normal(
            0, attribute_noise
        )
        score = int(np.clip(np.rint(3 + advantage + noise), 1, 5))
        answer = score if trial["a"] == trial["system"] else 6 - score
        rows.append(_response_row(trial, answer, simulated=True))
    return pd.DataFrame(rows, columns=list(RESPONSE_COLUMNS))


def simulated_responses(
    stimuli: pd.DataFrame,
    n_listeners: int = 16,
    n_pairs: int = 20,
    seed: int = 0,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    **listener_kwargs,
) -> pd.DataFrame:
    """Both sessions of ``n_listeners`` simulated listeners (``sim-01``, ``sim-02``, ...).

    The paper's design (16 listeners x 20 pairs per comparison) by default; keyword
    arguments go to :func:`simulate_listener`. Used when no real answers exist, so the
    analysis and figures of the chapter run headless.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESPONSE_COLUMNS`, all with ``simulated=True``.

    Used in: Chapter 6 (06_listening_test).
    """
    frames = [
        simulate_listener(
            make_session_plan(stimuli, f"sim-{k:02d}", attribute, n_pairs, seed, comparisons),
            seed,
            **listener_kwargs,
        )
        for k in range(1, n_listeners + 1)
        for attribute in ATTRIBUTES
    ]
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


def _scored(responses: pd.DataFrame) -> pd.DataFrame:
    """Check a responses table and add its ``comparison`` label column."""
    needed = {"listener", "attribute", "pair", "system", "opponent", "score"}
    missing = sorted(needed - set(responses.columns))
    if missing:
        raise ValueError(f"responses lack columns {missing}; expected those of RESPONSE_COLUMNS")
    if responses.empty:
        raise ValueError("responses is empty: there is nothing to analyse")
    scores = responses["score"].to_numpy()
    if not np.isin(scores, [1, 2, 3, 4, 5]).all():
        raise ValueError(
            f"scores must be integers 1-5; got {sorted(set(scores) - {1, 2, 3, 4, 5})}"
        )
    frame = responses.copy()
    frame["comparison"] = [
        _comparison_label(s, o) for s, o in zip(frame["system"], frame["opponent"], strict=True)
    ]
    if "simulated" not in frame:
        frame["simulated"] = False
    return frame


def answer_distribution(responses: pd.DataFrame) -> pd.DataFrame:
    """Percentage of each answer per comparison and attribute (the paper's Fig. 3).

    Parameters
    ----------
    responses : pandas.DataFrame
        Columns as :data:`RESPONSE_COLUMNS` (``score`` is about the scored system).

    Returns
    -------
    pandas.DataFrame
        Index (``comparison``, ``attribute``); columns the :data:`SCALE` labels (percent
        of that group's answers, summing to 100), ``n`` (answers) and ``simulated``
        (True if any answer of the group came from a simulated listener).

    Used in: Chapter 6 (06_listening_test).
    """
    frame = _scored(responses)
    groups = frame.groupby(["comparison", "attribute"])
    counts = groups["score"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=range(1, 6), fill_value=0)
    table = counts.div(counts.sum(axis=1), axis=0) * 100
    table.columns = list(SCALE)
    table["n"] = counts.sum(axis=1)
    table["simulated"] = groups["simulated"].any()
    return table


def mean_scores(responses: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Mean score (1-5, 5 = scored system better) with a Student-t confidence interval.

    The interval is ``mean +- t_{n-1} s / sqrt(n)`` over the individual answers; it
    treats answers as independent (the paper reports means only), which is optimistic
    when each listener gives many answers.

    Returns
    -------
    pandas.DataFrame
        Index (``comparison``, ``attribute``); columns ``n``, ``mean``, ``std``
        (sample, ddof=1), ``ci_low``, ``ci_high`` (NaN for n < 2).

    Used in: Chapter 6 (06_listening_test).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence!r}")
    frame = _scored(responses)
    table = frame.groupby(["comparison", "attribute"])["score"].agg(
        n="count", mean="mean", std="std"
    )
    t = scipy.stats.t.ppf(0.5 + confidence / 2, table["n"] - 1)
    half = t * table["std"] / np.sqrt(table["n"])
    table["ci_low"], table["ci_high"] = table["mean"] - half, table["mean"] + half
    return table


def sign_test(responses: pd.DataFrame) -> pd.DataFrame:
    """Exact two-sided sign test of "no preference" per comparison and attribute.

    Answers in favour of the scored system (scores 4, 5) and against it (1, 2) are
    counted; "Not sure" (3) is left out, as in the classical sign test for ties. Under
    "no preference" each non-tied answer favours either system with probability 1/2;
    the p-value is ``scipy.stats.binomtest(n_better, n_better + n_worse, 0.5)``. The
    test uses only the direction, not the strength, of an answer.

    Returns
    -------
    pandas.DataFrame
        Index (``comparison``, ``attribute``); columns ``n_better``, ``n_worse``,
        ``n_not_sure``, ``p_value`` (NaN if every answer is "Not sure").

    Used in: Chapter 6 (06_listening_test).
    """
    frame = _scored(responses)
    score = frame["score"]
    frame = frame.assign(better=score > 3, worse=score < 3, not_sure=score == 3)
    table = frame.groupby(["comparison", "attribute"])[["better", "worse", "not_sure"]].sum()
    table.columns = ["n_better", "n_worse", "n_not_sure"]
    table["p_value"] = [
        scipy.stats.binomtest(int(b), int(b + w), 0.5).pvalue if b + w else np.nan
        for b, w in zip(table["n_better"], table["n_worse"], strict=True)
    ]
    return table


def _agreement(paired: pd.DataFrame) -> pd.Series:
    """Agreement of the naturalness and preference scores of matched answers."""
    nat, pref = paired["naturalness"].to_numpy(float), paired["preference"].to_numpy(float)
    constant = len(nat) < 2 or nat.std() == 0 or pref.std() == 0
    return pd.Series(
        {
            "n": len(nat),
            "naturalness mean": nat.mean(),
            "preference mean": pref.mean(),
            "pearson r": np.nan if constant else scipy.stats.pearsonr(nat, pref).statistic,
            "mean abs diff": np.abs(nat - pref).mean(),
            "same answer": (nat == pref).mean(),
        }
    )


def _paired_attributes(responses: pd.DataFrame) -> pd.DataFrame:
    """One row per (listener, pair, comparison) answered in both sessions."""
    frame = _scored(responses)
    wide = frame.pivot_table(
        index=["comparison", "listener", "pair"],
        columns="attribute",
        values="score",
        aggfunc="first",
    )
    if not set(ATTRIBUTES) <= set(wide.columns):
        raise ValueError("responses need answers for both naturalness and preference")
    return wide.dropna(subset=list(ATTRIBUTES)).reset_index()


def _agreement_table(responses: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    paired = _paired_attributes(responses)
    table = paired.groupby(by)[list(ATTRIBUTES)].apply(_agreement)
    return table.astype({"n": int})


def attribute_agreement(responses: pd.DataFrame) -> pd.DataFrame:
    """How the two attributes agree, per comparison (the paper: r 0.51 / 0.38, MAD 0.48 / 0.68).

    Answers of the same listener to the same pair and comparison in the naturalness and
    the preference session are matched (answers without a partner are left out).

    Returns
    -------
    pandas.DataFrame
        Index ``comparison``; columns ``n`` (matched answers), ``naturalness mean``,
        ``preference mean``, ``pearson r`` (NaN if either attribute is constant),
        ``mean abs diff`` (mean |naturalness - preference|, score units), ``same answer``
        (fraction of identical scores).

    Used in: Chapter 6 (06_listening_test).
    """
    return _agreement_table(responses, ["comparison"])


def listener_consistency(responses: pd.DataFrame) -> pd.DataFrame:
    """Per listener and comparison: mean scores and agreement between the two sessions.

    A listener whose two sessions disagree much (low r, high mean absolute difference)
    answered inconsistently or judged the attributes very differently.

    Returns
    -------
    pandas.DataFrame
        Index (``listener``, ``comparison``); columns as :func:`attribute_agreement`.

    Used in: Chapter 6 (06_listening_test).
    """
    return _agreement_table(responses, ["listener", "comparison"])


def summary_table(responses: pd.DataFrame) -> pd.DataFrame:
    """The numbers the paper reports, computed from ``responses``, beside the paper's.

    Returns
    -------
    pandas.DataFrame
        Index ``comparison``; the columns of :data:`PAPER_LISTENING` (means of all
        answers, agreement of matched answers), each followed by ``paper <column>``,
        and ``simulated``.

    Used in: Chapter 6 (06_listening_test).
    """
    means = mean_scores(responses)["mean"].unstack("attribute")
    distribution = answer_distribution(responses)
    natural = distribution.xs("naturalness", level="attribute")
    agreement = attribute_agreement(responses)
    table = pd.DataFrame(
        {
            "naturalness mean": means["naturalness"],
            "preference mean": means["preference"],
            "pearson r": agreement["pearson r"],
            "mean abs diff": agreement["mean abs diff"],
            "naturalness % Better": natural["Better"],
            "naturalness % Slightly better": natural["Slightly better"],
        }
    )
    paper = PAPER_LISTENING.reindex(table.index)
    for column in PAPER_LISTENING.columns:
        table[f"paper {column}"] = paper[column]
    table["simulated"] = distribution["simulated"].groupby("comparison").any()
    return table


# --------------------------------------------------------------------------------------
# Export for external tools
# --------------------------------------------------------------------------------------


def export_webmushra(
    stimuli: pd.DataFrame,
    stimuli_dir: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    systems: Sequence[str] = ("proposed", "b1", "b2"),
    test_id: str = "synthsep",
    audio_root: str | None = None,
) -> Path:
    """Write the stimuli and a webMUSHRA configuration (one MUSHRA page per test pair).

    Layout: ``<dest>/trial_<pair>/reference.wav`` (the mixture, as in the paper's test)
    and ``<dest>/trial_<pair>/<system>.wav``, plus ``<dest>/<test_id>.yaml``. To use it,
    copy the trial folders to ``<webMUSHRA>/<audio_root>/`` and the YAML file to
    ``<webMUSHRA>/configs/``, then open ``?config=<test_id>.yaml``. The pages are
    presented in random order; webMUSHRA hides the reference among the conditions too,
    and its low-pass anchors are switched off (they suit a clean reference, not a
    mixture). Other tools (e.g. BeaqleJS, the Web Audio Evaluation Tool) can read the
    same folders.

    Parameters
    ----------
    stimuli : pandas.DataFrame
        From :func:`prepare_stimuli` / :func:`read_stimuli`.
    stimuli_dir : path-like
        Folder holding the stimuli files.
    dest : path-like
        Export folder.
    systems : sequence of str
        Conditions on every page; pairs lacking one are skipped.
    test_id : str
        webMUSHRA ``testId`` and file name of the configuration.
    audio_root : str, optional
        Audio folder as webMUSHRA sees it; default ``configs/resources/audio/<test_id>``.

    Returns
    -------
    pathlib.Path
        The YAML configuration.

    Used in: Chapter 6 (06_listening_test).
    """
    import yaml

    dest = Path(dest)
    audio_root = audio_root or f"configs/resources/audio/{test_id}"
    roles = stimuli.groupby("pair")["role"].agg(set)
    pairs = [int(p) for p, have in roles.items() if {REFERENCE_ROLE, *systems} <= have]
    if not pairs:
        raise ValueError(f"no test pair has stimuli of the mixture and all of {list(systems)}")
    pages = []
    for pair in pairs:
        trial = f"trial_{pair:03d}"
        files = {"reference": REFERENCE_ROLE, **{s: s for s in systems}}
        for name, role in files.items():
            with atomic_path(dest / trial / f"{name}.wav") as tmp:
                shutil.copyfile(stimulus_path(stimuli_dir, pair, role), tmp)
        pages.append(
            {
                "type": "mushra",
                "id": trial,
                "name": f"Test mixture {pair}",
                "content": (
                    "The reference is the noisy mixture. Rate how natural and clean the "
                    "speech in each condition sounds."
                ),
                "showWaveform": False,
                "enableLooping": True,
                "reference": f"{audio_root}/{trial}/reference.wav",
                "createAnchor35": False,
                "createAnchor70": False,
                "stimuli": {
                    f"C{k}": f"{audio_root}/{trial}/{s}.wav" for k, s in enumerate(systems, 1)
                },
            }
        )
    config = {
        "testname": "SynthSep: speech separated by synthesis",
        "testId": test_id,
        "bufferSize": 2048,
        "stopOnErrors": True,
        "showButtonPreviousPage": True,
        "remoteService": "service/write.php",
        "pages": [
            ["random", *pages],
            {
                "type": "finish",
                "name": "Thank you",
                "content": "Thank you for taking part.",
                "showResults": True,
                "writeResults": True,
            },
        ],
    }
    conditions = ", ".join(f"C{k} = {s}" for k, s in enumerate(systems, 1))
    header = f"# webMUSHRA configuration written by synthsep_lib ({conditions}).\n"
    return write_text_atomic(
        dest / f"{test_id}.yaml", header + yaml.safe_dump(config, sort_keys=False)
    )
