"""The design of the paper's listening test, shared by every part of the package.

Two attributes were asked in two separate sessions, on one five-point scale:

* ``naturalness``: "A sounds more natural than B";
* ``preference``: "You overall prefer A over B";

answered Worse, Slightly worse, Not sure, Slightly better, Better (scored 1-5).

**Score convention.** An answer is stored twice: ``answer`` is what the listener clicked
on the A-vs-B scale (5 = A better), ``a`` says which system was played as A, and
``score`` is the same answer about the *scored* system (``system``, the Proposed one):
``score = answer`` if the system was A, else ``6 - answer``. All analysis uses
``score``, so the A/B randomisation is undone (5 = Proposed better).
"""

from __future__ import annotations

from ..tables import TABLE_ONE_ROWS

__all__ = [
    "SCALE",
    "ATTRIBUTES",
    "COMPARISONS",
    "REFERENCE_ROLE",
    "RESPONSE_COLUMNS",
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

_DISPLAY = {method: name for name, method in TABLE_ONE_ROWS.items()}


def comparison_label(system: str, opponent: str) -> str:
    """``"Proposed vs B1"`` for method folders ``proposed``, ``b1`` (Table I's row names)."""
    return f"{_DISPLAY.get(system, system)} vs {_DISPLAY.get(opponent, opponent)}"
