"""The statistics of the listening test's answers, beside the paper's numbers.

Every function takes a responses table (columns :data:`.design.RESPONSE_COLUMNS`, one
row per answer) and analyses its ``score``, the answer about the scored system (5 =
scored system better; Proposed in the paper's tests), per comparison and attribute:

* :func:`answer_distribution`: the share of each answer (the paper's Fig. 3);
* :func:`mean_scores`: mean scores with Student-t confidence intervals;
* :func:`sign_test`: an exact sign test of "no preference";
* :func:`attribute_agreement`, :func:`listener_consistency`: how the naturalness and
  the preference answers agree, overall and per listener;
* :func:`summary_table`: the numbers the paper reports, computed and published.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from .. import paper_numbers
from .design import ATTRIBUTES, SCALE, comparison_label

__all__ = [
    "answer_distribution",
    "mean_scores",
    "sign_test",
    "attribute_agreement",
    "listener_consistency",
    "summary_table",
]


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
        comparison_label(s, o) for s, o in zip(frame["system"], frame["opponent"], strict=True)
    ]
    if "simulated" not in frame:
        frame["simulated"] = False
    return frame


def _score_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Answers per score (columns 1-5) per comparison and attribute (index)."""
    counts = frame.groupby(["comparison", "attribute"])["score"].value_counts()
    return counts.unstack(fill_value=0).reindex(columns=range(1, 6), fill_value=0)


def answer_distribution(responses: pd.DataFrame) -> pd.DataFrame:
    """Percentage of each answer per comparison and attribute (the paper's Fig. 3).

    Parameters
    ----------
    responses : pandas.DataFrame
        Columns as :data:`.design.RESPONSE_COLUMNS` (``score`` is about the scored
        system).

    Returns
    -------
    pandas.DataFrame
        Index (``comparison``, ``attribute``); columns the :data:`.design.SCALE` labels
        (percent of that group's answers, summing to 100), ``n`` (answers) and
        ``simulated`` (True if any answer of the group came from a simulated listener).
    """
    frame = _scored(responses)
    counts = _score_counts(frame)
    table = counts.div(counts.sum(axis=1), axis=0) * 100
    table.columns = list(SCALE)
    table["n"] = counts.sum(axis=1)
    table["simulated"] = frame.groupby(["comparison", "attribute"])["simulated"].any()
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
    "no preference" each answer for or against is a fair coin toss, so the number in
    favour is Binomial(n_better + n_worse, 1/2). The test uses only the direction, not
    the strength, of an answer.

    Returns
    -------
    pandas.DataFrame
        Index (``comparison``, ``attribute``); columns ``n_better``, ``n_worse``,
        ``n_not_sure``, ``p_value`` (NaN if every answer is "Not sure").
    """
    counts = _score_counts(_scored(responses))
    table = pd.DataFrame(
        {
            "n_better": counts[4] + counts[5],  # "Slightly better", "Better"
            "n_worse": counts[1] + counts[2],  # "Worse", "Slightly worse"
            "n_not_sure": counts[3],  # ties: left out of the test
        }
    )
    table["p_value"] = [
        _fair_coin_p_value(heads=better, tosses=better + worse)
        for better, worse in zip(table["n_better"], table["n_worse"], strict=True)
    ]
    return table


def _fair_coin_p_value(heads: int, tosses: int) -> float:
    """Exact two-sided binomial p-value of ``heads`` in ``tosses`` tosses of a fair coin.

    NaN without tosses (a group whose answers were all "Not sure").
    """
    if tosses == 0:
        return np.nan
    return scipy.stats.binomtest(int(heads), int(tosses), 0.5).pvalue


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
    """
    return _agreement_table(responses, ["listener", "comparison"])


def summary_table(responses: pd.DataFrame) -> pd.DataFrame:
    """The numbers the paper reports, computed from ``responses``, beside the paper's.

    Returns
    -------
    pandas.DataFrame
        Index ``comparison``; the columns of
        :data:`synthsep_lib.evaluation.paper_numbers.LISTENING` (means of all answers,
        agreement of matched answers), then the paper's values as ``paper <column>``,
        and ``simulated``.
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
    paper = paper_numbers.LISTENING.reindex(table.index)
    for column in paper_numbers.LISTENING.columns:
        table[f"paper {column}"] = paper[column]
    table["simulated"] = distribution["simulated"].groupby("comparison").any()
    return table
