"""A campaign killed (SIGKILL) at a random point and resumed delivers exactly once.

A child process runs the campaign on an SQLite file through a slow channel
plugin; the parent kills it mid-run, then resumes the campaign itself.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import siyu

PLUGIN = textwrap.dedent(
    '''
    import os, time
    from typing import ClassVar
    import siyu
    from siyu.channels import Channel, DeliveryResult, Limits, Status
    from siyu.channels.outbox import OutboxChannel

    READY = os.environ.get("CRASH_READY", "")


    def _ready():
        if READY and not os.path.exists(READY):
            with open(READY, "w") as fh:
                fh.write("go")


    class SlowOutbox(OutboxChannel):
        """An outbox (de-duplicates on the key) that stores 10 messages per call, slowly."""
        name: ClassVar[str] = "slow_outbox"
        limits: ClassVar[Limits] = Limits(max_recipients_per_call=10, max_attachments=0)

        def _deliver(self, messages):
            _ready()
            time.sleep(0.01)
            return super()._deliver(messages)


    class SlowLog(Channel):
        """A non-idempotent channel: appends one line per message to a file (like an SMS gateway)."""
        name: ClassVar[str] = "slow_log"
        consent_channel: ClassVar[str] = "outbox"
        limits: ClassVar[Limits] = Limits(max_recipients_per_call=10)

        def _deliver(self, messages):
            _ready()
            time.sleep(0.01)
            with open(os.environ["CRASH_LOG"], "a") as fh:
                for m in messages:
                    fh.write(f"{m.user_id}\\n")
                fh.flush()
                os.fsync(fh.fileno())
            return [DeliveryResult(m, Status.SENT) for m in messages]


    @siyu.hookimpl
    def siyu_register_channels(register):
        register(SlowOutbox)
        register(SlowLog)
    '''
)

CHILD = textwrap.dedent(
    """
    import sys
    import siyu
    import crash_plugin
    ws = siyu.connect(sys.argv[1], plugins=[crash_plugin])
    ws.campaigns.send(int(sys.argv[2]), batch=int(sys.argv[3]))
    print("finished")
    """
)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "crash_plugin.py").write_text(PLUGIN)
    (tmp_path / "child.py").write_text(CHILD)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("crash_plugin", None)


def _run_and_kill(tmp: Path, url: str, campaign_id: int, batch: int, delay: float) -> bool:
    """Start the child, wait until it sends, kill it after ``delay`` s; True if it was killed mid-run."""
    ready = tmp / "ready"
    ready.unlink(missing_ok=True)
    env = {**os.environ, "CRASH_READY": str(ready), "CRASH_LOG": str(tmp / "sent.log"),
           "PYTHONPATH": os.pathsep.join([str(tmp), *sys.path]), "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"}
    child = subprocess.Popen([sys.executable, str(tmp / "child.py"), url, str(campaign_id), str(batch)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    killed = child.poll() is None
    if killed:
        os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=60)
    if not killed:
        _, err = child.communicate()
        assert child.returncode == 0, err.decode()
    return killed


def _setup(url: str, channel: str, n: int) -> tuple[int, set[int]]:
    import crash_plugin

    with siyu.connect(url, plugins=[crash_plugin]) as ws:
        ids = ws.users.add_many([{} for _ in range(n)])
        rng = random.Random(n)
        eligible = {uid for uid in ids if rng.random() < 0.8}
        with ws.write():
            for uid in eligible:
                ws.users.consent(uid, purpose="marketing", channel="outbox")
        c = ws.campaigns.create("crash", audience=ids, channel=channel, template="hi ${user_id}",
                                quiet_hours=None)
        return c.id, eligible


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_mid_run_and_resumed_delivers_exactly_once(plugin_dir: Path, seed: int) -> None:
    url = f"sqlite:///{plugin_dir / f'shop{seed}.db'}"
    campaign_id, eligible = _setup(url, "slow_outbox", 300)
    rng = random.Random(seed)
    killed = _run_and_kill(plugin_dir, url, campaign_id, batch=rng.choice([7, 50, 300]), delay=rng.uniform(0, 0.15))
    import crash_plugin

    with siyu.connect(url, plugins=[crash_plugin]) as ws:
        if killed:
            before = Counter(d.status for d in ws.campaigns.deliveries(campaign_id, limit=10_000))
            assert before.get("sent", 0) < len(eligible)  # it really died part-way
        ws.campaigns.resume(campaign_id, recover_after=timedelta(0))
        ws.campaigns.resume(campaign_id, recover_after=timedelta(0))  # a second resume sends nothing
        records = ws.campaigns.deliveries(campaign_id, limit=10_000)
        stored = Counter(m.user_id for m in ws.channels.get("slow_outbox").iter_messages())  # type: ignore[attr-defined]
    assert stored == {uid: 1 for uid in eligible}
    assert {r.user_id for r in records if r.status == "sent"} == eligible
    assert {r.status for r in records if r.user_id not in eligible} == {"skipped"}
    assert len(records) == 300


def test_non_idempotent_channel_is_never_resent_blindly(plugin_dir: Path) -> None:
    url = f"sqlite:///{plugin_dir / 'log.db'}"
    campaign_id, eligible = _setup(url, "slow_log", 300)
    assert _run_and_kill(plugin_dir, url, campaign_id, batch=60, delay=0.05)
    import crash_plugin

    os.environ["CRASH_LOG"] = str(plugin_dir / "sent.log")
    try:
        with siyu.connect(url, plugins=[crash_plugin]) as ws:
            ws.campaigns.resume(campaign_id, recover_after=timedelta(0))
            records = ws.campaigns.deliveries(campaign_id, limit=10_000)
    finally:
        os.environ.pop("CRASH_LOG", None)
    log = Counter(int(line) for line in (plugin_dir / "sent.log").read_text().split())
    assert max(log.values()) == 1  # nobody got it twice
    status = {r.user_id: r.status for r in records}
    assert {u for u, s in status.items() if s == "sent"} <= set(log)
    assert {s for u, s in status.items() if u in eligible} <= {"sent", "unknown"}
    unknown = {u for u, s in status.items() if s == "unknown"}
    assert unknown  # the batch in flight when it died is left for review
    assert eligible == {u for u, s in status.items() if s == "sent"} | unknown
