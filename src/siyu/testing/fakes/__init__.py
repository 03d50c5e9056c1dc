"""Local fake servers for siyu's channels, speaking the providers' real wire
formats on 127.0.0.1 — so users and plugin authors test offline.

Each is a context manager; point the channel's ``base_url`` at ``fake.url``::

    with FakeWeCom(corp_id="ww1", secret="s") as wecom:
        channel = ws.channels.get("wecom", corp_id="ww1", secret="s", base_url=wecom.url)

Faults are scripted with ``fake.inject(status=503)``, ``inject(delay=1.0)``
(read timeouts), ``inject(drop=True)`` and provider-specific helpers
(``FakeWeCom.fail(path, errcode)``, ``FakeAliyunSms.codes[phone] = code``).
"""

from ._server import FakeHttpServer, Fault, Request
from .miniprogram import FakeMiniProgram
from .sms import FakeAliyunSms, FakeTencentSms
from .smtp import FakeSmtp, self_signed_context
from .webhook import WebhookReceiver
from .wecom import FakeWeCom
from .wecom_scrm import FakeWeComGroups, FakeWeComScrm
from .wecom_sender import FakeWeComCallbackSender

__all__ = [
    "FakeAliyunSms",
    "FakeHttpServer",
    "FakeMiniProgram",
    "FakeSmtp",
    "FakeTencentSms",
    "FakeWeCom",
    "FakeWeComCallbackSender",
    "FakeWeComGroups",
    "FakeWeComScrm",
    "Fault",
    "Request",
    "WebhookReceiver",
    "self_signed_context",
]
