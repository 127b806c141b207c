"""Table I of the paper, beside the same rows computed in this book."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthsep_lib.evaluation import paper_numbers

__all__ = [
    "TABLE_ONE_ROWS",
    "EXTRA_ROWS",
    "BEYOND_PAPER_ROWS",
    "ALL_ROWS",
    "table_one",
    "timing_table",
]

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
#: the encoder's estimate, and the estimate decoded without a vocoder
#: (``synthsep_lib.pipeline.signal_methods.METHODS`` and the WaveNet's vocoder oracle,
#: ``synthsep_lib.pipeline.vocoding``).
EXTRA_ROWS = {
    "Mel-res-gt (true mel, oracle)": "mel-res-gt",
    "Mel + Griffin-Lim (oracle)": "mel-gl",
    "WaveNet on the true mel (oracle)": "wavenet-gt-mel",
    "Proposed mel + Griffin-Lim (no vocoder)": "proposed-gl",
}
#: Rows beyond the paper: Chapter 7's parallel vocoder in place of the WaveNet, fed the
#: encoder's estimate (trained on clean mels, or fine-tuned on the estimates) or the true
#: mel (``synthsep_lib.pipeline.vocoding.PARALLEL_METHODS``).
BEYOND_PAPER_ROWS = {
    "Proposed-parallel": "proposed-parallel",
    "Proposed-parallel-ft": "proposed-parallel-ft",
    "Parallel vocoder on the true mel (oracle)": "parallel-gt-mel",
}
#: Every row of the book's Table I, in its order: the paper's, the extra oracles, the rows
#: beyond the paper. The default rows of :func:`table_one` and :func:`timing_table`.
ALL_ROWS = {**TABLE_ONE_ROWS, **EXTRA_ROWS, **BEYOND_PAPER_ROWS}

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


def table_one(metrics: pd.DataFrame, rows: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean of each metric per system, beside the paper's numbers.

    Parameters
    ----------
    metrics : pandas.DataFrame
        From :func:`~synthsep_lib.pipeline.scoring.evaluate_outputs`: columns
        ``method``, ``pair`` and metric columns.
    rows : dict, optional
        Row name -> method; default :data:`ALL_ROWS`.

    Returns
    -------
    pandas.DataFrame
        Index: system. Columns: ``files`` (number of test mixtures scored; 0 = not run),
        ``undefined`` (values of the paper's three metrics that could not be computed,
        e.g. PESQ finding no speech; means skip them),
        the book's means under the names of :data:`COLUMNS`, and ``paper PESQ``,
        ``paper STOI``, ``paper SDR``. Systems without outputs have NaN means and
        ``status`` "not run".
    """
    rows = rows or ALL_ROWS
    records = {}
    for name, method in rows.items():
        part = metrics[metrics["method"] == method]
        record = {"files": len(part), "status": "computed" if len(part) else "not run"}
        paper_metrics = [COLUMNS[c] for c in paper_numbers.TABLE_ONE.columns if COLUMNS[c] in part]
        record["undefined"] = int(part[paper_metrics].isna().sum().sum())
        for column, metric in COLUMNS.items():
            record[column] = part[metric].mean() if metric in part and len(part) else np.nan
        records[name] = record
    table = pd.DataFrame.from_dict(records, orient="index")
    table.index.name = "system"
    paper = paper_numbers.TABLE_ONE.add_prefix("paper ")
    return table.join(paper, how="left")


def timing_table(timings: pd.DataFrame, rows: dict[str, str] | None = None) -> pd.DataFrame:
    """Real-time factor per system and its projection onto the paper's 100 test files.

    Parameters
    ----------
    timings : pandas.DataFrame
        From :func:`~synthsep_lib.pipeline.scoring.read_timings` (index method,
        columns ``files``, ``seconds``, ``audio_seconds``, ``rtf``).
    rows : dict, optional
        Row name -> method; default :data:`ALL_ROWS`. Methods without timings are left
        out.

    Returns
    -------
    pandas.DataFrame
        Index: system. ``files``, ``rtf`` (processing seconds per second of audio),
        ``projected hours (100 files)`` = rtf x :data:`~paper_numbers.TEST_FILES` x
        :data:`~paper_numbers.LJ_MEAN_SECONDS` / 3600 (the mean LJSpeech clip duration
        stands in for the unknown durations of the paper's files), and ``paper hours``
        (:data:`~paper_numbers.PROCESSING_HOURS`) where the paper reports one.
    """
    rows = rows or ALL_ROWS
    records = {}
    for name, method in rows.items():
        if method not in timings.index:
            continue
        rtf = float(timings.loc[method, "rtf"])
        records[name] = {
            "files": int(timings.loc[method, "files"]),
            "rtf": rtf,
            "projected hours (100 files)": rtf
            * paper_numbers.TEST_FILES
            * paper_numbers.LJ_MEAN_SECONDS
            / 3600,
            "paper hours": paper_numbers.PROCESSING_HOURS.get(name, np.nan),
        }
    table = pd.DataFrame.from_dict(
        records,
        orient="index",
        columns=["files", "rtf", "projected hours (100 files)", "paper hours"],
    )
    table.index.name = "system"
    return table
