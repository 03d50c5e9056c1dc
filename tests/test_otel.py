"""siyu.otel: spans, metrics and log correlation, read back through the SDK's in-memory exporters."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import siyu
from siyu.channels import Message
from siyu.errors import InsufficientPoints, NotFound, PluginError
from siyu.otel import Telemetry
from siyu.testing import FakeClock, RecordingChannel

PHONE, EMAIL, OPENID, NAME = "+8613800138000", "li.lei@example.cn", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "李雷"


class Readings:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def points(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name -> [(attributes, value)] (value: sum or gauge value, or a histogram's count)."""
        out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for p in metric.data.data_points:
                        value = getattr(p, "value", None)
                        out.setdefault(metric.name, []).append((dict(p.attributes or {}), value
                                                                if value is not None else p.count))
        return out

    def total(self, metric: str, **labels: str) -> Any:
        return sum(v for a, v in self.points().get(metric, []) if all(a.get(k) == x for k, x in labels.items()))


@pytest.fixture
def otel() -> Readings:
    return Readings()


@pytest.fixture
def ws(otel: Readings, tmp_path: Any) -> Iterator[siyu.Workspace]:
    telemetry = Telemetry(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    with siyu.connect(f"sqlite:///{tmp_path / 'shop.db'}", plugins=[telemetry], clock=FakeClock()) as workspace:
        yield workspace


def person(ws: siyu.Workspace) -> int:
    return ws.users.add(phone=PHONE, email=EMAIL, wechat_openid=OPENID, app="wx5d3c0f7e", attributes={"name": NAME}).id


def test_service_calls_are_spans_with_service_operation_and_outcome(ws: siyu.Workspace, otel: Readings) -> None:
    uid = person(ws)
    ws.points.earn(uid, 100, reason="signin", key="k1")
    with pytest.raises(InsufficientPoints):
        ws.points.spend(uid, 1_000, reason="mall", key="k2")
    earn = otel.named("points.earn")
    assert len(earn) == 1
    assert earn[0].attributes == {"siyu.service": "points", "siyu.operation": "earn", "siyu.outcome": "ok"}
    (spend,) = otel.named("points.spend")
    assert spend.attributes is not None
    assert spend.attributes["siyu.outcome"] == "error"
    assert spend.attributes["error.type"] == "InsufficientPoints"
    assert spend.status.description == "InsufficientPoints"  # never the message: it may name the person
    assert spend.events == ()  # no recorded exception either (its message and traceback)
    assert otel.total("siyu.operation.duration", **{"siyu.operation": "spend", "siyu.outcome": "error"}) == 1


def test_one_span_per_call_of_the_caller_with_sends_as_children(ws: siyu.Workspace, otel: Readings) -> None:
    uid = person(ws)
    ws.users.consent(uid, purpose="marketing", channel="recording")
    ws.channels.install(RecordingChannel())
    assert hasattr(ws.referrals.tasks.create, "__wrapped__")  # a nested service, under its own path
    ws.points_rules.award("signin", uid, key="day1")  # calls points and tiers inside
    otel.spans.clear()
    tracer = otel.tracer_provider.get_tracer("shop")
    with tracer.start_as_current_span("POST /campaigns") as request:
        c = ws.campaigns.create("c", audience=[uid], channel="recording", template="hi")
        ws.campaigns.send(c.id)
    names = [s.name for s in otel.finished()]
    assert names.count("campaigns.send") == 1 and "channel.send" in names
    (send,) = otel.named("campaigns.send")
    (channel,) = otel.named("channel.send")
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert channel.parent is not None and channel.parent.span_id == send.context.span_id
    assert set(names) == {"campaigns.create", "campaigns.send", "channel.send", "POST /campaigns"}


def test_channel_sends_are_spans_and_counted_by_channel_and_reason(ws: siyu.Workspace, otel: Readings) -> None:
    uid = person(ws)
    channel = ws.channels.install(RecordingChannel())
    channel.send([Message(PHONE, text=f"{NAME}, 您好", user_id=uid), Message(EMAIL)])  # the second has no text
    (span,) = otel.named("channel.send")
    assert span.attributes == {"siyu.channel": "recording", "siyu.operation": "send", "siyu.messages": 2,
                               "siyu.outcome": "partial", "siyu.sent": 1}
    assert otel.total("siyu.messages.sent", **{"siyu.channel": "recording"}) == 1
    failed = otel.points()["siyu.messages.failed"]
    assert failed == [({"siyu.channel": "recording", "siyu.status": "failed_permanent", "siyu.reason": "invalid"}, 1)]


def test_points_issued_and_spent_are_counted(ws: siyu.Workspace, otel: Readings) -> None:
    uid = person(ws)
    ws.points.earn(uid, 300, reason="signin", key="a")
    ws.points.earn_many([{"user_id": uid, "amount": 20, "reason": "bonus", "key": f"b{i}"} for i in range(5)])
    ws.points.spend(uid, 150, reason="mall", key="c")
    assert otel.total("siyu.points.issued") == 400
    assert otel.total("siyu.points.spent") == 150


def test_event_log_lag_and_parked_per_consumer(otel: Readings, tmp_path: Any) -> None:
    telemetry = Telemetry(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    url = f"sqlite:///{tmp_path / 'w.db'}"
    with siyu.connect(url, plugins=[telemetry], delivery="worker") as ws:
        uid = person(ws)
        for i in range(3):
            ws.points.earn(uid, 1, reason="signin", key=f"k{i}")
        lag = {a["siyu.consumer"]: v for a, v in otel.points()["siyu.event_log.lag"]}
        assert lag and max(lag.values()) >= 4  # the user and three earns wait for `siyu worker`
        assert {v for _, v in otel.points()["siyu.event_log.parked"]} == {0}
        while ws.event_log.deliver():
            pass
        lag = {a["siyu.consumer"]: v for a, v in otel.points()["siyu.event_log.lag"]}
        assert set(lag.values()) == {0}
    assert "siyu.event_log.lag" not in otel.points()  # a closed workspace reports nothing


def test_campaign_progress_is_counted_by_outcome(ws: siyu.Workspace, otel: Readings) -> None:
    ws.channels.install(RecordingChannel())
    ids = ws.users.add_many([{"attributes": {"name": f"用户{i}"}} for i in range(4)])
    for uid in ids[:3]:
        ws.users.consent(uid, purpose="marketing", channel="recording")
    c = ws.campaigns.create("双11", audience=ids, channel="recording", template="你好 ${name}")
    ws.campaigns.send(c.id)
    sent = otel.total("siyu.campaign.deliveries", **{"siyu.campaign": str(c.id), "siyu.outcome": "sent"})
    skipped = otel.total("siyu.campaign.deliveries", **{"siyu.campaign": str(c.id), "siyu.outcome": "skipped"})
    assert (sent, skipped) == (3, 1)


def test_no_personal_data_in_any_span_attribute_or_metric_label(ws: siyu.Workspace, otel: Readings) -> None:
    uid = person(ws)
    ws.users.consent(uid, purpose="marketing", channel="recording")
    ws.channels.install(RecordingChannel())
    ws.points.earn(uid, 50, reason=f"给{NAME}的奖励", key=f"key-{PHONE}")
    ws.users.get(uid)
    ws.users.find(phone=PHONE)
    with pytest.raises(NotFound):
        ws.users.get(uid + 999)
    ws.tags.apply(uid, f"{NAME}-vip")
    ws.channels.get("recording").send(Message(OPENID, text=f"{NAME} {PHONE} {EMAIL}", user_id=uid))
    c = ws.campaigns.create("c", audience=[uid], channel="recording", template="你好 ${name}")
    ws.campaigns.send(c.id)
    seen: list[str] = []
    for span in otel.finished():
        seen.append(span.name)
        seen.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        seen.append(span.status.description or "")
        seen.extend(str(e.attributes) for e in span.events)
    for name, rows in otel.points().items():
        seen.append(name)
        seen.extend(f"{k}={v}" for attrs_, _ in rows for k, v in attrs_.items())
    assert len(otel.finished()) > 10
    text = "\n".join(seen)
    for secret in (PHONE, PHONE[3:], EMAIL, OPENID, NAME):
        assert secret not in text


def test_log_records_carry_the_trace_id(ws: siyu.Workspace, otel: Readings, caplog: pytest.LogCaptureFixture) -> None:
    tracer = otel.tracer_provider.get_tracer("shop")
    with caplog.at_level(logging.INFO, logger="siyu"), tracer.start_as_current_span("checkout") as span:
        logging.getLogger("siyu.channels").info("inside")
    record = next(r for r in caplog.records if r.getMessage() == "inside")
    assert record.otelTraceID == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
    assert record.otelSpanID == format(span.get_span_context().span_id, "016x")  # type: ignore[attr-defined]
    logging.getLogger("siyu").warning("outside")
    outside = next(r for r in caplog.records if r.getMessage() == "outside")
    assert outside.otelTraceID == "0" * 32  # type: ignore[attr-defined]


def test_by_name_it_uses_the_global_providers() -> None:
    with siyu.connect("memory://", plugins=["siyu.otel"]) as ws:
        assert isinstance(ws.send_observer, Telemetry)
        assert hasattr(ws.points.earn, "__wrapped__")
        assert ws.users.add(phone=PHONE)


def test_one_instance_serves_one_workspace(otel: Readings) -> None:
    telemetry = Telemetry(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    with siyu.connect("memory://", plugins=[telemetry]), pytest.raises(PluginError, match=r"one per siyu\.connect"):
        siyu.connect("memory://", plugins=[telemetry])


def test_without_the_plugin_opentelemetry_is_not_even_imported() -> None:
    code = ("import sys, siyu; ws = siyu.connect('memory://'); ws.users.add(phone='13800138000'); "
            "print(ws.send_observer, hasattr(ws.points.earn, '__wrapped__'), "
            "any(m.startswith('opentelemetry') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["None", "False", "False"]


def test_siyu_aio_calls_are_children_of_the_request_span(ws: siyu.Workspace, otel: Readings) -> None:
    pytest.importorskip("anyio")
    import asyncio

    from siyu.aio import AsyncWorkspace

    uid = person(ws)
    aws = AsyncWorkspace(ws)
    tracer = otel.tracer_provider.get_tracer("shop")

    async def request(n: int) -> None:
        with tracer.start_as_current_span(f"GET /member/{n}"):
            await aws.points.balance(uid)

    async def main() -> None:
        await asyncio.gather(*(request(n) for n in range(8)))

    asyncio.run(main())
    requests = {s.context.span_id: s.name for s in otel.finished() if s.name.startswith("GET")}
    balances = otel.named("points.balance")
    assert len(balances) == 8  # one each, run in worker threads: the context went with them
    assert {requests[s.parent.span_id] for s in balances if s.parent is not None} == set(requests.values())
