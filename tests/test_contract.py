"""The storage contract suite on every built-in backend."""

from __future__ import annotations

from pathlib import Path

from siyu.testing.contract import StorageContract


class TestMemoryBackend(StorageContract):
    def make_url(self, tmp_path: Path) -> str:
        return "memory://"


class TestSQLiteBackend(StorageContract):
    def make_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'shop.db'}"
