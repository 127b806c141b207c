"""Show the code of an idea in a chapter: ``show.source(audio.mel_spectrogram)``.

The chapters call the library; this module lets them *display* the function, method or
class that a paragraph describes, without its docstring (the prose around it says the
same) and syntax-highlighted with inline styles, so that it looks the same in Jupyter,
on Colab and in the rendered book without any style sheet. A caption names the file
and the lines, so the reader can find it in the repository.

Imports neither TensorFlow nor PyTorch (it reads the source, it does not run it).
"""

from __future__ import annotations

import ast
import html
import inspect
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceCode", "source"]

#: Pygments style of the highlighted code (a light background, like the book's cells).
STYLE = "default"


@dataclass(frozen=True)
class SourceCode:
    """The displayable source of one function, method or class.

    Attributes
    ----------
    name : str
        Qualified name, e.g. ``"WaveNet.upsample"``.
    path : str
        File, relative to the folder that holds the top-level package, e.g.
        ``"synthsep_lib/audio.py"``.
    first_line, last_line : int
        1-based lines of the definition in ``path``, decorators and docstring included.
    code : str
        The definition, dedented, with its docstrings left out.
    """

    name: str
    path: str
    first_line: int
    last_line: int
    code: str

    @property
    def caption(self) -> str:
        """``"name — path, lines a–b"``."""
        return f"{self.name} — {self.path}, lines {self.first_line}–{self.last_line}"

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        # The <pre> carries its own colours and box too: a book theme's rules for <pre>
        # (a dark background in dark mode) must not show through the token colours.
        pre = "margin: 0; padding: 0.6em 0.8em; color: #000; border: 1px solid #e1e4e8;"
        formatter = HtmlFormatter(
            style=STYLE,
            noclasses=True,
            cssclass="synthsep-source",
            prestyles=f"{pre} border-radius: 0.25rem; background: {_background(STYLE)}",
        )
        caption = (
            '<div style="font-size: 0.85em; color: #555; margin: 0 0 0.2em 0;">'
            f"<code>{html.escape(self.name)}</code> — {html.escape(self.path)}, "
            f"lines {self.first_line}–{self.last_line}</div>"
        )
        return caption + highlight(self.code, PythonLexer(), formatter)

    def _repr_markdown_(self) -> str:
        where = f"{self.path}, lines {self.first_line}–{self.last_line}"
        return f"`{self.name}` — {where}\n\n```python\n{self.code}```\n"

    def __repr__(self) -> str:
        return f"# {self.caption}\n{self.code}"


def _background(style: str) -> str:
    from pygments.styles import get_style_by_name

    return get_style_by_name(style).background_color


def source(obj) -> SourceCode:
    """The source of a function, method or class, docstrings left out, for display.

    Decorators are kept; a method is dedented to the left margin. In a class, the
    docstrings of the class and of everything defined in it are left out.

    Parameters
    ----------
    obj : function, method or class
        Defined in a source file (not a builtin, not a lambda, not typed in a notebook
        cell). Wrappers made with ``functools.wraps`` (``lru_cache``,
        ``torch.no_grad()``) show the function they wrap.

    Returns
    -------
    SourceCode
        Displays as highlighted HTML in Jupyter (``_repr_html_``), as a fenced code
        block where Markdown is preferred, and as plain text otherwise.

    Raises
    ------
    TypeError
        If ``obj`` is not a named function, method or class with readable source.
    """
    target = _definition(obj)
    try:
        lines, first_line = inspect.getsourcelines(target)
        file = inspect.getsourcefile(target)
    except (OSError, TypeError) as error:
        raise TypeError(
            f"show.source cannot read the source of {target.__qualname__!r} ({error}); "
            "it shows definitions that live in a .py file"
        ) from error
    code = _without_docstrings(textwrap.dedent("".join(lines)))
    return SourceCode(
        name=target.__qualname__,
        path=_display_path(file, target.__module__),
        first_line=first_line,
        last_line=first_line + len(lines) - 1,
        code=code,
    )


def _definition(obj):
    """The function or class behind ``obj`` (methods and ``functools.wraps`` unwrapped)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    obj = inspect.unwrap(obj) if callable(obj) else obj
    if inspect.ismethod(obj):
        obj = obj.__func__
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        raise TypeError(
            f"show.source expects a function, method or class defined in Python; got "
            f"{type(obj).__name__} {obj!r}"
        )
    if obj.__name__ == "<lambda>":
        raise TypeError(
            "show.source cannot show a lambda (its source is part of a longer line); "
            "define the function with def"
        )
    return obj


def _without_docstrings(code: str) -> str:
    """``code`` less the docstring lines of every function and class defined in it."""
    tree = ast.parse(code)
    lines = code.splitlines(keepends=True)
    drop = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        first = node.body[0]
        is_docstring = (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        )
        # A docstring on the line of the signature (``def f(): "..."``) is left in place.
        if is_docstring and _own_lines(lines, first):
            drop.update(range(first.lineno, first.end_lineno + 1))
            # and a blank line that separated the docstring from the code
            if first.end_lineno < len(lines) and not lines[first.end_lineno].strip():
                drop.add(first.end_lineno + 1)
    return "".join(line for number, line in enumerate(lines, start=1) if number not in drop)


def _own_lines(lines: list[str], node: ast.AST) -> bool:
    """Whether nothing precedes ``node`` on its first line (not ``def f(): "..."``)."""
    return not lines[node.lineno - 1].encode()[: node.col_offset].strip()  # offset in bytes


def _display_path(file: str, module: str) -> str:
    """``file`` relative to the folder holding the top-level package of ``module``."""
    package = sys.modules.get(module.split(".")[0])
    package_file = getattr(package, "__file__", None)
    if package_file and Path(package_file).name == "__init__.py":
        root = Path(package_file).resolve().parent.parent
        try:
            return Path(file).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return Path(file).name
