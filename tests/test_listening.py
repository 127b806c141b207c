"""The listening test: stimuli, plans, the crash-safe response store, the widget, analysis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthsep_lib import audio
from synthsep_lib.evaluation import tables
from synthsep_lib.evaluation.listening import analysis, design, export, session, stimulus
from synthsep_lib.pipeline import listening_test, scoring
from synthsep_lib.pipeline.runs import RunPaths

SR = 16000
PEAK_LIMIT = 10 ** (-1 / 20)


@pytest.fixture
def run(tmp_path):
    """Mixtures and outputs of proposed, b1, b2 for 4 test pairs at different levels.

    Pair 2's b1 output is quiet noise with one loud click (scaling it to the target
    loudness would clip it); pair 3's b2 output is silent.
    """
    paths = RunPaths(tmp_path / "runs", "reduced")
    rng = np.random.default_rng(0)
    for pair in range(4):
        noise = rng.uniform(-1, 1, SR).astype(np.float32)
        audio.save_wav(paths.test_audio / f"{pair:03d}_mixture.wav", 0.2 * noise, SR)
        levels = {"proposed": 0.02, "b1": 0.3, "b2": 0.1}
        for method, level in levels.items():
            wav = level * rng.uniform(-1, 1, SR).astype(np.float32)
            if (pair, method) == (2, "b1"):
                wav = 0.01 * noise
                wav[SR // 2] = 0.9
            if (pair, method) == (3, "b2"):
                wav = np.zeros(SR, dtype=np.float32)
            audio.save_wav(paths.output_wav(method, pair), wav, SR)
    return paths


@pytest.fixture
def stimuli(run):
    with pytest.warns(UserWarning, match="test pair 3 left out.*silent"):
        table = listening_test.prepare_stimuli(run, SR)
    return table


def test_stimuli_have_equal_loudness_and_never_clip(run, stimuli):
    dest = listening_test.listening_dir(run) / "stimuli"
    assert sorted(stimuli["pair"].unique()) == [0, 1, 2]  # the silent pair is left out
    assert set(stimuli["role"]) == {"mixture", "proposed", "b1", "b2"}
    for row in stimuli.itertuples():
        wav = audio.load_wav(dest / row.file, SR)
        lufs, how = stimulus.loudness_lufs(wav, SR)
        assert how == "BS.1770"
        assert lufs == pytest.approx(-23.0 + row.limiter_db, abs=0.05)
        assert np.max(np.abs(wav)) <= PEAK_LIMIT + 1 / 32768
    # Only the pair with the click is limited, and all its stimuli by the same amount.
    limited = stimuli.groupby("pair")["limiter_db"].agg(["min", "max"])
    assert limited.loc[2, "min"] == limited.loc[2, "max"] < -10
    assert (limited.loc[[0, 1]] == 0).all().all()
    # Quieter inputs got more gain.
    pair0 = stimuli[stimuli["pair"] == 0].set_index("role")
    assert pair0.loc["proposed", "gain_db"] - pair0.loc["b1", "gain_db"] == pytest.approx(
        20 * np.log10(0.3 / 0.02), abs=0.5
    )
    pd.testing.assert_frame_equal(stimulus.read_stimuli(dest), stimuli)


def test_stimuli_are_rebuilt_only_when_inputs_change(run, stimuli):
    manifest = listening_test.listening_dir(run) / "stimuli" / "stimuli.csv"
    before = manifest.stat().st_mtime_ns
    with pytest.warns(UserWarning, match=r"test pairs \[3\] were left out"):
        pd.testing.assert_frame_equal(listening_test.prepare_stimuli(run, SR), stimuli)
    assert manifest.stat().st_mtime_ns == before  # reused, not rewritten
    audio.save_wav(run.output_wav("proposed", 0), 0.05 * np.ones(SR, np.float32), SR)
    rebuilt = listening_test.prepare_stimuli(run, SR, pairs=[0, 1])
    assert sorted(rebuilt["pair"].unique()) == [0, 1]
    assert not (manifest.parent / "002_b1.wav").exists()  # stale files removed


def test_stimuli_bad_inputs(run):
    with pytest.raises(FileNotFoundError, match="Chapter 4"):
        listening_test.prepare_stimuli(run, SR, methods=("proposed", "b3"))
    with pytest.raises(ValueError, match=r"test pairs \[7\]"):
        listening_test.prepare_stimuli(run, SR, pairs=[0, 7])
    with pytest.raises(ValueError, match="peak_dbfs"):
        listening_test.prepare_stimuli(run, SR, peak_dbfs=0.5)


def test_stimuli_from_plain_files_outside_a_run_folder(tmp_path):
    """The listening package needs no run folder: any WAVs, named by pair and role."""
    rng = np.random.default_rng(2)
    inputs = {}
    for pair, level in ((5, 0.05), (9, 0.4)):
        inputs[pair] = {}
        for role in ("mixture", "mine"):
            path = tmp_path / "in" / f"{role}{pair}.wav"
            audio.save_wav(path, level * rng.uniform(-1, 1, SR).astype(np.float32), SR)
            inputs[pair][role] = path
    table = stimulus.normalise_stimuli(inputs, tmp_path / "out", SR, target_lufs=-30.0)
    assert list(table["pair"]) == [5, 5, 9, 9] and list(table["role"]) == ["mixture", "mine"] * 2
    for row in table.itertuples():
        wav = audio.load_wav(stimulus.stimulus_path(tmp_path / "out", row.pair, row.role), SR)
        assert stimulus.loudness_lufs(wav, SR)[0] == pytest.approx(-30.0, abs=0.05)
    with pytest.raises(ValueError, match="target_lufs"):
        stimulus.normalise_stimuli(inputs, tmp_path / "out", SR, target_lufs=3.0)


def test_listening_package_does_not_import_the_pipeline():
    script = (
        "import sys\n"
        "from synthsep_lib.evaluation.listening import analysis, design, export, session, stimulus\n"
        "print(sorted(m for m in sys.modules if m.startswith('synthsep_lib.pipeline')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_loudness_of_short_and_silent_signals():
    x = 0.1 * np.random.default_rng(1).standard_normal(SR // 5)  # 0.2 s
    with pytest.warns(UserWarning, match="shorter than one 0.4 s"):
        quiet, how = stimulus.loudness_lufs(x, SR)
    with pytest.warns(UserWarning):
        loud, _ = stimulus.loudness_lufs(2 * x, SR)
    assert how.startswith("ungated") and loud - quiet == pytest.approx(20 * np.log10(2), abs=1e-6)
    with pytest.raises(ValueError, match="clip.wav is silent"):
        stimulus.loudness_lufs(np.zeros(SR), SR, name="clip.wav")


def test_session_plan_is_seeded_balanced_and_shares_pairs_across_sessions(stimuli):
    plan = session.make_session_plan(stimuli, "ann", "naturalness", n_pairs=2, seed=3)
    pd.testing.assert_frame_equal(
        plan, session.make_session_plan(stimuli, "ann", "naturalness", n_pairs=2, seed=3)
    )
    assert len(plan) == 4 and list(plan["trial"]) == [0, 1, 2, 3]
    assert plan.groupby("opponent").size().to_dict() == {"b1": 2, "b2": 2}
    assert (plan["a"] == plan["system"]).sum() == 2  # half the trials play Proposed as A
    assert (plan["b"] != plan["a"]).all() and set(plan["pair"]) <= {0, 1, 2}
    other = session.make_session_plan(stimuli, "ann", "preference", n_pairs=2, seed=3)
    items = ["pair", "system", "opponent"]
    assert sorted(other[items].itertuples(index=False)) == sorted(
        plan[items].itertuples(index=False)
    )
    plans = [
        session.make_session_plan(stimuli, f"l{k}", "naturalness", 2, seed=3) for k in range(8)
    ]
    assert len({tuple(p["pair"]) + tuple(p["a"]) for p in plans}) > 1  # listeners differ
    with pytest.raises(ValueError, match="only 3 test pairs"):
        session.make_session_plan(stimuli, "ann", "naturalness", n_pairs=4)
    with pytest.raises(ValueError, match="listener id"):
        session.make_session_plan(stimuli, "  ", "naturalness", n_pairs=1)
    with pytest.raises(ValueError, match="attribute must be one of"):
        session.make_session_plan(stimuli, "ann", "loudness", n_pairs=1)


PLAN = pd.DataFrame(
    {
        "listener": "ann",
        "attribute": "preference",
        "trial": [0, 1, 2, 3],
        "pair": [4, 1, 4, 2],
        "system": "proposed",
        "opponent": ["b1", "b2", "b2", "b1"],
        "a": ["proposed", "b2", "b2", "proposed"],
        "b": ["b1", "proposed", "proposed", "b1"],
    }
)


def test_store_scores_the_proposed_system_and_rejects_bad_answers(tmp_path):
    store = session.ResponseStore(tmp_path / "responses.csv", pairs=[1, 2, 4])
    trials = PLAN.to_dict("records")
    assert store.add(trials[0], "Better")["score"] == 5  # Proposed played as A
    assert store.add(trials[1], "Better")["score"] == 1  # B2 played as A and preferred
    assert store.add(trials[2], 2)["score"] == 4
    read = store.read()
    assert list(read.columns) == list(design.RESPONSE_COLUMNS)
    assert list(read["score"]) == [5, 1, 4] and list(read["answer"]) == [5, 5, 2]
    assert not read["simulated"].any() and read["time"].str.endswith("+00:00").all()
    for bad in (0, 6, 2.5, True, "Great"):
        with pytest.raises(ValueError, match="answer must be"):
            store.add(trials[3], bad)
    with pytest.raises(ValueError, match="already rated pair 4 \\(Proposed vs B1\\)"):
        store.add(trials[0], 3)
    with pytest.raises(ValueError, match="pair 9 is not one of"):
        store.add({**trials[3], "pair": 9}, 3)
    with pytest.raises(ValueError, match="listener id"):
        store.add({**trials[3], "listener": ""}, 3)
    with pytest.raises(ValueError, match="attribute"):
        store.add({**trials[3], "attribute": "speed"}, 3)
    with pytest.raises(ValueError, match="played as A"):
        store.add({**trials[3], "a": "b2"}, 3)
    assert len(store.read()) == 3  # nothing rejected was written
    assert list(store.remaining(PLAN)["trial"]) == [3]
    other = tmp_path / "other.csv"
    other.write_text("name,age\nx,3\n")
    with pytest.raises(ValueError, match="not a response file"):
        session.ResponseStore(other).read()


CRASHING_SESSION = """
import os, signal, sys
import pandas as pd
from synthsep_lib.evaluation.listening.session import ResponseStore
plan = pd.read_json(sys.argv[2])
store = ResponseStore(sys.argv[1])
for trial in plan.head(2).to_dict("records"):
    store.add(trial, "Slightly better")
# The third answer is cut off mid-line, then the process dies without any cleanup.
handle = open(sys.argv[1], "a")
handle.write("ann,preference,2,4,propo")
handle.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_store_survives_a_crash_mid_session_and_resumes(tmp_path):
    path = tmp_path / "responses.csv"
    plan_file = tmp_path / "plan.json"
    PLAN.to_json(plan_file)
    script = textwrap.dedent(CRASHING_SESSION)
    result = subprocess.run([sys.executable, "-c", script, str(path), str(plan_file)])
    assert result.returncode == -signal.SIGKILL
    store = session.ResponseStore(path)
    with pytest.warns(UserWarning, match="incomplete last line b'ann,preference,2,4,propo'"):
        assert list(store.read()["trial"]) == [0, 1]
    with pytest.warns(UserWarning, match="incomplete last line"):
        remaining = store.remaining(PLAN)
    assert list(remaining["trial"]) == [2, 3]
    with pytest.warns(UserWarning, match="incomplete last line"):
        store.add(remaining.iloc[0].to_dict(), "Worse")  # cuts the torn line off
    text = path.read_text()
    assert text.endswith("\n") and "propo\n" not in text and text.count("\n") == 4
    assert list(store.read()["trial"]) == [0, 1, 2]  # no warning any more

    # A crash while the file is created (a torn header) starts it afresh.
    fresh = tmp_path / "fresh.csv"
    fresh.write_text("listener,attri")
    with pytest.warns(UserWarning, match="incomplete"):
        session.ResponseStore(fresh).add(PLAN.iloc[0].to_dict(), 3)
    assert len(session.ResponseStore(fresh).read()) == 1


def test_store_drops_a_line_truncated_mid_write(tmp_path):
    path = tmp_path / "responses.csv"
    store = session.ResponseStore(path)
    for trial in PLAN.head(3).to_dict("records"):
        store.add(trial, 4)
    data = path.read_bytes()
    os.truncate(path, len(data) - 9)  # the last answer lost its end
    with pytest.warns(UserWarning, match="incomplete last line"):
        assert list(store.remaining(PLAN)["trial"]) == [2, 3]
    torn_name = data + "zoë,preference".encode()[:3]  # cut inside a UTF-8 character
    path.write_bytes(torn_name)
    with pytest.warns(UserWarning, match=r"incomplete last line b'zo\\xc3'"):
        assert len(store.read()) == 3
    path.write_bytes(data.replace(b",4,", b",x,", 1))
    with pytest.raises(ValueError, match="line 2 is malformed"):
        store.read()


CONCURRENT_WRITER = """
import sys, time
from pathlib import Path
from synthsep_lib.evaluation.listening.session import ResponseStore
path, listener, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = ResponseStore(path)
Path(go.parent / f"ready-{listener}").touch()
while not go.exists():  # start all writers together
    time.sleep(0.005)
for k in range(n):
    trial = {"listener": listener, "attribute": "preference", "trial": k, "pair": k,
             "system": "proposed", "opponent": "b1", "a": "proposed"}
    store.add(trial, 1 + k % 5)
    print(k, flush=True)  # accepted
"""


def test_store_keeps_every_answer_of_concurrent_writers(tmp_path):
    path, go, n = tmp_path / "responses.csv", tmp_path / "go", 30
    listeners = ["w0", "w1", "w2"]
    script = textwrap.dedent(CONCURRENT_WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path), who, str(n), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for who in listeners
    ]
    while not all((tmp_path / f"ready-{who}").exists() for who in listeners):
        assert all(p.poll() is None for p in procs), "a writer died before starting"
        time.sleep(0.01)
    go.touch()
    accepted = {}
    for who, proc in zip(listeners, procs, strict=True):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        accepted[who] = [int(k) for k in out.split()]
    assert all(len(done) == n for done in accepted.values())
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(design.RESPONSE_COLUMNS) and len(lines) == 1 + 3 * n
    read = session.ResponseStore(path).read()  # no torn line, no duplicate
    for who in listeners:
        assert sorted(read.loc[read["listener"] == who, "pair"]) == list(range(n))


def test_store_keeps_a_complete_last_line_without_newline(tmp_path):
    path = tmp_path / "responses.csv"
    store = session.ResponseStore(path)
    for trial in PLAN.head(2).to_dict("records"):
        store.add(trial, 4)
    path.write_bytes(path.read_bytes()[:-1])  # e.g. saved by an editor without a final newline
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(store.read()["trial"]) == [0, 1]
        store.add(PLAN.iloc[2].to_dict(), 2)
    assert list(store.read()["trial"]) == [0, 1, 2]
    assert path.read_text().count("\n") == 4
    # The header alone without its newline is complete too.
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(",".join(design.RESPONSE_COLUMNS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        session.ResponseStore(fresh).add(PLAN.iloc[0].to_dict(), 3)
    assert len(session.ResponseStore(fresh).read()) == 1


def test_store_reports_duplicates_and_bad_utf8_naming_the_file(tmp_path):
    path = tmp_path / "responses.csv"
    store = session.ResponseStore(path)
    for trial in PLAN.head(2).to_dict("records"):
        store.add(trial, 4)
    data = path.read_bytes()
    first = data.splitlines(keepends=True)[1]
    path.write_bytes(data + first.replace(b",4,4,", b",2,2,", 1))  # pair 4 rated twice
    with pytest.raises(ValueError, match=r"responses\.csv, line 4 repeats the answer of line 2"):
        store.read()
    with pytest.raises(ValueError, match="line 4 repeats"):
        store.add(PLAN.iloc[3].to_dict(), 3)
    path.write_bytes(data + b"zo\xe9,preference,2,4,proposed,b2,b2,3,3,False,\n")  # Latin-1
    with pytest.raises(ValueError, match=r"responses\.csv, line 4 is not valid UTF-8"):
        store.read()


def test_widget_records_answers_and_resumes(run, stimuli, tmp_path):
    pytest.importorskip("ipywidgets")
    plan = session.make_session_plan(stimuli, "ann", "naturalness", n_pairs=1, seed=0)
    store = session.ResponseStore(tmp_path / "responses.csv")
    dest = listening_test.listening_dir(run) / "stimuli"
    widget = session.ListeningTestWidget(plan, store, dest)
    assert widget.progress.value == "trial 1 of 2"
    first = plan.iloc[0]
    expected = stimulus.stimulus_path(dest, first["pair"], first["a"]).read_bytes()
    assert widget.players["A"].value == expected
    widget._on_submit()
    assert "Choose one" in widget.message.value and not (tmp_path / "responses.csv").exists()
    widget.choice.value = "Better"
    widget._on_submit()
    assert store.read()["answer"].tolist() == [5]
    assert widget.progress.value == "trial 2 of 2" and widget.choice.value is None

    resumed = session.ListeningTestWidget(plan, store, dest)  # e.g. after a kernel restart
    assert resumed.progress.value == "trial 2 of 2"
    widget.choice.value = resumed.choice.value = "Not sure"
    widget._on_submit()
    resumed._on_submit()
    assert resumed.message.value.startswith("Not recorded: listener 'ann' already rated")
    assert widget.submit.disabled and "complete" in widget.message.value
    assert len(store.read()) == 2


def test_simulated_listener_is_seeded_labelled_and_follows_its_strength(stimuli):
    plan = session.make_session_plan(stimuli, "sim", "naturalness", n_pairs=3, seed=1)
    answers = session.simulate_listener(plan, seed=5)
    pd.testing.assert_frame_equal(answers, session.simulate_listener(plan, seed=5))
    assert answers["simulated"].all() and list(answers.columns) == list(design.RESPONSE_COLUMNS)
    sure = session.simulate_listener(plan, strength={"b1": 10.0, "b2": -10.0}, spread=0.0)
    assert list(sure["score"]) == [5 if o == "b1" else 1 for o in plan["opponent"]]
    assert list(sure["answer"]) == [
        s if a == "proposed" else 6 - s for s, a in zip(sure["score"], plan["a"], strict=True)
    ]
    table = session.simulated_responses(stimuli, n_listeners=3, n_pairs=3, attribute_noise=0.0)
    assert len(table) == 3 * 2 * 2 * 3 and table["simulated"].all()
    agreement = analysis.attribute_agreement(table)  # no attribute noise: the sessions agree
    assert (agreement["mean abs diff"] == 0).all() and (agreement["n"] == 9).all()


def _responses(scores_by_group: dict, listener="ann") -> pd.DataFrame:
    """Responses with given scores; B is the scored system whenever the index is odd."""
    rows = []
    for (opponent, attribute), scores in scores_by_group.items():
        for k, score in enumerate(scores):
            a = "proposed" if k % 2 == 0 else opponent
            trial = {
                "listener": listener,
                "attribute": attribute,
                "trial": k,
                "pair": k,
                "system": "proposed",
                "opponent": opponent,
                "a": a,
            }
            rows.append(session._response_row(trial, score if k % 2 == 0 else 6 - score, False))
    return pd.DataFrame(rows)


def test_distribution_means_and_sign_test_on_known_answers():
    responses = _responses(
        {
            ("b1", "naturalness"): [5, 5, 4, 3, 1],
            ("b1", "preference"): [1, 2, 3, 4, 5],
            ("b2", "naturalness"): [5] * 8 + [4, 1] + [3] * 3,
        }
    )
    dist = analysis.answer_distribution(responses)
    assert dist.loc[("Proposed vs B1", "naturalness"), list(design.SCALE)].tolist() == [
        20,
        0,
        20,
        20,
        40,
    ]
    assert dist.loc[("Proposed vs B2", "naturalness"), "n"] == 13
    assert not dist["simulated"].any()
    means = analysis.mean_scores(responses)
    row = means.loc[("Proposed vs B1", "preference")]
    half = 2.7764451051977987 * np.sqrt(2.5) / np.sqrt(5)  # t(0.975, 4) s / sqrt(n)
    assert row["mean"] == 3 and row["ci_low"] == pytest.approx(3 - half)
    assert row["ci_high"] == pytest.approx(3 + half)
    test = analysis.sign_test(responses).loc[("Proposed vs B2", "naturalness")]
    assert (test["n_better"], test["n_worse"], test["n_not_sure"]) == (9, 1, 3)
    assert test["p_value"] == pytest.approx(22 / 1024)  # 2 (C(10,0) + C(10,1)) / 2^10
    assert analysis.sign_test(responses).loc[("Proposed vs B1", "preference"), "p_value"] == 1.0
    unsure = analysis.sign_test(_responses({("b1", "naturalness"): [3, 3, 3]})).iloc[0]
    assert unsure["n_not_sure"] == 3 and np.isnan(unsure["p_value"])  # nothing to test
    with pytest.raises(ValueError, match="lack columns \\['score'\\]"):
        analysis.mean_scores(responses.drop(columns="score"))
    with pytest.raises(ValueError, match="scores must be integers 1-5"):
        analysis.answer_distribution(responses.assign(score=7))


def test_attribute_agreement_and_listener_consistency_on_known_answers():
    ann = _responses(
        {("b1", "naturalness"): [1, 2, 3, 4, 5], ("b1", "preference"): [2, 1, 4, 3, 5]}
    )
    bob = _responses(
        {("b1", "naturalness"): [5, 5, 4, 4], ("b1", "preference"): [5, 5, 4, 4]}, "bob"
    )
    agreement = analysis.attribute_agreement(ann).loc["Proposed vs B1"]
    # Deviations (-2,-1,0,1,2) and (-1,-2,1,0,2): r = 8 / 10; |differences| 1,1,1,1,0.
    assert agreement["pearson r"] == pytest.approx(0.8)
    assert agreement["mean abs diff"] == pytest.approx(0.8)
    assert agreement["same answer"] == pytest.approx(0.2) and agreement["n"] == 5
    consistency = analysis.listener_consistency(pd.concat([ann, bob]))
    assert consistency.loc[("bob", "Proposed vs B1"), "mean abs diff"] == 0
    assert consistency.loc[("bob", "Proposed vs B1"), "pearson r"] == pytest.approx(1.0)
    assert consistency.loc[("ann", "Proposed vs B1"), "naturalness mean"] == 3
    # Answers without a partner in the other session are left out.
    both = analysis.attribute_agreement(pd.concat([ann, bob.iloc[:-1]]))
    assert both.loc["Proposed vs B1", "n"] == 8
    summary = analysis.summary_table(pd.concat([ann, bob]))
    assert summary.loc["Proposed vs B1", "paper pearson r"] == 0.51
    assert summary.loc["Proposed vs B1", "naturalness mean"] == pytest.approx(33 / 9)
    with pytest.raises(ValueError, match="both naturalness and preference"):
        analysis.attribute_agreement(ann[ann["attribute"] == "naturalness"])


def test_webmushra_export(run, stimuli, tmp_path):
    dest = tmp_path / "webmushra"
    config = export.export_webmushra(
        stimuli, listening_test.listening_dir(run) / "stimuli", dest, test_id="t1"
    )
    parsed = yaml.safe_load(config.read_text())
    assert parsed["testId"] == "t1" and parsed["pages"][-1]["type"] == "finish"
    group = parsed["pages"][0]
    assert group[0] == "random" and [p["id"] for p in group[1:]] == [
        "trial_000",
        "trial_001",
        "trial_002",
    ]
    page = group[1]
    assert page["type"] == "mushra"
    assert page["reference"] == "configs/resources/audio/t1/trial_000/reference.wav"
    assert page["stimuli"] == {
        f"C{k}": f"configs/resources/audio/t1/trial_000/{s}.wav"
        for k, s in enumerate(("proposed", "b1", "b2"), 1)
    }
    mixture = stimulus.stimulus_path(
        listening_test.listening_dir(run) / "stimuli", 0, "mixture"
    ).read_bytes()
    assert (dest / "trial_000" / "reference.wav").read_bytes() == mixture
    with pytest.raises(ValueError, match="no test pair"):
        export.export_webmushra(stimuli, dest, dest, systems=("proposed", "b9"))


def test_comparisons_name_every_system_by_its_table_one_row():
    assert design.comparison_label("proposed", "b1") == "Proposed vs B1"
    assert design.comparison_label("proposed-parallel-ft", "b1") == "Proposed-parallel-ft vs B1"
    assert (
        design.comparison_label("proposed-parallel-ft", "proposed")
        == "Proposed-parallel-ft vs Proposed"
    )
    every = design.compared_systems(design.COMPARISONS + design.OPTIONAL_COMPARISONS)
    assert set(every) <= set(tables.ALL_ROWS.values())  # no label falls back to a folder


def test_optional_comparisons_only_when_asked_and_their_outputs_exist():
    paper_only = ["proposed", "b1", "b2"]
    assert design.comparisons_to_run(False, [*paper_only, "proposed-parallel-ft"]) == (
        design.COMPARISONS
    )
    assert design.comparisons_to_run(True, paper_only) == design.COMPARISONS
    both = design.comparisons_to_run(True, [*paper_only, "proposed-parallel-ft"])
    assert both == design.COMPARISONS + design.OPTIONAL_COMPARISONS
    assert design.compared_systems(both) == ("proposed", "b1", "b2", "proposed-parallel-ft")


def test_optional_comparisons_flow_through_the_whole_test(run, tmp_path):
    rng = np.random.default_rng(4)
    for pair in range(4):
        wav = 0.1 * rng.uniform(-1, 1, SR).astype(np.float32)
        audio.save_wav(run.output_wav("proposed-parallel-ft", pair), wav, SR)
    with_outputs = [method for method, files in scoring.method_outputs(run).items() if files]
    comparisons = design.comparisons_to_run(True, with_outputs)
    assert ("proposed-parallel-ft", "proposed") in comparisons
    systems = design.compared_systems(comparisons)
    with pytest.warns(UserWarning, match="test pair 3 left out"):  # its b2 output is silent
        stimuli = listening_test.prepare_stimuli(run, SR, systems)
    assert set(stimuli["role"]) == {"mixture", *systems}

    plan = session.make_session_plan(stimuli, "ann", "naturalness", 2, 0, comparisons)
    assert plan.groupby(["system", "opponent"]).size().to_dict() == {c: 2 for c in comparisons}
    responses = session.simulated_responses(
        stimuli, n_listeners=2, n_pairs=2, comparisons=comparisons
    )
    summary = analysis.summary_table(responses)
    labels = [design.comparison_label(*c) for c in comparisons]
    assert sorted(summary.index) == sorted(labels)
    assert summary.loc["Proposed vs B1", "paper pearson r"] == 0.51
    assert np.isnan(summary.loc["Proposed-parallel-ft vs Proposed", "paper pearson r"])
    # Both sessions of a comparison are matched per pair, not mixed with another
    # comparison against the same opponent.
    agreement = analysis.attribute_agreement(responses)
    assert (agreement["n"] == 2 * 2).all()

    config = export.export_webmushra(
        stimuli, listening_test.listening_dir(run) / "stimuli", tmp_path / "web", systems=systems
    )
    page = yaml.safe_load(config.read_text())["pages"][0][1]
    assert [Path(f).stem for f in page["stimuli"].values()] == list(systems)
