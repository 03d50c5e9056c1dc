"""A local SMTP server (aiosmtpd) for testing the e-mail channel."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import Message as MimeMessage
from typing import Any

__all__ = ["FakeSmtp"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeSmtp:
    """An aiosmtpd server on 127.0.0.1 that stores what it receives.

    ``tls_context`` (an ``ssl.SSLContext`` with a certificate) enables
    STARTTLS; ``implicit_tls=True`` serves TLS from the first byte (SMTPS).
    ``users={"name": "password"}`` requires AUTH, which — like any real
    server — is offered only over TLS. ``domains`` are the domains this server
    delivers for (an MX); mail to any other domain is relayed only for a client
    that logged in, as real servers refuse to be open relays.
    ``refuse[addr] = (550, "no such user")`` refuses a recipient.
    ``messages`` holds ``(envelope_to, email.message.Message)``.
    """

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        domains: Sequence[str] = (),
    ) -> None:
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.users = users
        self.domains = {d.lower() for d in domains}
        self.refuse: dict[str, tuple[int, str]] = {}
        self.messages: list[tuple[list[str], MimeMessage]] = []
        self.port = _free_port()
        self._controller: Any = None

    def start(self) -> FakeSmtp:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        fake = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
                # No open relay (RFC 5321 §3.6.2 / RFC 2505): an unauthenticated client may
                # only send to the domains this server is the destination for. Postfix's answer:
                if not session.authenticated and address.rpartition("@")[2].lower() not in fake.domains:
                    return f"554 5.7.1 <{address}>: Relay access denied"
                if address in fake.refuse:
                    code, text = fake.refuse[address]
                    return f"{code} {text}"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                fake.messages.append(
                    (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
                )
                return "250 Message accepted"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            ok = (
                isinstance(auth_data, LoginPassword)
                and fake.users is not None
                and fake.users.get(auth_data.login.decode()) == auth_data.password.decode()
            )
            return AuthResult(success=ok, handled=False)

        # RFC 4954 §4: no plaintext password mechanism unless the session is encrypted, so
        # AUTH is neither offered nor accepted before STARTTLS (538 5.7.11). aiosmtpd does not
        # see implicit TLS (SMTPS) as encryption, but that session is encrypted from the start.
        kwargs: dict[str, Any] = {"auth_require_tls": not self.implicit_tls}
        if self.users is not None:
            kwargs.update(authenticator=authenticator, auth_exclude_mechanism=["LOGIN"], auth_required=True)
        if self.tls_context is not None and not self.implicit_tls:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        if self.implicit_tls:
            kwargs.update(ssl_context=self.tls_context)
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> FakeSmtp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def self_signed_context(hostname: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """``(server_context, client_context)`` around a fresh self-signed certificate
    (for STARTTLS/SMTPS tests; needs ``cryptography``)."""
    import datetime
    import ipaddress
    import os
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(hostname))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        with open(key_path, "wb") as f:
            f.write(key_pem)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client
