"""OpenTelemetry traces, metrics and log correlation for a workspace (``pip install 'siyu[otel]'``).

Turn it on per workspace by passing the plugin to :func:`siyu.connect`::

    import siyu
    from siyu.otel import Telemetry

    ws = siyu.connect("postgresql://...", plugins=[Telemetry()])
    # or by name (settings files, siyu worker): plugins=["siyu.otel"]

It uses the global tracer and meter providers your application configured
(``opentelemetry.trace.set_tracer_provider`` ...), or the ones you pass.
Without the plugin nothing is wrapped and OpenTelemetry is never imported.

What it records:

Spans
    one per public service call your code makes (``points.earn``,
    ``orders.record``, ``referrals.tasks.create`` ...; the calls siyu makes
    inside it are part of it) and one per channel send (``channel.send``, a
    child of the call that sent). Attributes:
    ``siyu.service``, ``siyu.operation``, ``siyu.channel``, ``siyu.messages``
    (a count), ``siyu.outcome`` (``ok`` / ``error``; for sends ``sent``,
    ``partial``, ``failed``) and ``error.type`` (the exception class). Never
    arguments, results or exception messages: they carry phones, openids and
    names.
Metrics
    ``siyu.operation.duration`` (s, by service, operation, outcome);
    ``siyu.messages.sent`` and ``siyu.messages.failed`` (by channel; failed
    also by ``status`` and ``reason``, the provider's or siyu's code, e.g.
    ``timeout_unknown``); ``siyu.points.issued`` and ``siyu.points.spent``
    (points, counted by the process whose write committed them, whatever the
    delivery mode);
    ``siyu.campaign.deliveries`` (by campaign id and outcome: sent, failed,
    skipped, deferred, unknown, from each send, resume, roll-out and
    run-due); ``siyu.event_log.lag`` and ``siyu.event_log.parked`` (gauges by
    consumer, read from the database when the metrics are collected).
Logs
    every log record gets ``otelTraceID``, ``otelSpanID`` and
    ``otelTraceSampled`` attributes (the names OpenTelemetry's logging
    instrumentation uses), so ``%(otelTraceID)s`` in a log format ties a
    line of ``siyu`` logging to its trace.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .errors import PluginError
from .events import PointsEarned, PointsSpent
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .channels.base import DeliveryResult, Message
    from .events import Event
    from .workspace import Workspace

__all__ = ["Telemetry"]

#: Workspace attributes that are not services (configuration, machinery).
_NOT_SERVICES = frozenset({"pm", "hooks", "backends", "channel_classes", "url", "backend", "clock", "tz",
                           "observer_errors", "send_observer"})
#: Methods that are the internals of another call, not calls of their own (every write asks
#: the event log for its handlers and sinks; users.merge calls each domain's merge).
_NOT_OPERATIONS = frozenset({"merge", "unmerge", "event_log.handlers", "event_log.sinks"})
#: Seconds: service calls take milliseconds, a slow one a few seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_INSTRUMENTED = "_siyu_otel_instrumented"
#: Whether this thread (or task) is inside a traced siyu call already.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("siyu_otel_inside", default=False)


def _otel() -> Any:
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        raise PluginError("siyu.otel needs OpenTelemetry: pip install 'siyu[otel]'") from None
    return trace, metrics


class Telemetry:
    """The plugin that instruments one workspace (see the module docstring).

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's
    global ones. ``services=False`` leaves service calls without spans
    (channel sends and metrics stay). One instance serves one workspace:
    create one per :func:`siyu.connect`.
    """

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None, services: bool = True) -> None:
        trace, metrics = _otel()
        from . import __version__

        self._tracer = trace.get_tracer("siyu", __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter("siyu", __version__, meter_provider=meter_provider)
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR
        self._services = services
        self._workspace: weakref.ref[Workspace] | None = None
        self._duration = meter.create_histogram(
            "siyu.operation.duration", unit="s", description="Duration of public siyu service calls",
            explicit_bucket_boundaries_advisory=list(_BUCKETS))
        self._sent = meter.create_counter(
            "siyu.messages.sent", unit="{message}", description="Messages a channel delivered")
        self._failed = meter.create_counter(
            "siyu.messages.failed", unit="{message}",
            description="Messages a channel did not deliver, by status and reason (timeout_unknown: outcome unknown)")
        self._issued = meter.create_counter("siyu.points.issued", unit="{point}", description="Points earned")
        self._spent = meter.create_counter("siyu.points.spent", unit="{point}", description="Points spent")
        self._deliveries = meter.create_counter(
            "siyu.campaign.deliveries", unit="{delivery}", description="Campaign deliveries handled, by outcome")
        meter.create_observable_gauge(
            "siyu.event_log.lag", callbacks=[self._observe_lag], unit="{event}",
            description="Logged events a consumer has not handled yet")
        meter.create_observable_gauge(
            "siyu.event_log.parked", callbacks=[self._observe_parked], unit="1",
            description="1 when a consumer stopped after repeated failures and waits for a person")
        install_log_correlation()

    # -- plugin hooks --------------------------------------------------------------------
    @hookimpl
    def siyu_workspace_opened(self, workspace: Workspace) -> None:
        if self._workspace is not None and self._workspace() is not workspace:
            raise PluginError("a siyu.otel.Telemetry instance serves one workspace; create one per siyu.connect()")
        self._workspace = weakref.ref(workspace)
        workspace.send_observer = self
        workspace.commit_observer = self.committed
        if self._services:
            for path, service in _services(workspace):
                self._instrument(path, service)

    def committed(self, events: Sequence[Event]) -> None:
        """Count the points of a committed write (``ws.commit_observer``): in the writing
        process, at no cost to the database (an event-log consumer would add a delivery
        round to every earn)."""
        issued = sum(e.amount for e in events if isinstance(e, PointsEarned))
        spent = sum(e.amount for e in events if isinstance(e, PointsSpent))
        if issued:
            self._issued.add(issued)
        if spent:
            self._spent.add(spent)

    # -- spans -------------------------------------------------------------------------------
    def _instrument(self, service: str, target: object) -> None:
        if getattr(target, _INSTRUMENTED, False):
            return
        if not hasattr(target, "__dict__"):
            return
        for operation, member in inspect.getmembers(type(target), callable):
            if (operation.startswith("_") or operation in _NOT_OPERATIONS or f"{service}.{operation}" in _NOT_OPERATIONS
                    or inspect.isclass(member)):
                continue
            setattr(target, operation, self._traced(service, operation, getattr(target, operation)))
        setattr(target, _INSTRUMENTED, True)

    def _traced(self, service: str, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        name = f"{service}.{operation}"
        labels = {"siyu.service": service, "siyu.operation": operation}
        ok, failed = {**labels, "siyu.outcome": "ok"}, {**labels, "siyu.outcome": "error"}
        tracer, duration, progress = self._tracer, self._duration, service == "campaigns"

        def traced(*args: Any, **kwargs: Any) -> Any:
            if _inside.get():
                # A call siyu makes inside another is part of that one's span: a span
                # costs about as much as a fast SQLite read, and earn -> earn_many says nothing.
                result = method(*args, **kwargs)
                if progress:
                    self._campaign_progress(result)
                return result
            started = time.perf_counter()
            token = _inside.set(True)
            try:
                with tracer.start_as_current_span(name, attributes=labels, record_exception=False,
                                                  set_status_on_exception=False) as span:
                    try:
                        result = method(*args, **kwargs)
                    except BaseException as exc:
                        # The class only: exception messages name people, phones and ids.
                        kind = type(exc).__name__
                        span.set_attributes({"siyu.outcome": "error", "error.type": kind})
                        span.set_status(self._status(self._error, kind))
                        duration.record(time.perf_counter() - started, failed)
                        raise
                    span.set_attribute("siyu.outcome", "ok")
            finally:
                _inside.reset(token)
            duration.record(time.perf_counter() - started, ok)
            if progress:
                self._campaign_progress(result)
            return result

        traced.__wrapped__ = method  # type: ignore[attr-defined]
        traced.__doc__ = method.__doc__
        traced.__name__ = operation
        return traced

    def send(
        self, channel: str, batch: Sequence[Message], deliver: Callable[[], list[DeliveryResult]]
    ) -> list[DeliveryResult]:
        """Trace one channel send and count its results (``ws.send_observer``)."""
        labels = {"siyu.channel": channel, "siyu.operation": "send"}
        with self._tracer.start_as_current_span("channel.send", attributes={**labels, "siyu.messages": len(batch)},
                                                record_exception=False, set_status_on_exception=False) as span:
            try:
                results = deliver()
            except BaseException as exc:
                kind = type(exc).__name__
                span.set_attributes({"siyu.outcome": "error", "error.type": kind})
                span.set_status(self._status(self._error, kind))
                raise
            sent = sum(1 for r in results if r.ok)
            outcome = "sent" if sent == len(results) else "failed" if sent == 0 else "partial"
            span.set_attributes({"siyu.outcome": outcome, "siyu.sent": sent})
        if sent:
            self._sent.add(sent, {"siyu.channel": channel})
        for result in results:
            if not result.ok:
                self._failed.add(1, {"siyu.channel": channel, "siyu.status": str(result.status),
                                     "siyu.reason": str(result.code or result.status)})
        return results

    # -- metrics read when collected -------------------------------------------------------------
    def _campaign_progress(self, result: Any) -> None:
        from .campaigns.models import RunReport

        reports = result if isinstance(result, list) else [result]
        for report in reports:
            if not isinstance(report, RunReport):
                continue
            for outcome in ("sent", "failed", "skipped", "deferred", "unknown"):
                count = getattr(report, outcome)
                if count:
                    self._deliveries.add(count, {"siyu.campaign": str(report.campaign_id), "siyu.outcome": outcome})

    def _consumers(self) -> list[Any]:
        ws = self._workspace() if self._workspace is not None else None
        if ws is None:
            return []
        try:
            consumers = ws.event_log.consumers
            # The unwrapped call: a metrics scrape is not a siyu call worth a span.
            return list(getattr(consumers, "__wrapped__", consumers)())
        except Exception as exc:  # a closed workspace, a database away: a missing sample, not a crash
            logging.getLogger("siyu.otel").debug("event log consumers not read: %r", exc)
            return []

    def _observe_lag(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        for c in self._consumers():
            yield Observation(c.lag, {"siyu.consumer": c.name})

    def _observe_parked(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        for c in self._consumers():
            yield Observation(int(c.parked), {"siyu.consumer": c.name})


def _services(workspace: Workspace) -> Iterable[tuple[str, object]]:
    """``(dotted path, service)`` for each service of the workspace and the services they hold."""
    top = [(name, value) for name, value in vars(workspace).items()
           if not name.startswith("_") and name not in _NOT_SERVICES and type(value).__module__.startswith("siyu.")]
    yield from top
    # Then the services they hold (ws.referrals.tasks ...); one already listed keeps its own name.
    for name, value in top:
        for sub, inner in vars(value).items():
            if not sub.startswith("_") and type(inner).__module__.startswith("siyu.") and hasattr(inner, "_uow"):
                yield f"{name}.{sub}", inner


@hookimpl
def siyu_workspace_opened(workspace: Workspace) -> None:
    """``plugins=["siyu.otel"]``: a :class:`Telemetry` on the global providers for this workspace."""
    telemetry = Telemetry()
    workspace.pm.register(telemetry, name="siyu.otel.Telemetry")
    telemetry.siyu_workspace_opened(workspace)


_factory_installed = False


def install_log_correlation() -> None:
    """Give every log record the current trace and span ids (once per process; also called by
    :class:`Telemetry`). Records outside a span get zeros."""
    global _factory_installed
    if _factory_installed:
        return
    trace, _ = _otel()
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        record.otelTraceID = format(context.trace_id, "032x")
        record.otelSpanID = format(context.span_id, "016x")
        record.otelTraceSampled = context.trace_flags.sampled
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
