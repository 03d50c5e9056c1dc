"""The channel examples keep working: the WeCom callback app and the third-party plugin package."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "channel-plugin"


def test_wecom_callback_app_self_check(capsys: pytest.CaptureFixture[str]) -> None:
    module = runpy.run_path(str(ROOT / "examples" / "wecom_callback_app.py"), run_name="example")
    module["self_check"]()
    out = capsys.readouterr().out
    assert "genuine: HTTP 200 success" in out and "forged: HTTP 403" in out
    assert "welcome messages sent: 1" in out and "source/门店海报" in out


def test_channel_plugin_package_tests_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the plugin's own test functions in-process (a subprocess pytest would be slow)."""
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    module = runpy.run_path(str(PLUGIN / "tests" / "test_dingtalk.py"), run_name="plugin_tests")
    tests = [f for name, f in module.items() if name.startswith("test_") and callable(f)]
    assert len(tests) >= 4
    for test in tests:
        test()


def test_channel_plugin_declares_its_entry_point() -> None:
    import tomllib

    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["entry-points"]["siyu"] == {"dingtalk": "siyu_dingtalk.plugin"}
