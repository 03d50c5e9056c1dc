"""A real HTTP server on 127.0.0.1 for fakes, with fault injection."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

__all__ = ["Clock", "FakeHttpServer", "Fault", "Request", "unix_time"]

Clock = Callable[[], "float | datetime"]
"""A fake's clock: returns Unix seconds or an aware ``datetime`` (``siyu.testing.FakeClock``)."""


def unix_time(clock: Clock | None) -> float:
    """Now by ``clock`` (real time when ``None``), in Unix seconds."""
    if clock is None:
        return time.time()
    value = clock()
    return value.timestamp() if isinstance(value, datetime) else float(value)


@attrs.frozen
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


@attrs.frozen
class Fault:
    """A scripted failure for the next matching request.

    ``status``: answer with this HTTP status (and ``body``); ``delay``: sleep
    this long before answering (makes client read timeouts); ``drop``: close
    the connection without an answer; ``json``: answer 200 with this object.
    ``path`` limits it to requests whose path ends with it. ``process=True``
    first handles the request as usual (the message is created) and then
    answers with the fault instead: a provider that did the work but whose
    answer got lost or garbled.
    """

    path: str = ""
    status: int | None = None
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    drop: bool = False
    json: Any = None
    process: bool = False


Response = tuple[int, Mapping[str, str], bytes]


class FakeHttpServer:
    """Base of the fake provider servers: subclasses implement :meth:`respond`.

    Use as a context manager (``with FakeWeCom() as wecom: ... wecom.url``).
    ``requests`` records everything received; :meth:`inject` scripts faults.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeHttpServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                fault = fake._take_fault(request)
                with fake._lock:
                    fake.requests.append(request)
                    if fault is not None and fault.process:
                        fake.respond(request)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                status: int
                headers: Mapping[str, str]
                payload: bytes
                if fault is not None and fault.status is not None:
                    status, headers, payload = fault.status, dict(fault.headers), fault.body
                elif fault is not None and fault.json is not None:
                    status, headers, payload = 200, {"Content-Type": "application/json"}, _dump(fault.json)
                else:
                    early = fake.admit(request)  # outside the lock, so calls can be in flight together
                    try:
                        if early is not None:
                            status, headers, payload = early
                        else:
                            with fake._lock:
                                status, headers, payload = fake.respond(request)
                    finally:
                        fake.release(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that timed out and hung up is expected in fault tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- faults -------------------------------------------------------------------------
    def inject(self, fault: Fault | None = None, /, **kwargs: Any) -> None:
        """Queue a fault for the next matching request (``inject(status=503)``)."""
        with self._lock:
            self._faults.append(fault or Fault(**kwargs))

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if request.path.endswith(fault.path):
                    self._faults.remove(fault)
                    return fault
        return None

    def calls(self, path_suffix: str) -> list[Request]:
        """Recorded requests whose path ends with ``path_suffix``."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(path_suffix)]

    # -- subclass API ---------------------------------------------------------------------
    def admit(self, request: Request) -> Response | None:
        """Called before :meth:`respond`, outside the server's lock (calls may overlap here):
        an answer to give instead (a concurrency cap), or ``None`` to go on."""
        return None

    def release(self, request: Request) -> None:
        """Called once the request admitted by :meth:`admit` has its answer."""

    def respond(self, request: Request) -> Response:
        raise NotImplementedError


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def json_response(value: Any, status: int = 200) -> Response:
    return status, {"Content-Type": "application/json; charset=utf-8"}, _dump(value)


Handler = Callable[[Request], Response]
