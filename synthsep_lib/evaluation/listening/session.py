"""One listener's session: the seeded plan, the crash-safe response store, the widget.

* :func:`make_session_plan` draws one listener's session (seeded, so a session that
  was interrupted continues with the same trials).
* :class:`ResponseStore` appends every answer to a CSV file at once (flushed and
  synced): a kernel crash loses nothing, and the listener resumes where they stopped.
* :class:`ListeningTestWidget` is the ipywidgets front end; all its logic lives in the
  store and the plan, so it is a thin layer.
* :func:`simulate_listener` answers a plan like a seeded listener, so the analysis and its
  figures run headless (CI, the rendered book); its answers carry ``simulated=True``.

Answers are stored with the score convention of :mod:`.design`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ...files import write_text_atomic
from .. import paper_numbers
from .design import (
    ATTRIBUTES,
    COMPARISONS,
    REFERENCE_ROLE,
    RESPONSE_COLUMNS,
    SCALE,
    comparison_label,
)
from .stimulus import stimulus_path

__all__ = [
    "make_session_plan",
    "ResponseStore",
    "ListeningTestWidget",
    "simulate_listener",
    "simulated_responses",
]

# What identifies an answer: one per listener, attribute, pair and comparison.
_KEY = ("listener", "attribute", "pair", "system", "opponent")


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
    """One response from a plan row and its A-vs-B answer (score convention: :mod:`.design`)."""
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


# What add() writes as the time: ISO 8601 to the second with a UTC offset.
_WHOLE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d")


def _parse_response(row: Mapping[str, str]) -> dict:
    """One response from a CSV row of strings (raises ValueError if it is not one)."""
    parsed = _response_row(
        {**row, "pair": int(row["pair"]), "trial": int(row["trial"])},
        int(row["answer"]),
        simulated=row["simulated"] == "True",
        time=row["time"],
    )
    if parsed["score"] != int(row["score"]):
        raise ValueError(f"score {row['score']} does not follow from the answer")
    return parsed


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) between processes.

    ``fcntl.flock`` on Linux/macOS; ``msvcrt.locking`` on the first byte on Windows.
    Both are released by the operating system if the process dies.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:  # held by another process
                    time.sleep(0.01)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
        From :func:`.stimulus.read_stimuli` (columns ``pair``, ``role``).
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
    leave a torn last line; :meth:`read` drops it with a warning, and the next
    :meth:`add` cuts it off before appending. A last line is torn when it is not a whole
    answer (all columns, a valid answer and score, a whole time stamp); a whole answer
    that merely lacks its newline (a file saved by an editor) is kept.

    Several widgets or processes may answer into the same file at once: every read and
    every read-check-append holds an exclusive lock on ``<file>.lock`` beside it
    (``fcntl.flock`` on Linux/macOS, ``msvcrt.locking`` on Windows), so no accepted
    answer is lost or recorded twice. The lock file is left in place (removing it while
    another process waits on it would let two writers in).

    Parameters
    ----------
    path : path-like
        The CSV file (created with its header on the first answer).
    pairs : iterable of int, optional
        Test pairs that exist; an answer about another pair is rejected.
    """

    def __init__(self, path: str | os.PathLike, pairs: Iterable[int] | None = None):
        self.path = Path(path)
        self.pairs = None if pairs is None else {int(p) for p in pairs}

    def _header(self) -> str:
        return ",".join(RESPONSE_COLUMNS) + "\n"

    def _complete_bytes(self) -> bytes:
        """The file's complete lines (a torn last line is left out, with a warning).

        A complete last line without its newline is kept (without the newline). Call
        with the lock held.
        """
        if not self.path.exists():
            return b""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            if not self._is_whole_line(data[cut:], is_header=cut == 0):
                warnings.warn(
                    f"{self.path}: dropping an incomplete last line {data[cut:]!r} "
                    "(an answer interrupted while being written)",
                    UserWarning,
                    stacklevel=4,
                )
                data = data[:cut]
        if data and not (data + b"\n").startswith(self._header().encode()):
            raise ValueError(
                f"{self.path} is not a response file of this test: its header is "
                f"{data.splitlines()[0]!r}, expected {self._header().strip()!r}"
            )
        return data

    def _is_whole_line(self, line: bytes, is_header: bool) -> bool:
        """Whether a last line without newline is whole (else it was torn mid-write)."""
        if is_header:
            return line == self._header().strip().encode()
        try:
            fields = next(csv.reader([line.decode("utf-8")]))
            if len(fields) != len(RESPONSE_COLUMNS):
                return False
            row = dict(zip(RESPONSE_COLUMNS, fields, strict=True))
            _parse_response(row)
        except (UnicodeDecodeError, TypeError, ValueError):
            return False
        # The time is the last column: a torn one is shorter than what add() writes.
        return row["time"] == "" or _WHOLE_TIME.fullmatch(row["time"]) is not None

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
            If the header differs, the file is not UTF-8, a complete line is malformed,
            or a line repeats an earlier answer (names the file and the line).
        """
        with _file_lock(self._lock_path()):
            data = self._complete_bytes()
        return self._parse(data)

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _parse(self, data: bytes) -> pd.DataFrame:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise ValueError(
                f"{self.path}, line {line} is not valid UTF-8 "
                f"(byte {data[error.start : error.start + 1]!r}); response files are "
                "UTF-8: re-save the file as UTF-8"
            ) from error
        rows, seen = [], {}
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            line = reader.line_num
            try:
                parsed = _parse_response(row)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{self.path}, line {line} is malformed: {error}") from error
            # A repeated answer would be counted twice by the analysis, and which of the
            # two is right cannot be decided here: the user has to remove one.
            key = tuple(parsed[k] for k in _KEY)
            if key in seen:
                raise ValueError(
                    f"{self.path}, line {line} repeats the answer of line {seen[key]} "
                    f"(listener {parsed['listener']!r}, {parsed['attribute']}, pair "
                    f"{parsed['pair']}, {comparison_label(parsed['system'], parsed['opponent'])})"
                    "; each trial is answered once: delete one of the two lines"
                )
            seen[key] = line
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
            For an invalid answer, listener, attribute, pair or system, an answer the
            listener already gave for this attribute, pair and comparison, or a damaged
            file (see :meth:`read`).
        """
        row = _response_row(
            trial, answer, simulated, time=datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
        if self.pairs is not None and row["pair"] not in self.pairs:
            raise ValueError(
                f"pair {row['pair']} is not one of the test's pairs {sorted(self.pairs)}"
            )
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow([row[c] for c in RESPONSE_COLUMNS])
        # Read, check and append under one lock: another writer's answer is never taken
        # for a torn line, and two writers cannot both accept the same answer.
        with _file_lock(self._lock_path()):
            data = self._complete_bytes()
            if data:
                done = self._parse(data)
                key = tuple(row[k] for k in _KEY)
                if key in set(done[list(_KEY)].itertuples(index=False, name=None)):
                    raise ValueError(
                        f"listener {row['listener']!r} already rated pair {row['pair']} "
                        f"({comparison_label(row['system'], row['opponent'])}) for "
                        f"{row['attribute']}; an answer cannot be given twice"
                    )
                if self.path.stat().st_size != len(data):
                    with open(self.path, "r+b") as handle:  # cut the torn line off
                        handle.truncate(len(data))
            else:
                write_text_atomic(self.path, self._header())
                data = self._header().encode()
            text = line.getvalue() if data.endswith(b"\n") else "\n" + line.getvalue()
            with open(self.path, "a", encoding="utf-8", newline="") as handle:
                handle.write(text)
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
        Folder of :func:`.stimulus.normalise_stimuli`.
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
    n_listeners: int = paper_numbers.LISTENERS,
    n_pairs: int = paper_numbers.PAIRS_PER_LISTENER,
    seed: int = 0,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    **listener_kwargs,
) -> pd.DataFrame:
    """Both sessions of ``n_listeners`` simulated listeners (``sim-01``, ``sim-02``, ...).

    The paper's design (16 listeners x 20 pairs per comparison, from
    :mod:`synthsep_lib.evaluation.paper_numbers`) by default; keyword
    arguments go to :func:`simulate_listener`. Used when no real answers exist, so the
    analysis and figures of the chapter run headless.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESPONSE_COLUMNS`, all with ``simulated=True``.
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
