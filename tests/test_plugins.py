"""The plugin system: registration, entry points, validation, events."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

import siyu
from siyu.errors import PluginError, UnknownBackendError
from siyu.events import PointsEarned, TagApplied, UserCreated
from siyu.storage.sqlite import MemoryBackend


class RecordingObserver:
    def __init__(self) -> None:
        self.events: list[Any] = []

    @siyu.hookimpl
    def siyu_on_event(self, event: Any, workspace: siyu.Workspace) -> None:
        self.events.append(event)


def test_plugin_registered_by_argument_sees_events() -> None:
    observer = RecordingObserver()
    with siyu.connect("memory://", plugins=[observer]) as ws:
        u = ws.users.add(phone="13800138000")
        ws.tags.apply(u.id, "vip")
        ws.points.earn(u.id, 5, reason="x", key="k")
    kinds = [type(e) for e in observer.events]
    assert kinds == [UserCreated, TagApplied, PointsEarned]


def test_events_only_after_commit() -> None:
    observer = RecordingObserver()
    with siyu.connect("memory://", plugins=[observer]) as ws:
        with pytest.raises(siyu.errors.IdentityConflict):
            ws.users.add_many([{"phone": "13800138000"}, {"phone": "13800138000"}])
        assert observer.events == []


def test_failing_observer_does_not_undo_the_change() -> None:
    class Broken:
        @siyu.hookimpl
        def siyu_on_event(self, event: Any) -> None:
            raise RuntimeError("observer bug")

    after = RecordingObserver()
    with siyu.connect("memory://", plugins=[Broken(), after]) as ws:
        u = ws.users.add()
        assert ws.users.get(u.id).id == u.id
        assert len(ws.observer_errors) == 1
        assert isinstance(ws.observer_errors[0][1], RuntimeError)
        assert len(after.events) == 1  # the other observer still ran


def test_misspelled_hook_fails_at_connect() -> None:
    class Typo:
        @siyu.hookimpl
        def siyu_on_evnet(self, event: Any) -> None: ...

    with pytest.raises(PluginError, match="siyu_on_evnet"):
        siyu.connect("memory://", plugins=[Typo()])


def test_duplicate_scheme_names_both_classes() -> None:
    class Impostor(MemoryBackend):
        scheme: ClassVar[str] = "memory"

    class Plugin:
        @siyu.hookimpl
        def siyu_register_storage_backends(self, register: Callable[[type], None]) -> None:
            register(Impostor)

    with pytest.raises(PluginError) as info:
        siyu.connect("memory://", plugins=[Plugin()])
    assert "MemoryBackend" in str(info.value) and "Impostor" in str(info.value)


def test_unknown_scheme_lists_known_and_closest() -> None:
    with pytest.raises(UnknownBackendError) as info:
        siyu.connect("sqlit:///x.db")
    message = str(info.value)
    assert "memory" in message and "sqlite" in message and "Did you mean 'sqlite'" in message
    assert isinstance(info.value, KeyError)


def test_third_party_backend_by_plugin() -> None:
    class ScratchBackend(MemoryBackend):
        """A third-party backend: here simply memory under another scheme."""

        scheme: ClassVar[str] = "scratch"

    class Plugin:
        @siyu.hookimpl
        def siyu_register_storage_backends(self, register: Callable[[type], None]) -> None:
            register(ScratchBackend)

    with siyu.connect("scratch://", plugins=[Plugin()]) as ws:
        assert isinstance(ws.backend, ScratchBackend)
        assert ws.users.add().id == 1


def test_plugin_managers_do_not_leak_between_workspaces() -> None:
    observer = RecordingObserver()
    with siyu.connect("memory://", plugins=[observer]) as ws1, siyu.connect("memory://") as ws2:
        ws2.users.add()
        assert observer.events == []
        ws1.users.add()
        assert len(observer.events) == 1


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A distribution on sys.path that declares a plugin in the ``siyu`` entry-point group."""
    (tmp_path / "siyu_hello_plugin.py").write_text(
        textwrap.dedent(
            """
            import siyu

            SEEN = []

            @siyu.hookimpl
            def siyu_on_event(event):
                SEEN.append(type(event).__name__)
            """
        )
    )
    dist = tmp_path / "siyu_hello_plugin-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: siyu-hello-plugin\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[siyu]\nhello = siyu_hello_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SIYU_DISABLE_PLUGIN_AUTOLOAD")
    yield "siyu_hello_plugin"
    sys.modules.pop("siyu_hello_plugin", None)


def test_entry_point_plugin_is_autoloaded(installed_plugin: str) -> None:
    with siyu.connect("memory://") as ws:
        ws.users.add()
        infos = {row["name"]: row for row in ws.plugins()}
    assert infos["hello"]["version"] == "1.2.3"
    assert infos["hello"]["hooks"] == ["siyu_on_event"]
    assert sys.modules[installed_plugin].SEEN == ["UserCreated"]


def test_autoload_can_be_disabled(installed_plugin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIYU_DISABLE_PLUGIN_AUTOLOAD", "1")
    with siyu.connect("memory://") as ws:
        assert "hello" not in {row["name"] for row in ws.plugins()}


def test_plugin_by_module_name() -> None:
    with siyu.connect("memory://", plugins=["siyu.storage.builtin"]) as ws:
        assert "sqlite" in ws.backends


def test_subscribe_shorthand() -> None:
    seen: list[str] = []
    with siyu.connect("memory://") as ws:
        ws.subscribe(lambda event: seen.append(type(event).__name__))
        ws.users.add()
    assert seen == ["UserCreated"]


def test_trace_plugins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIYU_TRACE_PLUGINS", "1")
    with siyu.connect("memory://") as ws:
        ws.users.add()
    assert "siyu_register_storage_backends" in capsys.readouterr().err


def test_failing_observer_writes_are_undone_alone() -> None:
    class Tagger:
        @siyu.hookimpl
        def siyu_on_event(self, event: Any, workspace: siyu.Workspace) -> None:
            if isinstance(event, UserCreated):
                workspace.tags.apply(event.user_id, "welcomed")

    class HalfDone:
        @siyu.hookimpl
        def siyu_on_event(self, event: Any, workspace: siyu.Workspace) -> None:
            if isinstance(event, UserCreated):
                workspace.tags.apply(event.user_id, "half_done")
                raise RuntimeError("crashed after writing")

    seen = RecordingObserver()
    with siyu.connect("memory://", plugins=[Tagger(), HalfDone(), seen]) as ws:
        ids = ws.users.add_many([{} for _ in range(3)])
        for uid in ids:
            assert ws.tags.of(uid) == {"default/welcomed"}
        # The failing consumer stops at the first event it fails on (in log order, nothing
        # skipped): its error and position are visible, and the others went on.
        assert len(ws.observer_errors) == 1 and ws.observer_errors[0][0].user_id == ids[0]
        half = next(c for c in ws.event_log.consumers() if c.name.endswith("HalfDone"))
        assert (half.position, half.failed_position, half.attempts, half.parked) == (0, 1, 1, False)
        assert half.error == "RuntimeError: crashed after writing" and half.lag > 0
        # Events of the observers' own writes reach observers in a next round.
        applied = [e for e in seen.events if isinstance(e, TagApplied)]
        assert [e.tag for e in applied] == ["default/welcomed"] * 3


def test_observes_filters_event_classes() -> None:
    seen: list[str] = []

    class OnlyPoints:
        @siyu.hookimpl
        @siyu.observes(PointsEarned)
        def siyu_on_event(self, event: Any) -> None:
            seen.append(type(event).__name__)

    with siyu.connect("memory://", plugins=[OnlyPoints()]) as ws:
        u = ws.users.add()
        ws.tags.apply(u.id, "vip")
        ws.points.earn(u.id, 5, reason="x", key="k")
    assert seen == ["PointsEarned"]
    with pytest.raises(TypeError):
        siyu.observes()


def test_batch_observer_gets_one_call_per_write_with_its_event_classes() -> None:
    calls: list[list[Any]] = []

    class Batch:
        @siyu.hookimpl
        @siyu.observes(UserCreated)
        def siyu_on_events(self, events: Any, workspace: siyu.Workspace) -> None:
            assert isinstance(workspace, siyu.Workspace)
            calls.append(list(events))

    with siyu.connect("memory://", plugins=[Batch()]) as ws:
        ids = ws.users.add_many([{} for _ in range(5)])
        ws.tags.apply(ids[0], "vip")  # not a UserCreated: no call at all
        ws.users.add()
    assert [[e.user_id for e in batch] for batch in calls] == [ids, [ids[-1] + 1]]


def test_failing_batch_observer_undoes_its_own_batch_only() -> None:
    class Tagger:
        @siyu.hookimpl
        def siyu_on_events(self, events: Any, workspace: siyu.Workspace) -> None:
            for event in events:
                if isinstance(event, UserCreated):
                    workspace.tags.apply(event.user_id, "welcomed")

    class HalfDone:
        @siyu.hookimpl
        def siyu_on_events(self, events: Any, workspace: siyu.Workspace) -> None:
            users = [e.user_id for e in events if isinstance(e, UserCreated)]
            if not users:  # the next round: the events of Tagger's own writes
                return
            workspace.tags.apply_many(users[:2], "half_done")
            raise RuntimeError("crashed after writing")

    after = RecordingObserver()
    with siyu.connect("memory://", plugins=[Tagger(), HalfDone(), after]) as ws:
        ids = ws.users.add_many([{} for _ in range(3)])
        assert all(ws.tags.of(uid) == {"default/welcomed"} for uid in ids)
        failures = [(event, error) for event, error in ws.observer_errors if "crashed" in str(error)]
        assert len(failures) == 1 and failures[0][0].user_id == ids[0]  # one error, against the batch's first event
        assert [e.user_id for e in after.events if isinstance(e, UserCreated)] == ids


def test_lifecycle_counts_a_bulk_batch_as_one_order_at_a_time() -> None:
    """record_many's orders move users through the same history as recording them one by one."""
    from datetime import UTC, datetime, timedelta

    from siyu.testing import FakeClock

    def histories(bulk: bool) -> list[list[tuple[Any, ...]]]:
        start = datetime(2026, 5, 1, 9, tzinfo=UTC)
        clock = FakeClock(start + timedelta(days=10))
        with siyu.connect("memory://", clock=clock) as ws:
            ws.products.add("TEA", "Tea", price="10", cost="2", role="profit")
            users = ws.users.add_many([{} for _ in range(3)])
            plan = [users[0], users[1], users[0], users[0], users[2], users[1]]
            rows = [{"user_id": uid, "lines": [{"sku": "TEA", "qty": 1}], "paid_at": start + timedelta(hours=n)}
                    for n, uid in enumerate(plan)]
            if bulk:
                ws.orders.record_many(rows)
            else:
                for row in rows:
                    ws.orders.record(row["user_id"], row["lines"], paid_at=row["paid_at"])
            return [[(c.from_stage, c.to_stage, c.at, c.reason) for c in ws.lifecycle.history(uid)] for uid in users]

    one_by_one = histories(bulk=False)
    assert histories(bulk=True) == one_by_one
    assert [step[1] for step in one_by_one[0]][-2:] == ["customer", "repeat"]
