"""The design of the paper's listening test, shared by every part of the package.

Two attributes were asked in two separate sessions, on one five-point scale:

* ``naturalness``: "A sounds more natural than B";
* ``preference``: "You overall prefer A over B";

answered Worse, Slightly worse, Not sure, Slightly better, Better (scored 1-5).

**Score convention.** An answer is stored twice: ``answer`` is what the listener clicked
on the A-vs-B scale (5 = A better), ``a`` says which system was played as A, and
``score`` is the same answer about the *scored* system (``system``, the first of a
comparison: Proposed in the paper's tests): ``score = answer`` if the system was A, else
``6 - answer``. All analysis uses ``score``, so the A/B randomisation is undone (5 =
scored system better).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ..tables import ALL_ROWS

__all__ = [
    "SCALE",
    "ATTRIBUTES",
    "COMPARISONS",
    "OPTIONAL_COMPARISONS",
    "REFERENCE_ROLE",
    "RESPONSE_COLUMNS",
    "comparisons_to_run",
    "compared_systems",
    "system_name",
    "comparison_label",
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

#: Comparisons beyond the paper (Chapter 7): the parallel vocoder fine-tuned on the
#: encoder's estimates against B1, as Proposed in the paper, and against Proposed itself
#: (does the one-pass vocoder sound as natural as the sample-by-sample WaveNet?).
OPTIONAL_COMPARISONS = (("proposed-parallel-ft", "b1"), ("proposed-parallel-ft", "proposed"))

#: The stimulus every trial plays as the reference (besides the method folders).
REFERENCE_ROLE = "mixture"

#: Columns of the response CSV (and of every responses table in this package).
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

_DISPLAY = {method: name for name, method in ALL_ROWS.items()}


def comparisons_to_run(
    include_optional: bool, with_outputs: Collection[str]
) -> tuple[tuple[str, str], ...]:
    """The comparisons of a test: the paper's, then the optional ones that can be run.

    Parameters
    ----------
    include_optional : bool
        Add :data:`OPTIONAL_COMPARISONS`.
    with_outputs : collection of str
        Method folders that have outputs; an optional comparison is added only when both
        of its systems are among them (the paper's are always in, and their stimuli
        report what is missing).

    Returns
    -------
    tuple of (str, str)
        (scored system, opponent) pairs: :data:`COMPARISONS` first.
    """
    optional = OPTIONAL_COMPARISONS if include_optional else ()
    available = set(with_outputs)
    return COMPARISONS + tuple(c for c in optional if set(c) <= available)


def compared_systems(comparisons: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Every method folder of ``comparisons`` once, in order of first appearance.

    These are the systems whose stimuli a test needs (besides the mixture).
    """
    return tuple(dict.fromkeys(method for pair in comparisons for method in pair))


def system_name(method: str) -> str:
    """Table I's row name of a method folder (``proposed`` -> ``Proposed``); else the folder."""
    return _DISPLAY.get(method, method)


def comparison_label(system: str, opponent: str) -> str:
    """``"Proposed vs B1"`` for method folders ``proposed``, ``b1`` (Table I's row names)."""
    return f"{system_name(system)} vs {system_name(opponent)}"
