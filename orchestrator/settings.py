"""Engine settings: one class per area, read from the environment and `.env`.

Every variable starts with ``CAMPAIGN_`` followed by the area, e.g.
``CAMPAIGN_DATABASE_URL``, ``CAMPAIGN_SMTP_HOST``, ``CAMPAIGN_PATHS_RULES_DIR``.
Secrets are ``SecretStr`` and never printed. Pass a ``Settings`` object into
functions explicitly; ``get_settings()`` gives the one of the current context.

Where a flow's settings come from: a flow reads them once, at its start, with
``get_settings()`` and passes the object to every task (task inputs are not stored in the
Prefect API; flow parameters are, so settings never travel as parameters). ``get_settings()``
returns the object an in-process caller (the CLI, the demo, tests) set with
``use_settings(settings)``, else it reads the environment and ``.env`` afresh (no cache, so
it cannot go stale). ``use_settings`` holds for the current thread and what Prefect runs
from it; other processes (a deployment's flow runs, Dask workers) read their own
environment, or, for chunks, get the flow's object as an argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _config(area: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=f"CAMPAIGN_{area.upper()}_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )


class PathSettings(BaseSettings):
    """Where campaign managers' files and the engine's working files live."""

    model_config = _config("paths")

    rules_dir: Path = Field(Path("rules"), description="Folder of campaign rules files (YAML).")
    templates_dir: Path = Field(Path("templates"), description="Folder of Jinja templates, one subfolder per channel.")
    data_dir: Path = Field(
        Path("var"),
        description="Working folder of the engine: the default SQLite database, send journals, demo output.",
    )


class DatabaseSettings(BaseSettings):
    """The engine database (ledger, campaigns, customer table)."""

    model_config = _config("database")

    url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db. "
            "Unset: a SQLite file campaign.db in the data folder."
        ),
        min_length=1,
    )
    customer_table: str = Field(
        "customers",
        description="Name of the customer table that imports fill and rules select from.",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
    )
    chunk_size: int = Field(
        5_000, ge=100, le=1_000_000, description="Customers per chunk for rendering, sending and ledger updates."
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class SmtpSettings(BaseSettings):
    """Outbound e-mail server."""

    model_config = _config("smtp")

    host: str = Field("127.0.0.1", min_length=1, description="SMTP server host name.")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    security: Literal["none", "starttls", "tls"] = Field(
        "none", description="Transport security: none, STARTTLS after connecting, or implicit TLS (SMTPS)."
    )
    username: str | None = Field(None, description="Login user; no login when unset.")
    password: SecretStr | None = Field(None, description="Login password.")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for the server on each command.")
    max_retries: int = Field(3, ge=0, le=20, description="Retries of a transient failure (connection or 4xx reply).")
    retry_wait: float = Field(
        1.0, ge=0, le=300, description="Initial back-off in seconds between retries; doubles each time, with jitter."
    )
    local_hostname: str | None = Field(None, description="Name sent in EHLO; the machine's FQDN when unset.")
    validate_certs: bool = Field(True, description="Verify the server's TLS certificate.")
    connections: int = Field(
        4, ge=1, le=64, description="SMTP connections used in parallel; each is reused for many messages."
    )
    max_per_second: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Rate limit: at most this many messages per second overall; unset = no limit.",
    )
    pipelining: bool = Field(
        True,
        description="Send MAIL, RCPT and DATA as one group (RFC 2920) when the server offers PIPELINING; "
        "false: one command at a time (for a server whose PIPELINING is broken).",
    )

    @field_validator("password")
    @classmethod
    def _password_needs_user(cls, value: SecretStr | None, info):  # noqa: ANN001
        if value is not None and not info.data.get("username"):
            raise ValueError("CAMPAIGN_SMTP_PASSWORD is set but CAMPAIGN_SMTP_USERNAME is not; set both or neither")
        return value


_DOMAIN = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
_SELECTOR = r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9][A-Za-z0-9_-]{0,62})*$"


class DkimKey(BaseModel):
    """One DKIM signing key: the signing domain (``d=``), its selector (``s=``) and the private key (PEM)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = Field(pattern=_DOMAIN, description="Signing domain (d=), e.g. bank.example.")
    selector: str = Field(
        pattern=_SELECTOR, description="Selector (s=): the key is published at <selector>._domainkey.<domain>."
    )
    private_key: SecretStr | None = Field(None, description="The private key, PEM text (RSA or Ed25519).")
    private_key_file: Path | None = Field(
        None, description="A file holding the private key (PEM), instead of private_key."
    )

    def pem(self) -> bytes:
        """The private key's PEM bytes (read from ``private_key_file`` when that is set)."""
        if self.private_key is not None:
            return self.private_key.get_secret_value().encode()
        if self.private_key_file is None:
            raise ValueError(f"The DKIM key of {self.domain} has neither private_key nor private_key_file")
        return self.private_key_file.read_bytes()


class DkimSettings(BaseSettings):
    """DKIM signing of outgoing e-mail (``channels.dkim``).

    One key (``CAMPAIGN_DKIM_PRIVATE_KEY`` or ``CAMPAIGN_DKIM_PRIVATE_KEY_FILE``, with
    ``CAMPAIGN_DKIM_SELECTOR`` and ``CAMPAIGN_DKIM_DOMAIN``) and/or more in ``CAMPAIGN_DKIM_SIGNING_KEYS``
    (a JSON list of ``{"domain", "selector", "private_key" | "private_key_file"}``). A sender is
    signed with the key of its From domain, or of a parent domain of it (DMARC relaxed alignment).
    """

    model_config = _config("dkim")

    private_key: SecretStr | None = Field(None, description="Private key (PEM text) of the default key.")
    private_key_file: Path | None = Field(None, description="File holding the default key's private key (PEM).")
    selector: str | None = Field(None, pattern=_SELECTOR, description="Selector of the default key.")
    domain: str | None = Field(None, pattern=_DOMAIN, description="Signing domain of the default key.")
    signing_keys: tuple[DkimKey, ...] = Field((), description="More keys, one per signing domain (JSON list).")
    required: bool = Field(
        False, description="Refuse to send e-mail from a sender without a DKIM key (instead of sending it unsigned)."
    )

    @field_validator("domain")
    @classmethod
    def _default_key_complete(cls, value: str | None, info):  # noqa: ANN001
        has_key = info.data.get("private_key") is not None or info.data.get("private_key_file") is not None
        if has_key and (value is None or info.data.get("selector") is None):
            raise ValueError(
                "CAMPAIGN_DKIM_PRIVATE_KEY(_FILE) is set but CAMPAIGN_DKIM_SELECTOR or CAMPAIGN_DKIM_DOMAIN is not; "
                "set all three (e.g. selector 'mail2026', domain 'bank.example')"
            )
        return value

    def all_keys(self) -> list[DkimKey]:
        """The default key (when set) and ``signing_keys``."""
        found = list(self.signing_keys)
        if self.domain and self.selector and (self.private_key is not None or self.private_key_file is not None):
            default = DkimKey(
                domain=self.domain,
                selector=self.selector,
                private_key=self.private_key,
                private_key_file=self.private_key_file,
            )
            found.insert(0, default)
        return found

    def key_for(self, from_domain: str) -> DkimKey | None:
        """The key that signs mail from ``from_domain``: its own domain's, else the closest parent domain's."""
        from_domain = from_domain.lower().rstrip(".")
        best: DkimKey | None = None
        for key in self.all_keys():
            domain = key.domain.lower()
            if from_domain == domain or from_domain.endswith("." + domain):
                if best is None or len(domain) > len(best.domain):
                    best = key
        return best


class LinkSettings(BaseSettings):
    """Links put into messages: unsubscribe and (later) tracking."""

    model_config = _config("links")

    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public base URL of the response API that serves unsubscribe links.",
        pattern=r"^https?://",
    )
    unsubscribe_mailto: str | None = Field(
        None, description="Address for mailto: unsubscribe requests, e.g. unsubscribe@example.com."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs link tokens. Unset: a random key is generated once and kept in the data folder.",
        min_length=16,
    )
    unsubscribe_days: int = Field(
        90,
        ge=60,
        le=3650,
        description="Days an unsubscribe link keeps working after the e-mail was made (bulk-sender rules: 60 or more).",
    )
    tracking_days: int = Field(
        180, ge=1, le=3650, description="Days the open pixel, tracked links and a message's tracking token are counted."
    )


class WebhookEndpoint(BaseModel):
    """Where one channel system receives task lists, and the secret that signs them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="URL the task lists are POSTed to.", pattern=r"^https?://")
    secret: SecretStr = Field(
        description="Standard Webhooks signing secret shared with the receiver, 'whsec_' + base64.", min_length=8
    )


class WebhookSettings(BaseSettings):
    """Outbound webhooks: task lists for the call center, field force and other systems.

    Endpoints are keyed by channel (``call_center``, ``field_force``) or by the endpoint name
    a rules file's ``webhook:`` channel uses, e.g.
    ``CAMPAIGN_WEBHOOKS_ENDPOINTS__CALL_CENTER__URL=https://cc.example/tasks`` and
    ``CAMPAIGN_WEBHOOKS_ENDPOINTS__CALL_CENTER__SECRET=whsec_...``, or all at once as JSON in
    ``CAMPAIGN_WEBHOOKS_ENDPOINTS``.
    """

    model_config = SettingsConfigDict(**_config("webhooks"), env_nested_delimiter="__")

    endpoints: dict[str, WebhookEndpoint] = Field(default_factory=dict, description="Receivers by channel or name.")
    timeout: float = Field(10.0, gt=0, le=600, description="Seconds to wait for a receiver's response to one batch.")
    max_attempts: int = Field(6, ge=1, le=50, description="Tries of one batch before it is left for the next run.")
    retry_wait: float = Field(
        0.5, ge=0, le=300, description="Initial back-off in seconds; doubles each try, with jitter."
    )
    retry_wait_max: float = Field(30.0, ge=0, le=3600, description="Longest back-off between two tries, in seconds.")
    retry_after_max: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Longest Retry-After a receiver may ask for (429/503) that is honoured, in seconds.",
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Tasks per POSTed task list.")
    concurrency: int = Field(4, ge=1, le=64, description="Task lists in flight at once per channel.")


class ApiSource(BaseModel):
    """A channel system that posts outcomes to the response API, and the secret it signs with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr = Field(description="Standard Webhooks secret of this source, 'whsec_' + base64.", min_length=8)
    channels: tuple[str, ...] = Field(
        (), description="Channels whose contacts this source may report on; empty = the source's own name."
    )
    erase: bool = Field(
        False, description="May request erasures (POST /v1/erasures), e.g. the privacy tool; no outcome rights needed."
    )


class ApiSettings(BaseSettings):
    """The response API (``campaign api``): outcomes from channel systems, e-mail links.

    Sources are keyed by name, e.g. ``CAMPAIGN_API_SOURCES__CALL_CENTER__SECRET=whsec_...``.
    """

    model_config = SettingsConfigDict(**_config("api"), env_nested_delimiter="__")

    host: str = Field("127.0.0.1", description="Interface the API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    sources: dict[str, ApiSource] = Field(default_factory=dict, description="Channel systems allowed to post outcomes.")
    tolerance_seconds: int = Field(
        300, ge=1, le=3600, description="How far a request's webhook-timestamp may be from now (replay protection)."
    )
    max_batch: int = Field(10_000, ge=1, le=1_000_000, description="Most events in one request.")
    max_body_bytes: int = Field(
        16 * 2**20,
        ge=1024,
        le=2**30,
        description="Largest request body in bytes; a larger one is refused with 413 before more of it is read.",
    )
    max_buffered_bytes: int = Field(
        64 * 2**20,
        ge=1024,
        le=2**32,
        description="Request bodies held in memory at once, over all requests; beyond it new bodies get 503.",
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds a client may take to send a request body; slower ones get 408."
    )
    source_rate: float = Field(
        20.0, gt=0, le=100_000, description="Requests per second each source may make (a burst of one second's worth)."
    )
    parse_threads: int = Field(
        2, ge=1, le=64, description="Threads that verify, parse and store outcome batches (off the event loop)."
    )
    max_connections: int = Field(
        256, ge=1, le=100_000, description="Connections served at once by `campaign api`; more get 503."
    )
    click_hosts: tuple[str, ...] = Field(
        (), description="Hosts click redirects may lead to (besides signed URLs); empty = signed URLs only."
    )


class ExecutionSettings(BaseSettings):
    """How a wave's scoring, rendering and sending are spread over Prefect tasks.

    Each Prefect task handles one chunk of ``chunk_size`` customers. ``task_runner``
    ``threads`` (the default) runs the chunks in the flow's own process, ``workers`` at a
    time; ``dask`` runs them on a Dask cluster through prefect-dask: a local cluster of
    ``workers`` processes, or the existing cluster at ``dask_address``.
    """

    model_config = _config("execution")

    chunk_size: int = Field(
        50_000, ge=1, le=10_000_000, description="Customers per Prefect task for scoring, rendering and sending."
    )
    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="threads: chunks run in the flow's process; dask: on a Dask cluster (prefect-dask)."
    )
    workers: int = Field(
        1, ge=1, le=1024, description="Chunks at once: threads in-process, or local Dask worker processes."
    )
    dask_address: str | None = Field(
        None,
        description="Scheduler address of an existing Dask cluster, e.g. tcp://10.0.0.5:8786; unset: a local cluster.",
    )
    now: datetime | None = Field(
        None,
        description="The time send windows are checked at (ISO 8601 with offset, e.g. 2026-11-24T21:30:00+00:00); "
        "unset = the real clock. For replays and tests.",
    )

    def current_time(self) -> datetime:
        """``now`` when set (naive = UTC), else the real time; always timezone-aware."""
        if self.now is None:
            return datetime.now(UTC)
        return self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)


class ReportSettings(BaseSettings):
    """How success reports present money."""

    model_config = _config("report")

    currency: str = Field(
        "EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of revenue and of the channel costs in rules files, shown in reports (EUR, USD).",
    )


class PrefectSettings(BaseSettings):
    """How the engine reaches the Prefect API its flows run against.

    With ``PREFECT_API_URL`` set (Prefect's own setting) flows use that running server. Without
    it, the first command that runs a flow starts Prefect's temporary server in a subprocess and
    waits up to ``startup_timeout`` seconds for it to answer (Prefect's own default of 20 s is
    too short for a busy machine; the value is also applied to
    ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``).
    """

    model_config = _config("prefect")

    startup_timeout: float = Field(
        180.0,
        ge=1,
        le=3600,
        description="Seconds to wait for Prefect's temporary API server to start (no PREFECT_API_URL set).",
    )


class Settings(BaseSettings):
    """All engine settings, one nested object per area."""

    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_", env_file=".env", extra="ignore")

    paths: PathSettings = Field(default_factory=PathSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    prefect: PrefectSettings = Field(default_factory=PrefectSettings)

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded default SQLite file in the data folder."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.paths.data_dir / 'campaign.db').resolve()}"

    def link_secret(self) -> str:
        """The secret that signs link tokens; generated and kept in the data folder if not configured."""
        if self.links.secret_key is not None:
            return self.links.secret_key.get_secret_value()
        import secrets

        path = self.paths.data_dir / "link-secret.key"
        if not path.exists():
            private_dir(path.parent)
            with private_file(path) as handle:
                handle.write(secrets.token_urlsafe(32).encode())
        return path.read_text().strip()


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (0700), made with its parents if missing.

    Folders the engine creates in the data folder (snapshots, journals, previews, reports)
    hold personal data or secrets, whatever the process's umask.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        try:
            path.chmod(0o700)
        except PermissionError:  # not ours (e.g. a shared parent given by the operator): leave it
            pass
    return path


def private_file(path: Path, mode: str = "wb"):  # noqa: ANN201 - a file object of open()
    """Open ``path`` for writing as a file only its owner may read (0600), whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC), 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, mode)


_current: ContextVar[Settings | None] = ContextVar("campaign_settings", default=None)


@contextmanager
def use_settings(settings: Settings) -> Iterator[Settings]:
    """Make ``get_settings()`` return ``settings`` in this context (this thread and the flows it runs)."""
    token = _current.set(settings)
    try:
        yield settings
    finally:
        _current.reset(token)


def get_settings() -> Settings:
    """The settings of ``use_settings``, else read from the environment and `.env` now (not cached)."""
    current = _current.get()
    return Settings() if current is None else current
