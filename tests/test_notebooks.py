"""Notebook hygiene: stored without outputs, one parameters cell, Colab cells in sync."""

from __future__ import annotations

import nbformat
import pytest
import sync_notebooks
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_chapters():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    tags = [set(cell.metadata.get("tags", [])) for cell in nb.cells]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), (
        "title first"
    )
    assert "colab-badge" in tags[1] and "colab-setup" in tags[2], "badge then setup after the title"
    assert "parameters" in tags[3], "the parameters cell follows the setup cell"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "!pip" not in cell.source and "%pip" not in cell.source, "no pip magics"


def test_colab_cells_agree_with_pyproject():
    assert sync_notebooks.main(["--check"]) == 0
    settings = sync_notebooks.colab_settings()
    for path in NOTEBOOKS:
        text = path.read_text()
        assert f"{settings['repository']}/blob/{settings['ref']}/notebooks/{path.name}" in text
        assert f"{settings['repository']}@{settings['ref']}" in text
