"""Serve the WeCom callback URL with the stdlib WSGI server (wsgiref).

Run it for real (set the app's credentials and callback settings first)::

    export SIYU_WECOM_CORP_ID=ww... SIYU_WECOM_SECRET=... \
           SIYU_WECOM_TOKEN=... SIYU_WECOM_ENCODING_AES_KEY=...
    python examples/wecom_callback_app.py --serve --db sqlite:///shop.db --port 8080

and enter ``https://<your host>/wecom/callback`` as the callback URL in the
WeCom admin console (behind a TLS-terminating proxy). The handler answers
WeCom at once and a worker thread processes the queued events (create or
update the customer, apply the contact way's tags, send the welcome message
within 20 s, mark deleted customers lost).

Without ``--serve`` it runs a self-check: it starts the app on a free local
port, replays the project's encrypted ``add_external_contact`` fixture
against it (plus a forged copy) through real HTTP, and prints what happened,
with the WeCom API itself played by :class:`siyu.testing.fakes.FakeWeCom`.
"""

from __future__ import annotations

import argparse
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import siyu
from siyu.channels.wecom import WeComCallbacks

FIXTURE = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "channels" / "wecom_change_external_contact.txt"
)


def make_app(callbacks: WeComCallbacks, path: str = "/wecom/callback") -> Any:
    """A WSGI app: the callback handler on ``path``, 404 elsewhere."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != path:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        return callbacks.wsgi(environ, start_response)

    return app


def worker(callbacks: WeComCallbacks, stop: threading.Event, interval: float = 0.2) -> None:
    """Process queued events soon after they were acknowledged."""
    while not stop.is_set():
        for event_id, outcome in callbacks.process_pending():
            print(f"processed {event_id}: {outcome}", flush=True)
        stop.wait(interval)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(db: str, port: int) -> None:
    ws = siyu.connect(db)
    callbacks = ws.wecom.callbacks(welcome="欢迎关注！回复「会员」领取新人礼")
    stop = threading.Event()
    threading.Thread(target=worker, args=(callbacks, stop), daemon=True).start()
    with make_server("0.0.0.0", port, make_app(callbacks)) as httpd:
        print(f"WeCom callback URL served on :{port}/wecom/callback")
        try:
            httpd.serve_forever()
        finally:
            stop.set()


def self_check() -> None:
    from siyu.testing import FakeClock
    from siyu.testing.fakes import FakeWeCom

    fx = dict(
        line.split("=", 1) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
    )
    clock = FakeClock(datetime.fromtimestamp(int(fx["timestamp"]) + 2, UTC))
    with (
        FakeWeCom(corp_id=fx["receiveid"], secret="app-secret", clock=clock) as api,
        siyu.connect("memory://", clock=clock) as ws,
    ):
        api.issue_welcome_code("WELCOMECODE", at=int(fx["timestamp"]))  # the code in the fixture's event
        ws.channels.get(  # configures the workspace's wecom channel, which ws.wecom works through
            "wecom",
            corp_id=fx["receiveid"],
            secret="app-secret",
            base_url=api.url,
            token=fx["token"],
            encoding_aes_key=fx["encoding_aes_key"],
        )
        ws.wecom.add_contact_way(state="teststate", user=["zhangsan"], tags=["source/门店海报"], welcome="欢迎光临！")
        callbacks = ws.wecom.callbacks()
        stop = threading.Event()
        httpd = make_server("127.0.0.1", 0, make_app(callbacks), handler_class=QuietHandler)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/wecom/callback?"
        try:
            for label, query in (("genuine", fx["query"]), ("forged", fx["query"].replace(fx["nonce"], "1"))):
                request = urllib.request.Request(url + query, data=fx["post_body"].encode(), method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        print(f"{label}: HTTP {response.status} {response.read().decode()}")
                except urllib.error.HTTPError as exc:
                    print(f"{label}: HTTP {exc.code}")
            worker_thread = threading.Thread(target=worker, args=(callbacks, stop, 0.01), daemon=True)
            worker_thread.start()
            deadline = time.monotonic() + 5
            while callbacks.pending and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set()
            worker_thread.join()
        finally:
            httpd.shutdown()
            httpd.server_close()
        user = ws.users.find(wecom_external_userid="woAJ2GCAAAXtWyujaWJHDDGi0mAAAA")
        assert user is not None, "the add_external_contact event should have created the customer"
        print(f"user {user.id}: state={user.source_state} tags={sorted(ws.tags.of(user.id))}")
        print(f"welcome messages sent: {len(api.welcomes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve for real instead of the self-check")
    parser.add_argument("--db", default="sqlite:///shop.db")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.serve:
        serve(args.db, args.port)
    else:
        self_check()


if __name__ == "__main__":
    main()
