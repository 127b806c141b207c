"""Every chapter executes on the chosen profile, and the rendered book shows it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, executed_chapter_problems

import book

CHAPTERS = book.chapters()


def test_toc_lists_every_notebook():
    on_disk = sorted(p.relative_to(ROOT) for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(CHAPTERS) == on_disk


@pytest.mark.chapters
@pytest.mark.parametrize("notebook", CHAPTERS, ids=[nb.stem for nb in CHAPTERS])
def test_chapter_executes(book_build, notebook):
    executed = book_build["executed"] / notebook
    assert executed.exists(), f"{notebook} was not executed: an earlier chapter failed"
    problems = executed_chapter_problems(executed)
    assert not problems, f"{notebook} failed:\n" + "\n".join(problems)


@pytest.mark.html
def test_intro_page_has_the_system_figure(book_build):
    assert book_build["html"], "the book was not rendered (a chapter failed)"
    page = (book_build["html"] / "book" / "intro.html").read_text()
    assert "system.svg" in page
    assert (book_build["html"] / "index.html").exists()


@pytest.mark.html
@pytest.mark.parametrize("notebook", CHAPTERS, ids=[nb.stem for nb in CHAPTERS])
def test_chapter_page_has_figures_and_audio(book_build, notebook):
    assert book_build["html"], "the book was not rendered (a chapter failed)"
    page = (book_build["html"] / notebook.with_suffix(".html")).read_text()
    assert len(re.findall(r"<img[^>]+src=\"[^\"]*_images/", page)) >= 3, "fewer than 3 figures"
    assert "<audio" in page, "no audio player"
    for marker in ("Traceback (most recent call last)", "output traceback", "output stderr"):
        assert marker not in page, f"rendered page contains {marker!r}"


@pytest.mark.html
def test_no_page_shows_the_builders_folders(book_build):
    """Neither the pages nor their downloadable notebooks hold the builder's paths."""
    assert book_build["html"], "the book was not rendered (a chapter failed)"
    files = sorted(book_build["html"].rglob("*.html")) + sorted(book_build["html"].rglob("*.ipynb"))
    assert any(p.suffix == ".ipynb" for p in files)
    for folder in (book_build["data_root"], ROOT):
        showing = [p.name for p in files if str(folder) in p.read_text(errors="replace")]
        assert not showing, f"files showing the builder's folder {folder}: {showing}"


def test_staged_chapter_leaves_out_only_the_injected_parameters(tmp_path):
    cells = [
        nbformat.v4.new_code_cell("profile = 'reduced'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "data_root = '/home/builder/data'", metadata={"tags": ["injected-parameters"]}
        ),
        nbformat.v4.new_code_cell("print(profile)", metadata={"tags": ["hide-input"]}),
    ]
    stdout = nbformat.v4.new_output("stream", name="stdout", text="reduced\n")
    stderr = nbformat.v4.new_output(
        "stream", name="stderr", text="/home/builder/lib/scoring.py:65: MetricWarning: NaN\n"
    )
    cells[2].outputs = [stdout, stderr]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["papermill"] = {"parameters": {"data_root": "/home/builder/data"}}
    nbformat.write(nb, tmp_path / "executed.ipynb")
    book.stage_notebook(tmp_path / "executed.ipynb", tmp_path / "staged.ipynb")
    staged = nbformat.read(tmp_path / "staged.ipynb", as_version=4)
    assert [c.source for c in staged.cells] == [cells[0].source, cells[2].source]
    assert staged.cells[1].outputs == [stdout], "stderr is left out, as on the page"
    assert "/home/builder" not in (tmp_path / "staged.ipynb").read_text()


def test_a_failing_chapter_fails_the_build(tmp_path, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/broken\n"
    )
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("profile = 'x'", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure')"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "notebooks" / "broken.ipynb")
    status = book.execute("reduced", tmp_path, tmp_path / "runs", tmp_path / "out", root=tmp_path)
    assert status == 1
    err = capsys.readouterr().err
    assert "notebooks/broken.ipynb" in err and "deliberate failure" in err


def test_the_chapters_that_run_last_are_chapters_of_the_book():
    assert set(book.RUN_LAST) <= {notebook.stem for notebook in CHAPTERS}


def test_evaluation_chapters_execute_after_every_other_chapter(tmp_path, monkeypatch):
    import papermill

    book_order = ["01_data", "05_evaluation", "06_listening_test", "07_beyond"]
    (tmp_path / "notebooks").mkdir()
    toc = "".join(f"  - file: notebooks/{stem}\n" for stem in book_order)
    (tmp_path / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n{toc}")
    for stem in book_order:
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / f"{stem}.ipynb")
    executed = []
    monkeypatch.setattr(
        papermill, "execute_notebook", lambda source, *args, **kwargs: executed.append(source)
    )

    def run(only=None):
        executed.clear()
        status = book.execute(
            "reduced", tmp_path, tmp_path / "runs", tmp_path / "out", only=only, root=tmp_path
        )
        assert status == 0
        return [Path(source).stem for source in executed]

    assert run() == ["01_data", "07_beyond", "05_evaluation", "06_listening_test"]
    assert run(only=["06_listening_test", "07_beyond"]) == ["07_beyond", "06_listening_test"]
    assert [notebook.stem for notebook in book.chapters(tmp_path)] == book_order  # rendering


def test_make_test_reuses_only_a_complete_fresh_execution_of_the_current_sources(
    tmp_path, monkeypatch
):
    """``reusable_execution`` accepts make book's chapters only while they stand for a
    fresh execution: complete, from an empty run folder, same parameters, same sources,
    same corpus build, run folder still there."""
    import papermill

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/01_a\n  - file: notebooks/02_b\n"
    )
    for stem in ("01_a", "02_b"):
        nbformat.write(nbformat.v4.new_notebook(), tmp_path / "notebooks" / f"{stem}.ipynb")
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "BUILD_INFO.json").write_text('{"files": 1}')
    runs, out = tmp_path / "runs", tmp_path / "out"

    def fake_execute(source, target, **kwargs):  # a chapter writes its copy and run files
        (runs / "reduced").mkdir(parents=True, exist_ok=True)
        (runs / "reduced" / Path(source).stem).write_text("artifact")
        Path(target).write_text(Path(source).read_text())

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)

    def execute(only=None):
        assert book.execute("reduced", tmp_path, runs, out, only=only, root=tmp_path) == 0

    def reusable(profile="reduced", data_root=tmp_path):
        return book.reusable_execution(out, profile, data_root, root=tmp_path)

    execute()
    record = reusable()
    assert record and record["run_root"] == str(runs.resolve())
    assert reusable(profile="paper") is None and reusable(data_root=tmp_path / "x") is None

    chapter = tmp_path / "notebooks" / "02_b.ipynb"
    chapter.write_text(chapter.read_text().replace('"cells": []', '"cells": [] '))
    assert reusable() is None, "a changed chapter must be executed again"
    execute()  # the run folder is not empty now: resumed, not from scratch
    assert reusable() is None and not (out / book.RECORD).exists()

    shutil.rmtree(runs)
    execute(only=["01_a"])
    assert reusable() is None, "a partial execution is no stand-in for the book"
    shutil.rmtree(runs)
    execute()
    assert reusable()
    (tmp_path / "mini" / "BUILD_INFO.json").write_text('{"files": 2}')
    assert reusable() is None, "a rebuilt corpus must be executed again"
    (tmp_path / "mini" / "BUILD_INFO.json").write_text('{"files": 1}')
    assert reusable()
    shutil.rmtree(runs)
    assert reusable() is None, "the tests read the run folder: it must still be there"


def test_a_rendering_is_reused_only_with_the_same_book_sources(tmp_path):
    for name in ("_config.yml", "_toc.yml"):
        (tmp_path / name).write_text(f"{name}: 1\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "book.py").write_text("")
    before = book.rendering_fingerprint(tmp_path)
    assert book.rendering_fingerprint(tmp_path) == before
    (tmp_path / "book" / "intro.md").write_text("# Intro, changed\n")
    assert book.rendering_fingerprint(tmp_path) != before


def test_the_book_group_keeps_its_tests_on_one_worker(tmp_path):
    """``make test``'s two workers must not both execute the book: this suite's conftest
    puts every test needing ``book_build`` in one xdist group, and the installed pytest
    and pytest-xdist must honour it (pytest 9.2 with xdist 3.8 silently does not)."""
    import os
    import subprocess
    import sys

    seen = tmp_path / "seen"
    seen.mkdir()
    (tmp_path / "test_grouped.py").write_text(
        "import os\nimport pytest\n\n"
        "@pytest.fixture(scope='session')\n"
        "def book_build():  # stands in for the suite's: names the worker it ran on\n"
        "    return os.environ['PYTEST_XDIST_WORKER']\n"
        + "".join(
            f"\ndef test_book_{i}(book_build):\n"
            f"    open({str(seen / str(i))!r}, 'w').write(book_build)\n"
            f"\ndef test_other_{i}():\n    pass\n"
            for i in range(6)
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup"]
        + ["-p", "conftest", "-p", "no:cacheprovider", "test_grouped.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = [path.read_text() for path in seen.iterdir()]
    assert len(workers) == 6 and len(set(workers)) == 1, f"book tests ran on {workers}"
