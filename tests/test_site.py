"""The built docs site: generated pages are current, hooks are documented as
they are declared, and the tutorial renders in a real browser.

The site here is built with the project's own mkdocs configuration (theme,
extensions, mkdocstrings, hooks) from the pages these tests look at, so it
takes seconds; CI builds the whole site with ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
PAGES = ["index.md", "quickstart.md", "tutorial.md", "reference/hooks.md"]


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_platform_limits_page_is_up_to_date() -> None:
    script = ROOT / "docs" / "reference" / "render_platform_limits.py"
    module = _load(script)
    page = ROOT / "docs" / "reference" / "platform-limits.md"
    assert page.read_text(encoding="utf-8") == module.render(), (  # type: ignore[attr-defined]
        "docs/reference/platform-limits.md is out of date; regenerate it with "
        "`.venv/bin/python docs/reference/render_platform_limits.py`"
    )


def test_nav_covers_every_page() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def files(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        if isinstance(node, dict):
            return [f for value in node.values() for f in files(value)]
        return []

    in_nav = files(config["nav"])
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(set(pages) - set(in_nav)) == [], "pages missing from the nav in mkdocs.yml"
    assert sorted(set(in_nav) - set(pages)) == [], "nav entries without a page"
    top = [next(iter(item)) for item in config["nav"]]
    assert top == [
        "Home",
        "Quickstart",
        "Tutorial",
        "How-to guides",
        "Explanation",
        "Reference",
        "Benchmarks",
        "Changelog",
    ], "keep the nav in Diátaxis order"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the pages in PAGES with the project's mkdocs configuration."""
    tmp = tmp_path_factory.mktemp("site")
    docs = tmp / "docs"
    for page in PAGES:
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "docs" / page, docs / page)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    config.update(
        docs_dir=str(docs),
        site_dir=str(tmp / "out"),
        strict=False,  # links to pages left out of this small build are expected to dangle
        hooks=[str(ROOT / "docs" / "_mkdocs_hooks.py")],
        nav=[
            {"Home": "index.md"},
            {"Quickstart": "quickstart.md"},
            {"Tutorial": "tutorial.md"},
            {"Reference": [{"Hooks": "reference/hooks.md"}]},
        ],
    )
    config.pop("validation", None)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT / "src")]
    for ext in config["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            ext["pymdownx.snippets"]["base_path"] = [str(ROOT)]
    config_file = tmp / "mkdocs.yml"
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config_file)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return tmp / "out"


class _Text(HTMLParser):
    """Collect the text of each element whose class contains ``wanted``, in order."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.found: list[str] = []
        self._depth = 0
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
        elif self.wanted in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self._parts = []

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1
            if not self._depth:
                self.found.append("".join(self._parts))

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._parts.append(data)


def _texts(html: str, wanted: str) -> list[str]:
    parser = _Text(wanted)
    parser.feed(html)
    return parser.found


def _normalize(text: str) -> str:
    # The rendered signature may be wrapped with a magic trailing comma.
    return re.sub(r"\s+", "", text).replace(",)", ")")


def test_every_hookspec_is_rendered_with_its_signature(site: Path) -> None:
    import siyu.hookspecs as specs

    html = (site / "reference" / "hooks" / "index.html").read_text(encoding="utf-8")
    rendered = {text.split("(", 1)[0].strip(): text for text in _texts(html, "doc-signature")}
    hooks = {name: getattr(specs, name) for name in dir(specs) if name.startswith("siyu_")}
    assert hooks, "no hookspecs found"
    missing = sorted(set(hooks) - set(rendered))
    assert not missing, f"hooks missing from the rendered hooks page: {missing}"
    for name, function in hooks.items():
        # hookspecs uses `from __future__ import annotations`, so the signature's
        # annotations are the source text, as mkdocstrings shows them.
        declared = f"{name}{inspect.signature(function)}".replace("'", "")
        assert _normalize(rendered[name]) == _normalize(declared), (
            f"the hooks page shows {rendered[name]!r} but siyu.hookspecs declares {declared!r}"
        )


def test_tutorial_page_html_has_its_code_and_navigation(site: Path) -> None:
    html = (site / "tutorial" / "index.html").read_text(encoding="utf-8")
    script = (ROOT / "examples" / "tutorial_shoe_shop.py").read_text(encoding="utf-8")
    blocks = [_normalize(b) for b in _texts(html, "highlight")]
    for line in ("wecom.add_contact_way(", "ws.referrals.tasks.create(", "ws.campaigns.pilot(", "ws.analytics.funnel("):
        assert line in script
        assert any(_normalize(line) in block for block in blocks), f"{line} is not shown on the tutorial page"
    assert "--8<--" not in html, "a snippet marker leaked into the page"
    assert 'class="md-nav' in html and "Quickstart" in html


@pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                    reason="needs Chromium at /usr/bin/chromium (.ci/debian.sh installs it; CI always runs it)")
def test_tutorial_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    page = (site / "tutorial" / "index.html").as_uri()
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "tutorial.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,2000", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.exists() and shot.stat().st_size > 20_000, "Chromium produced no (or a blank) screenshot"
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True).stdout
    # The DOM after scripts ran: the material theme's JavaScript added the copy buttons.
    assert "Tutorial: a shoe shop" in dom
    assert dom.count('data-md-type="copy"') >= 10, "code blocks lack their copy buttons"
    assert "wecom_posts_add_contact" in dom and 'class="md-nav' in dom
    if os.environ.get("SIYU_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["SIYU_KEEP_SCREENSHOT"])
