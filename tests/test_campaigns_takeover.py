"""``resume()`` takes over a claim only when its holder is provably gone.

Real processes on one database (SQLite file and PostgreSQL): sender A is
alive and in the middle of a provider call, sender K claimed a batch and was
killed with SIGKILL, and a third process calls ``resume()`` with the default
arguments. K's claims are taken over; A's are left alone and A completes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import siyu

POSTGRES_URL = os.environ.get("SIYU_TEST_POSTGRES_URL")

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent(
    '''
    import os, time
    from typing import ClassVar
    import siyu
    from siyu.channels import Channel, DeliveryResult, Limits, Status


    class GatedLog(Channel):
        """Non-idempotent (like an SMS gateway): one log line per message. With
        GATE_DIR set, a provider call first says it started (``<tag>.ready``) and
        then waits for ``<tag>.go`` -- a sender frozen in the middle of a call."""
        name: ClassVar[str] = "gated_log"
        consent_channel: ClassVar[str] = "outbox"
        limits: ClassVar[Limits] = Limits(max_recipients_per_call=1000)

        def _deliver(self, messages):
            gate, tag = os.environ.get("GATE_DIR"), os.environ.get("GATE_TAG", "")
            if gate:
                open(os.path.join(gate, tag + ".ready"), "w").close()
                deadline = time.monotonic() + 120
                while not os.path.exists(os.path.join(gate, tag + ".go")) and time.monotonic() < deadline:
                    time.sleep(0.01)
            with open(os.environ["GATE_LOG"], "a") as fh:
                for m in messages:
                    fh.write(f"{m.user_id}\\n")
                fh.flush()
                os.fsync(fh.fileno())
            return [DeliveryResult(m, Status.SENT) for m in messages]


    @siyu.hookimpl
    def siyu_register_channels(register):
        register(GatedLog)
    '''
)

CHILD = textwrap.dedent(
    """
    import sys
    import siyu
    import gate_plugin
    url, campaign, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with siyu.connect(url, plugins=[gate_plugin]) as ws:
        if how == "send":
            ws.campaigns.send(campaign, batch=50)
        else:
            ws.campaigns.resume(campaign, batch=50, limit=50)
    print("finished")
    """
)


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "gate_plugin.py").write_text(PLUGIN)
    (tmp_path / "child.py").write_text(CHILD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("GATE_LOG", str(tmp_path / "sent.log"))
    yield tmp_path
    sys.modules.pop("gate_plugin", None)


def _start(tmp: Path, url: str, campaign_id: int, how: str, tag: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GATE_DIR": str(tmp), "GATE_TAG": tag,
           "PYTHONPATH": os.pathsep.join([str(tmp), *sys.path]), "SIYU_DISABLE_PLUGIN_AUTOLOAD": "1"}
    child = subprocess.Popen([sys.executable, str(tmp / "child.py"), url, str(campaign_id), how],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp / f"{tag}.ready").exists():
        if child.poll() is not None:
            _, err = child.communicate()
            raise AssertionError(f"sender {tag} ended before its provider call: {err.decode()}")
        assert time.monotonic() < deadline, f"sender {tag} never reached its provider call"
        time.sleep(0.01)
    return child


def _claimed_by(ws: siyu.Workspace, campaign_id: int) -> set[int]:
    return {d.user_id for d in ws.campaigns.deliveries(campaign_id, status="pending", limit=10_000)}


def test_resume_takes_over_only_the_dead_senders_claims(plugin_dir: Path, url: str) -> None:
    import gate_plugin  # type: ignore[import-not-found]

    with siyu.connect(url, plugins=[gate_plugin]) as ws:
        ids = ws.users.add_many([{} for _ in range(200)])
        with ws.write():
            for uid in ids:
                ws.users.consent(uid, purpose="marketing", channel="outbox")
        campaign_id = ws.campaigns.create("takeover", audience=ids, channel="gated_log", template="hi",
                                          quiet_hours=None).id

    alive = _start(plugin_dir, url, campaign_id, "send", "alive")  # frozen inside its first provider call
    try:
        with siyu.connect(url, plugins=[gate_plugin]) as ws:
            alive_claims = _claimed_by(ws, campaign_id)
        assert len(alive_claims) == 50
        doomed = _start(plugin_dir, url, campaign_id, "resume", "doomed")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=60)
        with siyu.connect(url, plugins=[gate_plugin]) as ws:
            claimed = _claimed_by(ws, campaign_id)
            assert claimed >= alive_claims  # the doomed sender's resume left the live sender's claims alone
            dead_claims = claimed - alive_claims
            assert len(dead_claims) == 50
            report = ws.campaigns.resume(campaign_id)  # the defaults
            assert report.unknown == 50  # exactly the dead sender's batch, never the live one's
            assert not report.done
            assert _claimed_by(ws, campaign_id) == alive_claims
    finally:
        (plugin_dir / "alive.go").touch()
    _, err = alive.communicate(timeout=120)
    assert alive.returncode == 0, err.decode()

    with siyu.connect(url, plugins=[gate_plugin]) as ws:
        records = {d.user_id: d for d in ws.campaigns.deliveries(campaign_id, limit=10_000)}
        final = ws.campaigns.resume(campaign_id)
    log = Counter(int(line) for line in (plugin_dir / "sent.log").read_text().split())
    assert max(log.values()) == 1
    assert set(log) == set(ids) - dead_claims  # the dead sender never reached its provider
    assert {records[u].status for u in alive_claims} == {"sent"}  # completed by the live sender itself
    assert {records[u].status for u in dead_claims} == {"unknown"}
    assert {records[u].reason for u in dead_claims} == {"outcome_unknown"}
    assert Counter(d.status for d in records.values()) == {"sent": 150, "unknown": 50}
    assert final.done and final.claimed == 0
