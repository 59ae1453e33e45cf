"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, and fault modes.

    with SmtpServer(reject={"gone@example.com"}) as server:
        channel = EmailChannel(server.settings(), sender="news@bank.example")
        channel.send(batch)
        assert server.connections == 1
        [message] = server.messages  # parsed email.message.EmailMessage objects

Fault modes (all optional, combinable):

* ``reject``: recipients whose RCPT is answered ``550 5.1.1`` (the mailbox does not exist);
* ``reject_with``: recipients mapped to the reply their RCPT gets, e.g.
  ``{"spam@example.com": "550 5.7.1 Message rejected as spam"}``;
* ``defer`` / ``defer_times``: recipients whose RCPT is answered ``451 4.7.1`` for their
  first ``defer_times`` attempts (``None``: always);
* ``data_delay``: seconds to wait before answering each DATA (a slow server);
* ``drop_after``: close each connection after it had that many messages accepted;
* ``max_connections``: greet connections beyond that many open at once with ``421 4.7.0``
  and close them (a server that limits a client's connections);
* ``auth``: ``(user, password)`` that AUTH PLAIN/LOGIN must give before MAIL (no TLS needed);
* ``tls``: ``"starttls"`` (required before MAIL) or ``"tls"`` (implicit), with a
  self-signed certificate for ``localhost`` / ``127.0.0.1``;
* ``eml_dir``: also write each accepted message as ``000001.eml``, ... there;
* ``pipelining``: advertise PIPELINING (RFC 2920) in the EHLO reply, so clients send MAIL,
  RCPT and DATA as one group (aiosmtpd reads commands one after another from its buffer, so
  it answers a group in order). ``None`` (the default) takes ``SmtpServer.pipelining_default``,
  which the e-mail channel tests run both ways.

Standalone (a sink to look at what a run sends):
``python -m tests.smtp_server --port 2525 --eml-dir var/mail``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, Session

from orchestrator.demo.smtp_sink import free_port
from orchestrator.settings import SmtpSettings

__all__ = ["Received", "SmtpServer", "free_port"]


@dataclass(frozen=True)
class Received:
    """One accepted message: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes


@cache
def _certificate() -> tuple[str, str]:
    """A self-signed certificate and key for localhost / 127.0.0.1 (files, made once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="smtp-test-cert-"))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


class _Handler:
    def __init__(self, owner: SmtpServer):
        self.owner = owner

    async def handle_EHLO(self, server, session, envelope, hostname: str, responses: list[str]) -> list[str]:  # noqa: ANN001
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        if self.owner.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address: str, mail_options) -> str:  # noqa: ANN001
        if self.owner.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:  # noqa: ANN001
        owner = self.owner
        with owner._lock:
            owner.rcpt_attempts[address] += 1
            attempt = owner.rcpt_attempts[address]
        if address in owner.reject_with:
            return owner.reject_with[address]
        if address in owner.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in owner.defer and (owner.defer_times is None or attempt <= owner.defer_times):
            return f"451 4.7.1 <{address}>: Recipient address rejected: Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        owner = self.owner
        if owner.data_delay:
            await asyncio.sleep(owner.data_delay)
        raw = envelope.original_content or envelope.content
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=message_from_bytes(raw, policy=policy.default),
            raw=raw,
        )
        with owner._lock:
            owner.received.append(received)
            number = len(owner.received)
        if owner.eml_dir is not None:
            (owner.eml_dir / f"{number:06d}.eml").write_bytes(raw)
        session.accepted = getattr(session, "accepted", 0) + 1
        if owner.drop_after and session.accepted >= owner.drop_after:
            # After the 250 below is written: close() flushes it, then drops the connection.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 OK: queued"


class _Session(Session):
    login_data = None  # a plain attribute instead of aiosmtpd's deprecated property (no warnings)


class _SMTP(SMTP):
    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def _handle_client(self) -> None:
        owner: SmtpServer = self.event_handler.owner
        with owner._lock:
            owner.open_connections += 1
            owner.peak_connections = max(owner.peak_connections, owner.open_connections)
            refused = owner.max_connections is not None and owner.open_connections > owner.max_connections
        try:
            if refused:
                await self.push("421 4.7.0 Too many connections, try again later")
                if self.transport is not None:
                    self.transport.close()
                return
            await super()._handle_client()
        finally:
            with owner._lock:
                owner.open_connections -= 1


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, **kwargs: Any):
        super().__init__(_Handler(owner), **kwargs)
        self.owner = owner

    def factory(self):  # noqa: ANN201 - called once per connection
        with self.owner._lock:
            self.owner.connections += 1
        return _SMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """An aiosmtpd server on ``host:port`` that records what it accepts; a context manager.

    Attributes: ``host``, ``port``, ``received`` (``Received`` per accepted message, in
    order), ``messages``, ``recipients`` and ``message_ids`` (views of it), ``connections`` (SMTP
    connections opened by clients since start), ``open_connections`` and
    ``peak_connections`` (open now, most open at once), ``rcpt_attempts`` (RCPT commands
    per address, accepted or not).
    """

    pipelining_default = False

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        reject: Iterable[str] = (),
        reject_with: Mapping[str, str] | None = None,
        defer: Iterable[str] = (),
        defer_times: int | None = None,
        data_delay: float = 0.0,
        drop_after: int | None = None,
        max_connections: int | None = None,
        auth: tuple[str, str] | None = None,
        tls: Literal["starttls", "tls"] | None = None,
        eml_dir: Path | str | None = None,
        pipelining: bool | None = None,
    ):
        self.host = host
        self.pipelining = SmtpServer.pipelining_default if pipelining is None else pipelining
        self.port = port or free_port(host)
        self.reject = frozenset(reject)
        self.reject_with = dict(reject_with or {})
        self.defer = frozenset(defer)
        self.defer_times = defer_times
        self.data_delay = data_delay
        self.drop_after = drop_after
        self.max_connections = max_connections
        self.auth = auth
        self.tls = tls
        self.eml_dir = Path(eml_dir) if eml_dir is not None else None
        self.received: list[Received] = []
        self.connections = 0
        self.open_connections = 0
        self.peak_connections = 0
        self.rcpt_attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._controller: _Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    @property
    def recipients(self) -> list[str]:
        return [address for r in self.received for address in r.rcpt_tos]

    @property
    def message_ids(self) -> set[str]:
        """The distinct ``Message-ID``s accepted: the messages counted once each.

        A client whose command timed out after the server accepted a message (SMTP's duplicate
        window, README "What is guaranteed") sends it again with the same ``Message-ID``; on a
        busy machine that is legitimate, so tests count messages by these, not by ``received``.
        """
        return {str(r.message["Message-ID"]) for r in self.received}

    def ids_per_recipient(self) -> Counter[str]:
        """Distinct ``Message-ID``s per recipient address (1 each when nobody got two different messages)."""
        pairs = {(address, str(r.message["Message-ID"])) for r in self.received for address in r.rcpt_tos}
        return Counter(address for address, _ in pairs)

    def settings(self, **overrides: Any) -> SmtpSettings:
        """``SmtpSettings`` for this server (fast retries, its TLS mode and login); ``overrides`` win."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.tls or "none",
            "validate_certs": False,
            "timeout": 5.0,
            "max_retries": 2,
            "retry_wait": 0.01,
        }
        if self.auth is not None:
            values["username"], values["password"] = self.auth
        values.update(overrides)
        return SmtpSettings(**values)

    def _authenticate(self, server, session, envelope, mechanism: str, auth_data) -> AuthResult:  # noqa: ANN001
        ok = isinstance(auth_data, LoginPassword) and self.auth == (
            auth_data.login.decode(),
            auth_data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port}
        if self.auth is not None:
            # handle_MAIL asks for the login (aiosmtpd's auth_required=True warns without TLS).
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*_certificate())
            if self.tls == "tls":
                kwargs["ssl_context"] = context
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        if self.eml_dir is not None:
            self.eml_dir.mkdir(parents=True, exist_ok=True)
        self._controller = _Controller(self, **kwargs)
        self._controller.start()
        deadline = time.monotonic() + 2
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.001)  # until the server has seen start()'s check connection close
        with self._lock:
            self.connections = 0  # start() opened one connection to check the server is up
            self.peak_connections = self.open_connections
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run an SMTP sink on loopback until Ctrl-C.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--eml-dir", type=Path, help="write each accepted message as an .eml file here")
    args = parser.parse_args(argv)
    with SmtpServer(host=args.host, port=args.port, eml_dir=args.eml_dir) as server:
        print(f"SMTP sink on {server.host}:{server.port}; Ctrl-C stops it", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    print(f"{len(server.received)} message(s) received")


if __name__ == "__main__":
    main()
