"""show.source: the code of an idea, docstring left out, highlighted, with its place."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
from conftest import ROOT

from synthsep_lib import mixing, show


def documented(x, y=1):
    """A docstring that must not be shown.

    Over several lines.
    """
    # a comment that must be shown
    total = x + y  # and a trailing one
    return total


@functools.lru_cache(maxsize=2)
def decorated(n):
    """Cached."""
    return n * 2


class Example:
    """A class docstring."""

    size: int = 3

    def method(self, scale):
        """A method docstring."""
        if scale > 1:
            return self.size * scale
        return self.size

    @staticmethod
    def helper():
        "One-line docstring in plain quotes."
        return "kept"


def one_liner():
    return "no docstring"  # nothing to remove


def test_docstring_left_out_code_and_comments_kept():
    shown = show.source(documented)
    assert "docstring" not in shown.code and "Over several lines" not in shown.code
    assert shown.code.startswith("def documented(x, y=1):\n")
    assert "    # a comment that must be shown\n" in shown.code
    assert "total = x + y  # and a trailing one" in shown.code
    assert shown.code.endswith("    return total\n")
    compile(shown.code, "<shown>", "exec")  # what is left is still valid Python


def test_caption_names_the_file_and_its_lines():
    shown = show.source(documented)
    assert shown.name == "documented"
    # a module outside a package is named by its file name
    assert shown.path == "test_show.py"
    lines = (ROOT / "tests" / shown.path).read_text().splitlines()
    assert lines[shown.first_line - 1] == "def documented(x, y=1):"
    assert lines[shown.last_line - 1] == "    return total"
    assert shown.caption == (
        f"documented — test_show.py, lines {shown.first_line}–{shown.last_line}"
    )


def test_library_path_is_relative_to_the_repository():
    shown = show.source(mixing.simulate_mixture_paper)
    assert shown.path == "synthsep_lib/mixing.py"
    lines = (ROOT / shown.path).read_text().splitlines()
    assert lines[shown.first_line - 1] == "def simulate_mixture_paper("
    assert "tile_noise(" in shown.code and '"""' not in shown.code


def test_html_is_highlighted_with_inline_styles():
    html = show.source(documented)._repr_html_()
    assert "test_show.py, lines" in html
    assert "<pre" in html and 'style="' in html
    assert 'class="' not in html.split("<pre", 1)[1]  # no class needs a style sheet
    assert "color: #" in html  # keywords and comments are coloured
    assert "a comment that must be shown" in html
    assert "docstring" not in html


def test_markdown_and_text_fallbacks():
    shown = show.source(documented)
    markdown = shown._repr_markdown_()
    assert "```python\ndef documented(x, y=1):\n" in markdown and markdown.endswith("```\n")
    assert repr(shown).startswith("# documented — test_show.py, lines ")
    assert "return total" in repr(shown)


def test_method_is_dedented_and_loses_its_docstring():
    shown = show.source(Example.method)
    assert shown.name == "Example.method"
    assert shown.code.startswith("def method(self, scale):\n    if scale > 1:\n")
    assert "docstring" not in shown.code
    assert show.source(Example().method).code == shown.code  # a bound method too


def test_class_keeps_fields_and_methods_without_docstrings():
    shown = show.source(Example)
    assert shown.code.startswith("class Example:\n    size: int = 3\n")
    assert '    @staticmethod\n    def helper():\n        return "kept"' in shown.code
    assert "docstring" not in shown.code
    compile(shown.code, "<shown>", "exec")


def test_decorators_are_kept_and_wrappers_unwrapped():
    shown = show.source(decorated)
    assert shown.code == "@functools.lru_cache(maxsize=2)\ndef decorated(n):\n    return n * 2\n"


def test_function_without_docstring_is_shown_whole():
    assert show.source(one_liner).code == (
        'def one_liner():\n    return "no docstring"  # nothing to remove\n'
    )


@pytest.mark.parametrize(
    "obj, message",
    [
        (len, "expects a function, method or class"),
        (lambda x: x, "cannot show a lambda"),
        (3, "expects a function, method or class"),
        (mixing, "expects a function, method or class"),
    ],
    ids=["builtin", "lambda", "number", "module"],
)
def test_bad_input_is_a_clear_type_error(obj, message):
    with pytest.raises(TypeError, match=message):
        show.source(obj)


def test_a_definition_without_a_source_file_is_a_clear_type_error():
    namespace = {}
    exec("def typed_in_a_cell():\n    return 1\n", namespace)
    with pytest.raises(TypeError, match="cannot read the source of 'typed_in_a_cell'"):
        show.source(namespace["typed_in_a_cell"])


def test_import_loads_neither_tensorflow_nor_torch():
    code = (
        "import sys, synthsep_lib.show\n"
        "from synthsep_lib import audio, show\n"
        "show.source(audio.mel_spectrogram)._repr_html_()\n"
        "print(sorted(m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
