"""A clean install, as Colab does it: build the sdist and the wheel from a copy of the
repository, install the wheel into a fresh virtual environment outside the repository
with the requirement a chapter's setup cell names, and execute that chapter there.

It proves that the profiles, the sentences and the mini-corpus builder ship in the
package, that the setup cell's extras exist and suffice for the chapter, and that the
chapter reads nothing from the repository.
"""

from __future__ import annotations

import ast
import email.parser
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import nbformat
import pytest
import sync_notebooks
from conftest import ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: The chapter executed from the clean install: the first one, which needs no run folder
#: and builds the mini corpus with the packaged builder.
CHAPTER = ROOT / "notebooks" / "01_data_simulation.ipynb"
#: What Colab preinstalls that this chapter (ipywidgets) and its execution (papermill,
#: ipykernel) need; their version ranges are those of the package's `book` extra.
COLAB_PREINSTALLED = ("papermill", "ipykernel", "ipywidgets")
#: Frameworks Colab preinstalls as GPU builds, which the setup cell must not replace.
COLAB_FRAMEWORKS = {"tensorflow", "tensorflow-cpu", "keras", "torch"}
#: Appended to the copied chapter: where the kernel that ran it found the library.
PROBE = """import sys, data_scripts, synthsep_lib
print(sys.executable, synthsep_lib.__file__, data_scripts.__file__, sep="\\n")"""


def run(*command, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command``; fail the test with its output when it exits non-zero."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} (in {cwd}) exited {done.returncode}:\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def source_files() -> list[str]:
    """The repository's files as a commit would hold them: tracked or not ignored."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return [name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]


def metadata(wheel: Path) -> Message:
    """The ``METADATA`` of ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


def requirements(meta: Message, extra: str | None) -> list[Requirement]:
    """The ``Requires-Dist`` of ``meta`` on this Python: the core ones (``extra`` None) or
    those that ``extra`` adds to them."""

    def applies(requirement: Requirement, extra: str | None) -> bool:
        return requirement.marker is None or requirement.marker.evaluate({"extra": extra or ""})

    listed = [Requirement(line) for line in meta.get_all("Requires-Dist", [])]
    return [r for r in listed if applies(r, extra) and (extra is None or not applies(r, None))]


def setup_cell_requirement(notebook: Path) -> Requirement:
    """The requirement string assigned to ``requirement`` in the chapter's setup cell."""
    nb = nbformat.read(notebook, as_version=4)
    (cell,) = [c for c in nb.cells if "colab-setup" in c.metadata.get("tags", [])]
    values = [
        node.value.value
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["requirement"]
    ]
    assert len(values) == 1, (
        f"{notebook.name}: setup cell assigns `requirement` {len(values)} times"
    )
    return Requirement(values[0])


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """sdist and wheel built from a copy of the repository's files, outside the repository.

    The wheel is built from the sdist (as ``python -m build`` does), so it holds only what
    the sdist ships. Building in a copy keeps ``build/`` and ``*.egg-info`` out of the
    working tree, and keeps its ``synthsep_lib.egg-info/SOURCES.txt`` (an editable
    install's) from adding files to the sdist.
    """
    base = tmp_path_factory.mktemp("clean_install")
    assert not base.resolve().is_relative_to(ROOT), f"{base} lies inside the repository"
    source, out = base / "source", base / "dist"
    files = source_files()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out.mkdir()
    # The PEP 517 hook itself: `build` is not a dependency of the book.
    build_sdist = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    sdist = out / run(sys.executable, "-c", build_sdist, cwd=source).stdout.split()[-1]
    run(
        sys.executable,
        *("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
        *("--wheel-dir", out, sdist),
        cwd=base,
    )
    (wheel,) = out.glob("*.whl")
    return {"base": base, "sdist": sdist, "wheel": wheel, "files": files}


def test_sdist_and_wheel_ship_every_file_of_the_packages(dist):
    with tarfile.open(dist["sdist"]) as archive:
        # strip the leading "synthsep_lib-<version>/"
        in_sdist = {name.partition("/")[2] for name in archive.getnames()}
    with zipfile.ZipFile(dist["wheel"]) as archive:
        in_wheel = set(archive.namelist())
    packaged = [
        name for name in dist["files"] if name.split("/")[0] in {"synthsep_lib", "data_scripts"}
    ]
    # the data files the chapters read: profiles, the corpus sentences, the corpus builder
    for name in (
        "synthsep_lib/profiles/reduced.yaml",
        "synthsep_lib/profiles/paper.yaml",
        "data_scripts/sentences.txt",
        "data_scripts/mini_corpus.py",
    ):
        assert name in packaged, f"{name} is not in the repository any more: update this test"
    for archive, contents in ((dist["sdist"], in_sdist), (dist["wheel"], in_wheel)):
        missing = sorted(set(packaged) - contents)
        assert not missing, (
            f"{archive.name} lacks {missing}: see [tool.setuptools*] in pyproject.toml"
        )


def test_setup_cell_installs_declared_extras_and_keeps_colab_s_frameworks(dist):
    requirement = setup_cell_requirement(CHAPTER)
    meta = metadata(dist["wheel"])
    settings = sync_notebooks.colab_settings()
    assert requirement.name == meta["Name"]
    assert requirement.url == f"git+https://github.com/{settings['repository']}@{settings['ref']}"
    declared = set(meta.get_all("Provides-Extra", []))
    assert requirement.extras <= declared, (
        f"extras the wheel lacks: {requirement.extras - declared}"
    )
    pulled = {canonicalize_name(r.name) for e in requirement.extras for r in requirements(meta, e)}
    pulled |= {canonicalize_name(r.name) for r in requirements(meta, None)}
    assert not pulled & COLAB_FRAMEWORKS, f"would replace Colab's {pulled & COLAB_FRAMEWORKS}"


@pytest.mark.chapters
def test_chapter_runs_from_a_clean_install(dist, request):
    if request.config.getoption("--skip-chapters"):
        pytest.skip("--skip-chapters given")
    base, wheel = dist["base"], dist["wheel"]
    venv, folder = base / "venv", base / "chapter"
    run(sys.executable, "-m", "venv", venv, cwd=base)
    python = venv / "bin" / "python"
    # Nothing from the repository or the user's site: the venv, the pip cache and indexes.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env |= {
        "PYTHONNOUSERSITE": "1",
        "JUPYTER_DATA_DIR": str(base / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter_config"),
        "IPYTHONDIR": str(base / "ipython"),
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
    }

    # Exactly the setup cell's requirement, the git URL replaced by the built wheel.
    requirement = setup_cell_requirement(CHAPTER)
    requirement.url = wheel.as_uri()
    preinstalled = [
        f"{r.name}{r.specifier}"  # without the `extra == "book"` marker, which pip would skip
        for r in requirements(metadata(wheel), "book")
        if r.name in COLAB_PREINSTALLED
    ]
    assert len(preinstalled) == len(COLAB_PREINSTALLED), preinstalled
    # --no-compile halves the install: Python compiles what the chapter imports, on import.
    install = ("-m", "pip", "install", "--quiet", "--no-compile", str(requirement))
    run(python, *install, *preinstalled, cwd=base, env=env)
    names = "import importlib.metadata as m; print(*(d.name for d in m.distributions()))"
    installed = {
        canonicalize_name(n) for n in run(python, "-c", names, cwd=base, env=env).stdout.split()
    }
    assert not installed & COLAB_FRAMEWORKS, f"replaces Colab's {installed & COLAB_FRAMEWORKS}"

    folder.mkdir()
    nb = nbformat.read(CHAPTER, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(nb, folder / CHAPTER.name)
    run(
        venv / "bin" / "papermill",
        *(CHAPTER.name, "executed.ipynb", "--no-progress-bar"),
        cwd=folder,  # the chapter's default data_root and run_root are relative to it
        env=env,
    )

    executed = nbformat.read(folder / "executed.ipynb", as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    errors = [out.ename for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    assert all(cell.execution_count for cell in code), "some code cells did not run"
    probe = "".join(out.get("text", "") for out in code[-1].outputs).splitlines()
    assert len(probe) == 3, f"the probe cell printed {probe}"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site_packages = Path(run(python, "-c", purelib, cwd=base, env=env).stdout.strip())
    assert Path(probe[0]).parent == venv / "bin", f"the kernel ran {probe[0]}"
    for module_file in probe[1:]:
        assert Path(module_file).is_relative_to(site_packages), f"imported {module_file}"

    # The chapter built the mini corpus and wrote its run folder, in its own folder.
    corpus = folder / "data" / "mini"
    assert (corpus / "LJSpeech-1.1" / "metadata.csv").read_text().count("\n") > 0
    assert any((corpus / "LJSpeech-1.1" / "wavs").glob("*.wav"))
    assert any((corpus / "ESC-50-master" / "audio").glob("*.wav"))
    data = folder / "runs" / "reduced" / "data"
    assert (data / "splits.json").is_file() and (data / "test_manifest.csv").is_file()
    assert any((data / "test").glob("*_mixture.wav"))
