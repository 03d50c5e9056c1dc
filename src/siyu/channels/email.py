"""``email``: SMTP with STARTTLS or implicit TLS (stdlib ``smtplib``).

One SMTP connection per batch (``limits.max_recipients_per_call`` messages);
each message is its own e-mail to one recipient, so one refused address fails
alone. Outcomes: accepted → sent; 5xx for a recipient → unavailable; 4xx →
failed_retryable; authentication failure → failed_permanent
(``code="auth"``); connection refused or timeout while connecting →
failed_retryable. A timeout *after* DATA was sent is reported as
``failed_permanent`` / ``timeout_unknown`` (the server may have queued it; SMTP
has no way to ask, so a person decides); the messages after it in the batch
were never offered and are failed_retryable.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, ClassVar

from ..errors import ChannelError
from .base import Channel, DeliveryResult, Limits, Message, Option, Status, failure

__all__ = ["EmailChannel"]

SECURITY = ("starttls", "ssl", "none")


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


class EmailChannel(Channel):
    """E-mail over SMTP. Options (or ``SIYU_EMAIL_<OPTION>``): ``host``,
    ``port`` (default 587 for starttls, 465 for ssl, 25 for none),
    ``security`` (``starttls`` | ``ssl`` | ``none``), ``username``,
    ``password``, ``from_addr``, ``from_name``, ``ssl_context`` (code only:
    an ``ssl.SSLContext``, e.g. trusting a private CA).

    The subject is ``Message.subject`` (or the variable ``subject``); the body
    is the rendered text; ``Attachment("file", {"filename", "content", "mime"})``
    attaches bytes.
    """

    name: ClassVar[str] = "email"
    consent_channel: ClassVar[str] = "email"
    limits: ClassVar[Limits] = Limits(max_recipients_per_call=100, max_attachments=10, max_text_length=1_000_000)
    options: ClassVar[dict[str, Option]] = {
        "host": Option(required=True, doc="SMTP server"),
        "port": Option(parse=int, doc="SMTP port"),
        "security": Option(default="starttls", doc="starttls | ssl | none"),
        "username": Option(doc="login user"),
        "password": Option(secret=True, doc="login password"),
        "from_addr": Option(required=True, doc="envelope and From address"),
        "from_name": Option(doc="display name in From"),
        "ssl_context": Option(env=False, doc="an ssl.SSLContext"),
    }

    def _setup(self) -> None:
        if self.config["security"] not in SECURITY:
            from ..errors import ValidationError

            raise ValidationError(f"security must be one of {SECURITY}, got {self.config['security']!r}")

    def _check(self, message: Message) -> list[str]:
        problems = super()._check(message)
        if "@" not in message.recipient or any(c in message.recipient for c in "\r\n <>"):
            problems.append(f"{message.recipient!r} is not an e-mail address")
        if not (message.subject or message.variables.get("subject")):
            problems.append("an e-mail needs subject= (or a 'subject' variable)")
        return problems

    def build(self, message: Message) -> EmailMessage:
        """The ``EmailMessage`` that would be sent."""
        mail = EmailMessage()
        sender = str(self.config["from_addr"])
        mail["From"] = formataddr((str(self.config["from_name"]), sender)) if self.config["from_name"] else sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or message.variables.get("subject", "")
        # The key may hold any characters; a digest keeps the Message-ID well-formed and stable per key.
        idstring = hashlib.sha256(message.key.encode()).hexdigest()[:24] if message.key else None
        mail["Message-ID"] = make_msgid(idstring=idstring, domain=sender.partition("@")[2] or None)
        mail.set_content(self.render(message))
        for attachment in message.attachments:
            data = attachment.data
            content = data.get("content", b"")
            maintype, _, subtype = str(data.get("mime", "application/octet-stream")).partition("/")
            mail.add_attachment(
                content if isinstance(content, bytes) else str(content).encode("utf-8"),
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=str(data.get("filename", "file")),
            )
        return mail

    def _connect(self) -> smtplib.SMTP:
        security = self.config["security"]
        port = self.config["port"] or {"starttls": 587, "ssl": 465, "none": 25}[security]
        host, timeout = str(self.config["host"]), float(self.config["timeout"])
        context = self.config["ssl_context"] or ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, int(port), timeout=timeout, context=context)
            else:
                smtp = smtplib.SMTP(host, int(port), timeout=timeout)
                if security == "starttls":
                    smtp.starttls(context=context)
            if self.config["username"]:
                smtp.login(str(self.config["username"]), str(self.config["password"] or ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(
                f"SMTP login refused ({exc.smtp_code}); check username/password", retryable=False, code="auth"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ChannelError("the SMTP server does not offer STARTTLS/AUTH; check security=", code="config") from None
        except ssl.SSLError as exc:
            raise ChannelError(f"TLS with the SMTP server failed: {exc.reason}", retryable=False, code="tls") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(
                f"could not connect to SMTP {host}:{port} ({type(exc).__name__}); nothing was sent",
                retryable=True,
                code="connect",
            ) from None
        return smtp

    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        smtp = self._connect()
        results: list[DeliveryResult] = []
        try:
            for message in messages:
                if results and results[-1].unknown:
                    # The connection broke during the previous message: the rest were never offered.
                    results.append(DeliveryResult(message, Status.FAILED_RETRYABLE, code="connect",
                                                  detail="not attempted: the SMTP connection was lost before it"))
                    continue
                results.append(self._send_one(smtp, message))
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return results

    def _send_one(self, smtp: Any, message: Message) -> DeliveryResult:
        mail = self.build(message)
        try:
            refused = smtp.send_message(mail, from_addr=str(self.config["from_addr"]), to_addrs=[message.recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return self._refused(message, int(code), text)
        except smtplib.SMTPSenderRefused as exc:
            return failure(
                message,
                ChannelError(
                    f"SMTP refused the sender ({exc.smtp_code})",
                    retryable=400 <= exc.smtp_code < 500,
                    code=exc.smtp_code,
                ),
            )
        except smtplib.SMTPDataError as exc:
            return self._refused(message, exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            return failure(
                message,
                ChannelError(
                    f"SMTP connection lost during the send ({type(exc).__name__}); it may have been queued, "
                    "so it is not retried automatically",
                    retryable=False,
                    code="timeout_unknown",
                ),
            )
        if refused:
            code, text = next(iter(refused.values()))
            return self._refused(message, int(code), text)
        return DeliveryResult(message, Status.SENT, provider_id=str(mail["Message-ID"]))

    @staticmethod
    def _refused(message: Message, code: int, text: bytes | str) -> DeliveryResult:
        detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if 400 <= code < 500:
            return DeliveryResult(message, Status.FAILED_RETRYABLE, code=str(code), detail=detail)
        return DeliveryResult(
            message, Status.UNAVAILABLE if code in (550, 551, 553) else Status.REJECTED, code=str(code), detail=detail
        )
