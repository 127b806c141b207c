"""The run directory contract: atomic writes, missing artifacts, stale artifacts."""

from __future__ import annotations

import pytest

from synthsep_lib.files import atomic_path, reset_if_stale, write_json_atomic
from synthsep_lib.pipeline.runs import RunPaths, require_artifact


def test_atomic_path_moves_only_a_complete_file(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".txt"
        tmp.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_atomically_written_files_get_the_mode_of_any_new_file(tmp_path):
    """Not mkstemp's private 0600: other users read the outputs as they would any file."""
    import os

    before = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "a.wav") as tmp:
            tmp.write_bytes(b"x")
        (tmp_path / "b.wav").write_bytes(b"x")  # what open() would have made
    finally:
        os.umask(before)
    modes = [(tmp_path / n).stat().st_mode & 0o777 for n in ("a.wav", "b.wav")]
    assert modes == [0o640, 0o640]


def test_write_json_atomic_round_trip(tmp_path):
    path = write_json_atomic(tmp_path / "a.json", {"b": [1, 2]})
    assert path.read_text() == '{\n  "b": [\n    1,\n    2\n  ]\n}\n'


def test_require_artifact_names_the_chapter(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"missing: run Chapter 1 \(01_data_simulation\) first"
    ):
        require_artifact(tmp_path / "nope.csv", "Chapter 1 (01_data_simulation)")
    assert require_artifact(tmp_path, "x") == tmp_path


def test_reset_if_stale_removes_files_made_from_other_inputs(tmp_path):
    folder = tmp_path / "out"
    assert reset_if_stale(folder, "v1") is False  # empty: nothing to remove
    (folder / "000.wav").write_bytes(b"old")
    (folder / "notes.txt").write_text("kept")
    assert reset_if_stale(folder, "v1") is False
    assert (folder / "000.wav").exists()
    assert reset_if_stale(folder, "v2") is True
    assert not (folder / "000.wav").exists() and (folder / "notes.txt").exists()
    assert (folder / "MADE_FROM").read_text() == "v2\n"


def test_unstamped_files_are_treated_as_stale(tmp_path):
    (tmp_path / "000.wav").write_bytes(b"who made me?")
    assert reset_if_stale(tmp_path, "v1") is True


def test_run_paths_layout(tmp_path):
    paths = RunPaths(tmp_path, "reduced")
    assert paths.test_manifest == tmp_path / "reduced" / "data" / "test_manifest.csv"
    assert paths.outputs("ibm-gt") == tmp_path / "reduced" / "outputs" / "ibm-gt"
    assert paths.encoder("proposed") == tmp_path / "reduced" / "encoder" / "proposed"
