"""Table I of the paper, beside the same rows computed in this book.

Used in: Chapter 5 (05_evaluation) and the chapters that add rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "PAPER_TABLE_ONE",
    "PAPER_HOURS",
    "TABLE_ONE_ROWS",
    "EXTRA_ROWS",
    "table_one",
    "timing_table",
]

#: Table I of the paper (averages over 100 test mixtures; PAPER_FACTS §9). PESQ is the raw
#: P.862 score of the authors' Matlab implementation; SDR is their 257-tap projection
#: and was not reported (NA) for the synthesised outputs.
PAPER_TABLE_ONE = pd.DataFrame(
    {
        "PESQ": [1.02, 3.62, 2.61, 3.26, 2.84, 2.30, 2.75],
        "STOI": [0.85, 0.95, 0.88, 0.94, 0.91, 0.85, 0.97],
        "SDR": [5.34, 15.36, np.nan, 11.66, np.nan, 5.35, 13.55],
    },
    index=pd.Index(
        ["Input", "Proposed-res-gt", "Proposed", "B1-gt", "B1", "B2", "IBM-gt"], name="system"
    ),
)

#: Total processing time of the 100 test mixtures reported by the paper (hours).
PAPER_HOURS = {"Proposed": 55.0, "B1": 0.5, "B2": 3.0}

#: Table I row name -> method folder under ``runs/<profile>/outputs/``.
TABLE_ONE_ROWS = {
    "Input": "input",
    "Proposed-res-gt": "proposed-res-gt",
    "Proposed": "proposed",
    "B1-gt": "b1-gt",
    "B1": "b1",
    "B2": "b2",
    "IBM-gt": "ibm-gt",
}
#: Rows this book adds (not in the paper's table): decoders fed the true mel instead of
#: the encoder's estimate (``synthsep_lib.baselines.signal_methods.METHODS`` and the
#: WaveNet's vocoder oracle, ``synthsep_lib.vocoder.synthesis``).
EXTRA_ROWS = {
    "Mel-res-gt (true mel, oracle)": "mel-res-gt",
    "Mel + Griffin-Lim (oracle)": "mel-gl",
    "WaveNet on the true mel (oracle)": "wavenet-gt-mel",
}

#: Book column -> metric column of ``metrics.csv``. The first three follow the paper's
#: protocol; the others are today's conventions and extra views.
COLUMNS = {
    "PESQ": "pesq_paper",
    "STOI": "stoi",
    "SDR": "sdr_paper",
    "PESQ-WB": "pesq_wb",
    "ESTOI": "estoi",
    "SI-SDR": "si_sdr",
    "BSS SDR": "sdr",
    "DNSMOS": "dnsmos_ovrl",
}

#: Mean duration of an LJSpeech clip (6.57 s, the corpus README); used to project a
#: real-time factor onto the paper's 100 test files, whose exact durations are unknown.
LJ_MEAN_SECONDS = 6.57


def table_one(metrics: pd.DataFrame, rows: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean of each metric per system, beside the paper's numbers.

    Parameters
    ----------
    metrics : pandas.DataFrame
        From :func:`~synthsep_lib.evaluation.runner.evaluate_outputs`: columns
        ``method``, ``pair`` and metric columns.
    rows : dict, optional
        Row name -> method; default the paper's rows then this book's extra rows.

    Returns
    -------
    pandas.DataFrame
        Index: system. Columns: ``files`` (number of test mixtures scored; 0 = not run),
        ``undefined`` (values of the paper's three metrics that could not be computed,
        e.g. PESQ finding no speech; means skip them),
        the book's means under the names of :data:`COLUMNS`, and ``paper PESQ``,
        ``paper STOI``, ``paper SDR``. Systems without outputs have NaN means and
        ``status`` "not run".

    Used in: Chapter 5 (05_evaluation).
    """
    rows = rows or {**TABLE_ONE_ROWS, **EXTRA_ROWS}
    records = {}
    for name, method in rows.items():
        part = metrics[metrics["method"] == method]
        record = {"files": len(part), "status": "computed" if len(part) else "not run"}
        paper_metrics = [COLUMNS[c] for c in PAPER_TABLE_ONE.columns if COLUMNS[c] in part]
        record["undefined"] = int(part[paper_metrics].isna().sum().sum())
        for column, metric in COLUMNS.items():
            record[column] = part[metric].mean() if metric in part and len(part) else np.nan
        records[name] = record
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "system"
    paper = PAPER_TABLE_ONE.add_prefix("paper ")
    return table.join(paper, how="left")


def timing_table(timings: pd.DataFrame, rows: dict[str, str] | None = None) -> pd.DataFrame:
    """Real-time factor per system and its projection onto the paper's 100 test files.

    Parameters
    ----------
    timings : pandas.DataFrame
        From :func:`~synthsep_lib.evaluation.runner.read_timings` (index method,
        columns ``files``, ``seconds``, ``audio_seconds``, ``rtf``).
    rows : dict, optional
        Row name -> method, as in :func:`table_one`.

    Returns
    -------
    pandas.DataFrame
        Index: system. ``files``, ``rtf`` (processing seconds per second of audio),
        ``projected hours (100 files)`` = rtf x 100 x 6.57 s / 3600 (the mean LJSpeech
        clip duration stands in for the unknown durations of the paper's files), and
        ``paper hours`` where the paper reports one.

    Used in: Chapter 5 (05_evaluation).
    """
    rows = rows or {**TABLE_ONE_ROWS, **EXTRA_ROWS}
    records = {}
    for name, method in rows.items():
        if method not in timings.index:
            continue
        rtf = float(timings.loc[method, "rtf"])
        records[name] = {
            "files": int(timings.loc[method, "files"]),
            "rtf": rtf,
            "projected hours (100 files)": rtf * 100 * LJ_MEAN_SECONDS / 3600,
            "paper hours": PAPER_HOURS.get(name, np.nan),
        }
    table = pd.DataFrame.from_dict(
        records,
        orient="index",
        columns=["files", "rtf", "projected hours (100 files)", "paper hours"],
    )
    table.index.name = "system"
    return table
