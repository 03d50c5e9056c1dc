"""The FastAPI mall example's own tests (examples/fastapi_mall/test_mall_app.py), run by the suite.

Its test functions and fixtures are loaded into this module, where pytest collects them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_mall" / "test_mall_app.py"


def _load() -> dict[str, object]:
    spec = importlib.util.spec_from_file_location("fastapi_mall_tests", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: value for name, value in vars(module).items() if not name.startswith("_")}


globals().update(_load())


def test_the_example_tests_are_collected() -> None:
    names = [name for name in globals() if name.startswith("test_") and name != "test_the_example_tests_are_collected"]
    assert len(names) >= 6, names
