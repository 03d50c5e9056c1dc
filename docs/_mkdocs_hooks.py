"""mkdocs hooks for the siyu site (configured under ``hooks:`` in mkdocs.yml).

siyu's docstrings use Sphinx cross-reference roles (``:class:`~siyu.errors.NotFound```),
which mkdocstrings renders as literal text. Turn them into plain code spans:
``:class:`~a.b.C``` shows ``C``, ``:mod:`a.b``` shows ``a.b``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:mod|class|func|meth|attr|data|exc|obj|const|term|ref):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    target = match[2]
    if match[1]:
        target = target.rsplit(".", 1)[-1]
    return f"<code>{target}</code>"


def on_startup(**kwargs: Any) -> None:
    """Keep jieba (Chinese word splitting for search) from logging its
    dictionary loading on every build."""
    try:
        import jieba
    except ImportError:
        return
    jieba.setLogLevel(logging.WARNING)


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(_code, html)
