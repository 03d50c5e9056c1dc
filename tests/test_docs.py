"""Everything the docs show must run: README and docs/ python blocks, examples/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$', re.M)


def expand_snippets(text: str) -> str:
    """Inline ``--8<-- "path[:section]"`` lines the way pymdownx.snippets does
    (paths from the repository root), so pages that show parts of an example
    run exactly the code the site shows."""

    def include(match: re.Match[str]) -> str:
        source = (ROOT / match[1]).read_text(encoding="utf-8")
        if match[2] is None:
            return source.rstrip("\n")
        part = re.search(
            rf"^[^\n]*--8<-- \[start:{match[2]}\][^\n]*\n(.*?)^[^\n]*--8<-- \[end:{match[2]}\]", source, re.S | re.M
        )
        assert part, f"{match[1]} has no section {match[2]!r}"
        return part[1].rstrip("\n")

    return SNIPPET.sub(include, text)


def blocks(page: Path) -> list[str]:
    return FENCE.findall(expand_snippets(page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for index, code in enumerate(blocks(page), start=1):
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}[block {index}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.relative_to(ROOT)}: python block {index} failed: {exc!r}") from exc


#: Examples that talk to a server, and where it listens: skipped where it is absent (never in CI).
NEEDS_SERVER = {"consume_events_from_nats.py": ("NATS with JetStream", "127.0.0.1", 4222)}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_examples_run(script: Path, tmp_path: Path) -> None:
    if script.name in NEEDS_SERVER and not os.environ.get("CI"):
        import socket

        what, host, port = NEEDS_SERVER[script.name]
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            pytest.skip(f"{script.name} needs {what} on {host}:{port}, which is not running here")
    env = {**os.environ, "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def test_every_hookspec_is_documented() -> None:
    import siyu.hookspecs as specs

    hooks = [name for name in dir(specs) if name.startswith("siyu_")]
    assert hooks, "no hookspecs found"
    for name in hooks:
        doc = getattr(specs, name).__doc__ or ""
        assert len(doc.strip()) > 40, f"hook {name} needs a docstring saying when it is called and what it returns"
    page = (ROOT / "docs" / "reference" / "hooks.md").read_text(encoding="utf-8")
    assert "::: siyu.hookspecs" in page, "the hooks page must render every spec from siyu.hookspecs"
    # tests/test_site.py builds the page and checks each hook's rendered signature.


def test_tutorial_page_shows_the_whole_script_in_order() -> None:
    script = (ROOT / "examples" / "tutorial_shoe_shop.py").read_text(encoding="utf-8")
    sections = re.findall(r"^# --8<-- \[start:([\w-]+)\]", script, re.M)
    page = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    shown = re.findall(r'^--8<-- "examples/tutorial_shoe_shop\.py:([\w-]+)"$', page, re.M)
    assert sections and shown == sections, "docs/tutorial.md must include every section of the script, in order"
    outside = re.sub(r"^# --8<-- \[start:.*?^# --8<-- \[end:[\w-]+\]\n", "", script, flags=re.S | re.M)
    code = [line for line in outside.split('"""', 2)[-1].splitlines() if line.strip()]
    assert not code, f"code outside the tutorial's sections is not shown on the page: {code[:3]}"
