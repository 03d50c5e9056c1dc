"""The channel contract: what every channel (built-in or plugin) implements.

A channel delivers :class:`Message` objects and reports one
:class:`DeliveryResult` per message. Campaigns, ``siyu demo`` and user code
only ever talk to this contract::

    channel = ws.channels.get("sms_aliyun")            # config from the environment
    problems = channel.check(message)                  # [] when it would be accepted
    text = channel.render(message)                     # what the recipient will read
    results = channel.send([message, ...])             # one DeliveryResult per message

Rules every channel follows
---------------------------
* ``send`` never raises for a delivery problem: each message gets a result with
  a :class:`Status`. Configuration errors (wrong credentials, unknown template)
  that make the whole batch impossible are reported as ``failed_permanent``
  results with the provider's ``code``; transient ones (timeouts before the
  request was accepted, 5xx, rate limits) as ``failed_retryable`` /
  ``rate_limited`` with ``retry_after`` seconds when known.
* Every message is validated *before* any network call (:meth:`Channel.check`);
  an invalid message gets ``failed_permanent`` with ``code="invalid"`` and is
  never sent, while the valid ones in the same batch still go out.
* ``send`` splits a batch into provider calls of at most
  ``limits.max_recipients_per_call``; the low-level client methods of a channel
  (``add_msg_template`` ...) refuse oversize batches instead.
* Every provider answer is either *not created* or *unknown*. Not created:
  the provider refused before doing anything (a rate limit, an expired token,
  a refused connection, a definite error code) -- safe to send again, so it is
  ``failed_retryable`` / ``rate_limited`` (or a final refusal). Unknown: the
  request may have created the message (a read timeout, HTTP 5xx, a body that
  is not the provider's answer, a "busy" code, a success without a message
  id). For a call that creates something (a send) an unknown answer is never
  retried, by the client or anyone else: the result is ``failed_permanent``
  with ``code="timeout_unknown"``. Channels whose provider can be asked what
  it created (``reconciles = True``: WeCom group messages, Alibaba and Tencent
  SMS) settle it with :meth:`Channel.reconcile` -- found (``sent``), provably
  not created (safe to send again), or still unknown (a person decides).
* Secrets (``secret=True`` options) never appear in ``repr``, ``str`` or logs.

Consent naming
--------------
``Message.purpose`` is ``"transactional"`` (order notices, verification codes)
or ``"marketing"``. A channel decides nothing about who may be contacted: a
channel of a workspace asks the workspace's contact policy
(:class:`siyu.campaigns.ContactPolicy`, given to it as :attr:`Channel.policy`)
about every marketing message with a ``user_id`` before any call -- the
latest consent for ``"marketing"`` on the channel's ``consent_channel``, the
suppression list, lost users and legal holds. ``consent_channel`` is the channel's class attribute
(``"sms"`` for both SMS providers, ``"wecom"``, ``"email"``, ``"miniprogram"``,
``"webhook"``, ``"outbox"``). Withdrawals (SMS "R"/"TD" replies) are recorded
with the same names, so one record covers every provider of a medium. The
consent record that allowed a marketing send is returned in
``DeliveryResult.consent`` for the caller's audit trail; ``check_consent=False``
turns the gate off for callers that already filtered their audience.

Length counting
---------------
``limits.length_unit`` says how a channel counts: ``"chars"`` counts code
points (SMS providers count every Chinese character and every emoji code point
as 1; WeChat ``thing`` fields too), ``"utf8_bytes"`` counts UTF-8 bytes (WeCom
text: 4,000 bytes). :func:`text_length` implements both.
"""

from __future__ import annotations

import abc
import enum
import functools
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs

from .._text import mask_secrets
from ..errors import ChannelError, InvalidMessage, ValidationError
from ..models.users import Consent

if TYPE_CHECKING:
    from ..campaigns.models import ReceiptReport
    from ..workspace import Workspace
    from .receipts import Receipt

__all__ = [
    "NOT_CREATED",
    "UNKNOWN",
    "Attachment",
    "Channel",
    "DeliveryResult",
    "Limits",
    "Message",
    "ContactScreen",
    "Option",
    "Purpose",
    "SendObserver",
    "Status",
    "render_template",
    "text_length",
    "unknown",
]

log = logging.getLogger("siyu.channels")

class Purpose(enum.StrEnum):
    """Why a message is sent; a ``marketing`` message needs consent."""

    #: Order notices, verification codes: what the recipient asked for.
    TRANSACTIONAL = "transactional"
    #: Promotions: needs the recipient's marketing consent on the medium.
    MARKETING = "marketing"


#: Purposes a message may declare; "marketing" needs consent.
PURPOSES = tuple(p.value for p in Purpose)


def _purpose(value: str) -> str:
    # Known purposes become the enum; anything else stays as given so ``check`` can
    # report it as a problem of that message instead of failing the whole batch.
    return Purpose(value) if value in PURPOSES else value


class Status(enum.StrEnum):
    """What happened to one message."""

    #: Accepted by the provider (or stored, for the outbox).
    SENT = "sent"
    #: The provider refused this message (template, content, signature); ``code`` says why.
    REJECTED = "rejected"
    #: The recipient cannot receive: unknown number, no relation, unsubscribed.
    UNAVAILABLE = "unavailable"
    #: Throttled; try again after ``retry_after`` seconds (or later, if ``None``).
    RATE_LIMITED = "rate_limited"
    #: A transient failure before the provider accepted it; sending again is safe.
    FAILED_RETRYABLE = "failed_retryable"
    #: Will not succeed as is (invalid message, bad credentials, unknown outcome).
    FAILED_PERMANENT = "failed_permanent"


@attrs.frozen
class Attachment:
    """A channel attachment, e.g. ``Attachment("image", {"media_id": "..."})``
    or ``Attachment("link", {"title": ..., "url": ...})`` (WeCom), or a file
    for e-mail: ``Attachment("file", {"filename": "a.pdf", "content": b"..."})``."""

    kind: str
    data: Mapping[str, Any] = attrs.field(factory=dict)


def _freeze_vars(value: Mapping[str, Any] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"variables must be a dict of name -> value, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


@attrs.frozen
class Message:
    """One message to one recipient.

    ``recipient`` is the channel's address (phone for SMS, e-mail address,
    WeCom ``external_userid``, mini-program ``openid``, any id for webhooks).
    Give either ``text`` or ``template`` (+ ``variables``). ``key`` is the
    idempotency key: a channel that stores or de-duplicates (outbox, webhook
    ``Idempotency-Key``, SMS ``OutId``/``SessionContext``) uses it, so a retried
    campaign step does not send twice. ``user_id`` links the message to a siyu
    user (consent checks, audit); ``purpose`` is ``"transactional"`` or
    ``"marketing"``. ``options`` carries channel-specific fields (``page`` for
    mini-programs, ``sender`` for WeCom ...).
    """

    recipient: str
    text: str | None = None
    template: str | None = None
    variables: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_vars)
    attachments: tuple[Attachment, ...] = attrs.field(default=(), converter=tuple)
    key: str | None = None
    user_id: int | None = None
    purpose: str = attrs.field(default=Purpose.TRANSACTIONAL, converter=_purpose)
    subject: str | None = None
    options: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class DeliveryResult:
    """The outcome for one :class:`Message`.

    ``code`` is the provider's code (``"isv.BUSINESS_LIMIT_CONTROL"``, ``45009``
    ...) or a siyu code (``"invalid"``, ``"consent_required"``,
    ``"timeout_unknown"``, ``"no_credit"``); ``provider_id`` the provider's
    message id when it gives one.
    """

    message: Message
    status: Status
    code: str | None = None
    detail: str = ""
    provider_id: str | None = None
    retry_after: float | None = None
    #: For marketing messages: the consent record that allowed the send (keep it in
    #: your delivery records; PIPL audits ask which consent each send relied on).
    consent: Consent | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.SENT

    @property
    def retryable(self) -> bool:
        """Whether sending the same message again later may succeed."""
        return self.status in (Status.RATE_LIMITED, Status.FAILED_RETRYABLE)

    @property
    def recipient(self) -> str:
        return self.message.recipient

    @property
    def unknown(self) -> bool:
        """Whether the provider may or may not have created the message (``timeout_unknown``)."""
        return self.code == UNKNOWN


#: The code of a result whose outcome is unknown: the provider may have created the message.
UNKNOWN = "timeout_unknown"
#: The code :meth:`Channel.reconcile` gives a message the provider provably did not create.
NOT_CREATED = "not_created"


def unknown(message: Message, detail: str, *, provider_id: str | None = None) -> DeliveryResult:
    """The result for a message the provider may or may not have created."""
    return DeliveryResult(message, Status.FAILED_PERMANENT, code=UNKNOWN, detail=detail, provider_id=provider_id)


@attrs.frozen
class Limits:
    """A channel's platform limits, as data (platform rules change; override
    them per instance with ``limits=attrs.evolve(cls.limits, ...)``)."""

    #: Most recipients one provider call may carry.
    max_recipients_per_call: int = 1
    #: Longest text after rendering, counted in ``length_unit`` (``None``: no limit).
    max_text_length: int | None = None
    #: ``"chars"`` (code points) or ``"utf8_bytes"``.
    length_unit: str = "chars"
    #: Most attachments per message.
    max_attachments: int = 0
    #: Whether a message must name a provider template (SMS, mini-program).
    requires_template: bool = False
    #: Whether free text is allowed at all.
    allows_text: bool = True
    #: Source and date of these numbers, for when a platform changes them.
    as_of: str = ""


@attrs.frozen
class Option:
    """A configuration option of a channel.

    Resolved from the keyword passed to the constructor, else from the
    environment variable ``SIYU_<CHANNEL>_<OPTION>`` (upper case), else
    ``default``. ``secret`` options are masked in ``repr`` and never logged.
    """

    default: Any = None
    required: bool = False
    secret: bool = False
    env: bool = True
    doc: str = ""
    #: Convert a string from the environment (``int``, ``float``, ``bool``...).
    parse: Any = None


class ContactScreen(Protocol):
    """What a channel asks before a direct send. The workspace's contact policy
    (:class:`siyu.campaigns.ContactPolicy`) is one; a channel never decides itself."""

    def screen(self, medium: str, messages: Sequence[Message]) -> Sequence[DeliveryResult | Consent | None]:
        """Per message: ``None`` (no rule applies), the consent that allows it, or the
        refusing :class:`DeliveryResult` (``consent_required``, ``suppressed``, ``unknown_user``)."""
        ...

    def opt_out(self, medium: str, *, phone: str, source: str) -> int | None:
        """Withdraw the marketing consent on ``medium`` of whoever holds ``phone``; their user id."""
        ...


class SendObserver(Protocol):
    """What wraps every send of a workspace's channels (``ws.send_observer``), e.g. to trace it.

    ``send(channel, batch, deliver)`` must call ``deliver()`` exactly once and return its
    results (or let its exception through)."""

    def send(
        self, channel: str, batch: Sequence[Message], deliver: Callable[[], list[DeliveryResult]]
    ) -> list[DeliveryResult]: ...


class ReceiptSink(Protocol):
    """Where a channel's parsed delivery receipts go: ``ws.campaigns`` is one."""

    def record_receipts(self, receipts: Iterable[Receipt]) -> ReceiptReport:
        """Record receipts against the delivery records; what changed and what matched nothing."""
        ...


def text_length(text: str, unit: str = "chars") -> int:
    """Length of ``text`` the way a channel counts it."""
    if unit == "utf8_bytes":
        return len(text.encode("utf-8"))
    if unit == "chars":
        return len(text)
    raise ValueError(f"unknown length unit {unit!r}")


_VAR = re.compile(r"\$\{(\w+)\}|\{(\w+)\}")


def template_variables(template: str) -> list[str]:
    """Names used in ``template`` (``${name}`` Alibaba style or ``{name}`` / ``{1}`` Tencent style)."""
    return [m.group(1) or m.group(2) for m in _VAR.finditer(template)]


def render_template(template: str, variables: Mapping[str, str]) -> str:
    """Fill ``${name}`` / ``{name}`` placeholders; a missing variable is an
    :class:`~siyu.errors.InvalidMessage`."""
    literals, names = _split_template(template)
    if not names:
        return template
    parts = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        value = variables.get(name)
        if value is None:
            raise InvalidMessage(f"template variable {name!r} has no value; pass variables={{{name!r}: ...}}")
        parts.append(str(value))
        parts.append(literal)
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _split_template(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    # Parsed once per template: a campaign renders one template a million times.
    literals, names, last = [], [], 0
    for match in _VAR.finditer(template):
        literals.append(template[last : match.start()])
        names.append(match.group(1) or match.group(2))
        last = match.end()
    literals.append(template[last:])
    return tuple(literals), tuple(names)


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


class Channel(abc.ABC):
    """Base class of every channel. Subclasses set ``name``, ``limits``,
    ``consent_channel`` and ``options``, and implement :meth:`_deliver`.

    Construct one through the workspace (``ws.channels.get(name, **config)``)
    so it can reach storage (outbox, credits, consent); standalone use
    (``SmsAliyun(access_key_id=...)``) works for channels that need none.
    """

    name: ClassVar[str]
    limits: ClassVar[Limits] = Limits()
    consent_channel: ClassVar[str] = ""
    #: True when the provider de-duplicates on ``Message.key``, so resending a
    #: message whose outcome is unknown (after a crash) cannot deliver it twice.
    accepts_idempotency_key: ClassVar[bool] = False
    #: True when :meth:`reconcile` can ask the provider what became of a message
    #: whose outcome is unknown (the channel implements :meth:`_reconcile`).
    reconciles: ClassVar[bool] = False
    #: Seconds after an unknown answer until the provider's records can be trusted
    #: to show the message if it was created (campaigns ask no earlier).
    reconcile_after: ClassVar[float] = 60.0
    options: ClassVar[Mapping[str, Option]] = {}
    #: Options every channel accepts (test seams); never read from the environment.
    common_options: ClassVar[Mapping[str, Option]] = {
        "transport": Option(env=False, doc="an httpx transport (tests: httpx.MockTransport)"),
        "sleep": Option(env=False, doc="sleep(seconds) used for backoff; tests pass a recorder"),
        "timeout": Option(default=10.0, parse=float, doc="network timeout in seconds"),
        "limits": Option(env=False, doc="override the class's Limits"),
        "check_consent": Option(default=True, parse=_parse_bool, doc="gate marketing sends on consent"),
    }

    #: The contact policy marketing sends are checked against (set by the workspace that
    #: builds or installs the channel; ``None`` for a standalone channel: no check).
    policy: ContactScreen | None = None
    #: Where :meth:`handle_receipts` records receipts (set by the workspace: its campaigns).
    receipts: ReceiptSink | None = None

    def __init__(self, *, workspace: Workspace | None = None, **config: Any) -> None:
        self.workspace = workspace
        self.config = self._resolve(config)
        if self.config.get("limits") is not None:
            self.limits = self.config["limits"]  # type: ignore[misc]
        self._setup()

    # -- configuration ----------------------------------------------------------------
    @classmethod
    def env_name(cls, option: str) -> str:
        return f"SIYU_{cls.name.upper()}_{option.upper()}"

    @classmethod
    def _resolve(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        known = {**cls.common_options, **cls.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValidationError(
                f"channel {cls.name!r} has no option(s) {unknown}; it takes: {', '.join(sorted(known))}"
            )
        resolved: dict[str, Any] = {}
        for key, opt in known.items():
            if key in given and given[key] is not None:
                resolved[key] = given[key]
                continue
            raw = os.environ.get(cls.env_name(key)) if opt.env else None
            if raw is not None:
                resolved[key] = opt.parse(raw) if opt.parse else raw
            elif opt.required:
                raise ValidationError(
                    f"channel {cls.name!r} needs {key!r}: pass {key}=... to ws.channels.get({cls.name!r}, ...) "
                    f"or set the environment variable {cls.env_name(key)}"
                )
            else:
                resolved[key] = opt.default
        return resolved

    def option(self, name: str) -> Any:
        """The resolved value of option ``name``: the keyword given to
        ``ws.channels.get(...)``, else the ``SIYU_<CHANNEL>_<OPTION>`` environment
        variable (converted by the option's ``parse``), else its default.

        Channel code reads its configuration this way (``self.option("api_key")``);
        an option the class does not declare is a :class:`~siyu.errors.ValidationError`.
        ``self.config`` holds the same values as a dict.
        """
        if name not in self.config:
            known = sorted(self.config)
            raise ValidationError(f"channel {self.name!r} has no option {name!r}; it has: {', '.join(known)}")
        return self.config[name]

    def _setup(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Hook for subclasses: build clients from the options (:meth:`option`)."""

    def __repr__(self) -> str:
        shown = []
        for key, opt in self.options.items():
            value = self.config.get(key)
            if value is None:
                continue
            shown.append(f"{key}=***" if opt.secret else f"{key}={value!r}")
        return f"<{type(self).__name__} {self.name!r} {' '.join(shown)}>".replace(" >", ">")

    __str__ = __repr__

    def secrets(self) -> list[str]:
        """The secret values of this instance (for log scrubbing)."""
        return [str(self.config[k]) for k, o in self.options.items() if o.secret and self.config.get(k)]

    # -- validation and rendering -----------------------------------------------------
    def render(self, message: Message) -> str:
        """The text the recipient will read (template filled in). Raises
        :class:`~siyu.errors.ValidationError` when it cannot be rendered."""
        if message.text is not None:
            return message.text
        if message.template is not None:
            return render_template(message.template, message.variables)
        return ""

    def check(self, message: Message) -> list[str]:
        """Problems that would make ``message`` fail; ``[]`` when it is fine.

        Runs no network call. Subclasses extend :meth:`_check`.
        """
        problems: list[str] = []
        if not isinstance(message, Message):
            return [f"expected a siyu.channels.Message, got {type(message).__name__}"]
        if not isinstance(message.recipient, str) or not message.recipient.strip():
            problems.append("recipient is empty")
        if message.purpose not in PURPOSES:
            problems.append(f"purpose must be one of {PURPOSES}, got {message.purpose!r}")
        limits = self.limits
        if limits.requires_template and not message.template:
            problems.append(f"channel {self.name!r} sends provider templates only: set template=")
        if not limits.allows_text and message.text is not None:
            problems.append(f"channel {self.name!r} cannot send free text; use a template")
        if message.text is None and message.template is None and not message.attachments:
            problems.append("message has neither text nor template nor attachments")
        if len(message.attachments) > limits.max_attachments:
            problems.append(
                f"{len(message.attachments)} attachments; channel {self.name!r} allows {limits.max_attachments}"
            )
        if not problems:
            try:
                problems.extend(self._check(message))
            except ValidationError as exc:
                problems.append(str(exc))
        return problems

    def validate(self, message: Message) -> None:
        """Raise :class:`~siyu.errors.ValidationError` listing the problems of ``message``."""
        problems = self.check(message)
        if problems:
            raise InvalidMessage(f"message to {message.recipient!r} cannot be sent: " + "; ".join(problems))

    def _check(self, message: Message) -> list[str]:
        """Channel-specific checks; default: rendered length within ``limits``."""
        limit = self.limits.max_text_length
        if limit is None:
            return []
        text = self.render(message)
        size = text_length(text, self.limits.length_unit)
        if size > limit:
            unit = "bytes" if self.limits.length_unit == "utf8_bytes" else "characters"
            return [f"text is {size} {unit}; channel {self.name!r} allows {limit}"]
        return []

    # -- sending ----------------------------------------------------------------------
    def send(self, messages: Message | Iterable[Message]) -> list[DeliveryResult]:
        """Deliver messages; one :class:`DeliveryResult` per message, in order.

        Invalid messages and marketing messages without consent fail before any
        network call; the rest go out in provider calls of at most
        ``limits.max_recipients_per_call``.
        """
        batch = [messages] if isinstance(messages, Message) else list(messages)
        observer: SendObserver | None = getattr(self.workspace, "send_observer", None)
        if observer is None:
            return self._send(batch)
        return observer.send(self.name, batch, functools.partial(self._send, batch))

    def _send(self, batch: list[Message]) -> list[DeliveryResult]:
        results: list[DeliveryResult | None] = [None] * len(batch)
        valid: list[tuple[int, Message]] = []
        for index, message in enumerate(batch):
            problems = self.check(message)
            if problems:
                results[index] = DeliveryResult(
                    message, Status.FAILED_PERMANENT, code="invalid", detail="; ".join(problems)
                )
            else:
                valid.append((index, message))
        ready: list[tuple[int, Message]] = []
        allowed_by: dict[int, Consent] = {}
        for (index, message), decision in zip(valid, self._screen([m for _, m in valid]), strict=True):
            if isinstance(decision, DeliveryResult):
                results[index] = decision
                continue
            if decision is not None:
                allowed_by[index] = decision
            ready.append((index, message))
        for group in self._group(ready):
            for start in range(0, len(group), max(1, self.limits.max_recipients_per_call)):
                chunk = group[start : start + self.limits.max_recipients_per_call]
                messages_ = [m for _, m in chunk]
                try:
                    delivered = self._deliver(messages_)
                except ChannelError as exc:
                    delivered = [failure(m, exc) for m in messages_]
                    log.warning("channel %s: batch of %d failed: %s", self.name, len(messages_), self._scrub(str(exc)))
                if len(delivered) != len(messages_):
                    raise RuntimeError(
                        f"channel {self.name!r} returned {len(delivered)} results for {len(messages_)} messages"
                    )
                for (index, _), result in zip(chunk, delivered, strict=True):
                    if result.detail and self.secrets():
                        result = attrs.evolve(result, detail=self._scrub(result.detail))
                    if index in allowed_by:
                        result = attrs.evolve(result, consent=allowed_by[index])
                    results[index] = result
        return [r for r in results if r is not None]

    def _group(self, ready: list[tuple[int, Message]]) -> Iterable[list[tuple[int, Message]]]:
        """Split ready messages into groups that may share a provider call
        (default: one group). SMS groups by identical content."""
        return [ready] if ready else []

    @abc.abstractmethod
    def _deliver(self, messages: Sequence[Message]) -> list[DeliveryResult]:
        """Send already validated messages in ONE provider call (at most
        ``limits.max_recipients_per_call``) and return one result each. May
        raise :class:`~siyu.errors.ChannelError` to fail the whole call."""

    # -- unknown outcomes -----------------------------------------------------------------
    def reconcile(self, messages: Message | Iterable[Message], *, since: datetime) -> list[DeliveryResult]:
        """Ask the provider what became of messages whose send had an unknown outcome
        (``timeout_unknown``), sent no earlier than ``since``. One result per message:

        * ``sent`` (with the provider's id when it gives one): the provider has it;
        * ``unavailable`` / ``rejected``: the provider has it and refused the recipient;
        * ``failed_retryable`` with ``code="not_created"``: the provider's records
          provably do not have it -- sending it again cannot deliver it twice;
        * ``failed_permanent`` with ``code="timeout_unknown"``: still unknown (no
          query API, the query failed, or the records are not conclusive yet): a
          person decides, and nothing is resent.

        Runs after the provider's records have settled (``reconcile_after``
        seconds after the unknown answer); asking earlier can miss a message the
        provider is still writing down.
        """
        if isinstance(messages, Message):
            batch = [messages]
        elif isinstance(messages, Iterable) and not isinstance(messages, (str, bytes, Mapping)):
            batch = list(messages)
        else:
            raise ValidationError(f"reconcile takes Message objects, got {type(messages).__name__}")
        wrong = [type(m).__name__ for m in batch if not isinstance(m, Message)]
        if wrong:
            raise ValidationError(f"reconcile takes Message objects, got {', '.join(sorted(set(wrong)))}")
        if not isinstance(since, datetime) or since.tzinfo is None:
            raise ValidationError("since must be a timezone-aware datetime (when the unknown send happened)")
        if not batch:
            return []
        if not self.reconciles:
            return [
                unknown(m, f"channel {self.name!r} cannot ask its provider what it sent; a person decides")
                for m in batch
            ]
        try:
            found = self._reconcile(batch, since)
        except ChannelError as exc:
            return [unknown(m, f"asking the provider failed ({self._scrub(str(exc))}); still unknown") for m in batch]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A garbled query answer proves nothing either way.
            return [unknown(m, f"the provider's records could not be read ({type(exc).__name__}); still unknown")
                    for m in batch]
        if len(found) != len(batch):
            raise RuntimeError(f"channel {self.name!r} reconciled {len(found)} results for {len(batch)} messages")
        return found

    def _reconcile(self, messages: Sequence[Message], since: datetime) -> list[DeliveryResult]:
        """Query the provider for ``messages`` (see :meth:`reconcile`); channels
        with ``reconciles = True`` implement it. May raise ChannelError."""
        raise NotImplementedError

    # -- delivery receipts ------------------------------------------------------------
    def parse_receipts(self, payload: Any) -> list[Receipt]:
        """The :class:`~siyu.channels.receipts.Receipt` objects in a provider's status
        report (decoded JSON, ``bytes`` or ``str``). Raises
        :class:`~siyu.errors.CallbackRejected` for a payload that is not the provider's
        shape. Channels without a parser raise :class:`~siyu.errors.ValidationError`:
        build ``Receipt`` objects yourself and pass them to ``ws.campaigns.record_receipts``."""
        raise ValidationError(
            f"channel {self.name!r} has no delivery-receipt parser; build siyu.channels.Receipt objects "
            f"(channel={self.name!r}, message_id=<the provider id the send stored>, status='delivered'|'failed') "
            "and pass them to ws.campaigns.record_receipts"
        )

    def handle_receipts(self, payload: Any) -> ReceiptReport:
        """Parse a status report and record it against the campaign delivery records
        (:meth:`siyu.campaigns.Campaigns.record_receipts`): what changed and which
        receipts matched no record. A malformed payload raises
        :class:`~siyu.errors.CallbackRejected` and records nothing."""
        if self.receipts is None:
            raise ValidationError(
                f"channel {self.name!r} needs a workspace for delivery receipts; create it with "
                f"ws.channels.get({self.name!r})"
            )
        return self.receipts.record_receipts(self.parse_receipts(payload))

    # -- helpers ----------------------------------------------------------------------
    def _screen(self, messages: Sequence[Message]) -> Sequence[DeliveryResult | Consent | None]:
        """The contact policy's decision for each valid message (all ``None`` without a
        policy, or with ``check_consent=False`` for callers that filtered their audience)."""
        if self.policy is None or not self.config.get("check_consent", True):
            return [None] * len(messages)
        return self.policy.screen(self.consent_channel or self.name, messages)

    def _scrub(self, text: str) -> str:
        return mask_secrets(text, self.secrets())

    def _require_workspace(self, what: str) -> Workspace:
        if self.workspace is None:
            raise ValidationError(
                f"channel {self.name!r} needs a workspace for {what}; create it with ws.channels.get({self.name!r})"
            )
        return self.workspace


def failure(message: Message, exc: ChannelError) -> DeliveryResult:
    """The per-recipient result for a :class:`~siyu.errors.ChannelError`."""
    code = None if exc.code is None else str(exc.code)
    if code == UNKNOWN:
        return unknown(message, str(exc))
    if exc.retry_after is not None or code == "rate_limited":
        status = Status.RATE_LIMITED
    elif exc.retryable:
        status = Status.FAILED_RETRYABLE
    else:
        status = Status.FAILED_PERMANENT
    return DeliveryResult(message, status, code=code, detail=str(exc), retry_after=exc.retry_after)


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
