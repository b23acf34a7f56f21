"""Jinja2 environments: Python (default delimiters) and LaTeX (TeX-safe delimiters).

Templates only loop and print: every value they show is prepared in Python.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

PACKAGE = Path(__file__).resolve().parent.parent   # symbp/ (this file is symbp/emit/render.py)
#: where the templates are: inside the package when installed from a wheel (pyproject.toml maps
#: the top-level templates/ to symbp/templates), at the top of the checkout otherwise
SHIPPED_TEMPLATES = PACKAGE / "templates"
CHECKOUT_TEMPLATES = PACKAGE.parent / "templates"


def templates_dir() -> Path:
    """The templates folder: the one shipped in the package, else the checkout's.

    The checkout's counts only beside its ``pyproject.toml``, so an installed symbp never
    picks up an unrelated ``site-packages/templates``.
    """
    if SHIPPED_TEMPLATES.is_dir():
        return SHIPPED_TEMPLATES
    if CHECKOUT_TEMPLATES.is_dir() and (PACKAGE.parent / "pyproject.toml").is_file():
        return CHECKOUT_TEMPLATES
    raise FileNotFoundError(f"symbp's templates folder is missing: {SHIPPED_TEMPLATES}")


@lru_cache(maxsize=None)
def python_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)


@lru_cache(maxsize=None)
def latex_env() -> jinja2.Environment:
    from .latex import escape_latex
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_statement_prefix=None, line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["tex"] = escape_latex
    return env


def render(env: jinja2.Environment, template: str, **context) -> str:
    return env.get_template(template).render(**context)


@lru_cache(maxsize=None)
def html_env() -> jinja2.Environment:
    """HTML templates: every printed value autoescaped (a spec's title can hold no markup);
    MathML the presenter wrote arrives as ``Markup``. The ``lms_text`` filter prints spec text on
    an LMS page (:func:`literal_lms_html`: no Mustache tag, no MathJax math)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=True)
    env.filters["lms_text"] = lambda text: Markup(literal_lms_html(text))
    return env


def html_without_braces(text: str) -> str:
    """``text`` HTML-escaped with ``{`` and ``}`` as ``&#123;`` / ``&#125;``: a page a second
    engine reads again (Mustache's tags, Moodle cloze's subquestions) finds no syntax in it."""
    return html.escape(text).replace("{", "&#123;").replace("}", "&#125;")


#: the classes whose elements MathJax's default configurations leave unscanned: MathJax 3's
#: ``ignoreHtmlClass`` (``mathjax_ignore``, also the ``tex2jax.ignoreClass`` Canvas gives MathJax 2;
#: PrairieLearn's MathJax 3 honours it and ``tex2jax_ignore``), MathJax 2's ``tex2jax_ignore``
#: (Moodle before 4.5) and its AsciiMath scanner's ``asciimath2jax_ignore`` (Canvas loads AsciiMath)
MATHJAX_IGNORE_CLASSES = "mathjax_ignore tex2jax_ignore asciimath2jax_ignore"
#: the characters that open math on their own: TeX's ``$`` and backslash (``\(``, ``\[``,
#: ``\begin``), AsciiMath's backtick
MATH_OPENERS = "$\\`"
#: the characters of TeX's and AsciiMath's delimiters (the openers, and the brackets of
#: Moodle's ``[tex]``), as HTML entities
_DELIMITER_ENTITIES = str.maketrans({ch: f"&#{ord(ch)};" for ch in MATH_OPENERS + "[]"})


def plain_lms_label(title: str, name: str) -> str:
    """A title for an LMS field of plain text (a quiz's or question's name), where no element
    can tell MathJax to skip it: the title when it holds none of :data:`MATH_OPENERS`, else
    ``name`` (an identifier: nothing to typeset)."""
    return name if any(ch in title for ch in MATH_OPENERS) else title


def literal_lms_html(text: str) -> str:
    """Spec text (a title) as HTML an LMS shows literally: no markup, no Mustache tag, no math.

    An LMS typesets TeX in a page's text twice over: on the server (Moodle's TeX notation filter
    renders ``$$...$$``, ``\\[...\\]``, ``[tex]``; its MathJax filter decides from ``\\(``, ``\\[``,
    ``$$`` whether to typeset at all) and in the browser (MathJax in Moodle, Canvas and
    PrairieLearn, PrairieLearn with single ``$`` too). The server-side filters read the HTML
    source, so every delimiter character is written as an entity (:data:`_DELIMITER_ENTITIES`)
    and braces as :func:`html_without_braces` writes them. MathJax reads the browser's decoded
    text, where entities are characters again, so the text sits in a span of
    :data:`MATHJAX_IGNORE_CLASSES`, which each platform's MathJax skips with the configuration
    it ships (and the HTML cleaners of Moodle and Canvas keep a span's class)."""
    return f'<span class="{MATHJAX_IGNORE_CLASSES}">{html_without_braces(text).translate(_DELIMITER_ENTITIES)}</span>'
