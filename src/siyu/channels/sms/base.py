"""What both SMS providers share: templates, the opt-out guard, phone
normalisation, grouping by content, inbound opt-out replies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import attrs

from ...errors import InvalidMessage, ValidationError
from ...identities import sms_phone
from ..base import Channel, Limits, Message, Option, render_template, template_variables

__all__ = ["OPT_OUT_KEYWORDS", "SmsChannel", "SmsTemplate"]

#: Replies that withdraw SMS marketing consent (Alibaba "R", Tencent "T"/"TD"/"N").
OPT_OUT_KEYWORDS = ("R", "T", "TD", "N", "退订")
TEMPLATE_KINDS = ("verification", "notification", "marketing")


@attrs.frozen
class SmsTemplate:
    """A provider-approved SMS template.

    ``code`` is the provider's id (``SMS_71390007`` / ``"1234567"``), ``kind``
    one of ``verification``, ``notification``, ``marketing``, ``text`` the
    approved text (``${name}`` for Alibaba, ``{1}`` for Tencent) so siyu can
    validate and count before sending.
    """

    code: str
    kind: str
    text: str

    def __attrs_post_init__(self) -> None:
        if self.kind not in TEMPLATE_KINDS:
            raise InvalidMessage(f"SMS template kind must be one of {TEMPLATE_KINDS}, got {self.kind!r}")
        if not self.code or not self.text:
            raise InvalidMessage("an SMS template needs code= and text=")

    @property
    def variables(self) -> list[str]:
        return template_variables(self.text)


def _templates(value: Any) -> dict[str, SmsTemplate]:
    if value is None:
        return {}
    if isinstance(value, str):  # from the environment: JSON list of {code, kind, text}
        value = json.loads(value)
    items: Iterable[Any] = value.values() if isinstance(value, Mapping) else value
    result: dict[str, SmsTemplate] = {}
    for item in items:
        template = item if isinstance(item, SmsTemplate) else SmsTemplate(**item)
        result[template.code] = template
    return result


class SmsChannel(Channel):
    """Base of the SMS channels. Messages name a registered template
    (``templates=[SmsTemplate(...)]``); free text cannot be sent."""

    consent_channel: ClassVar[str] = "sms"
    limits: ClassVar[Limits] = Limits(
        max_recipients_per_call=1000,
        max_text_length=500,
        length_unit="chars",
        requires_template=True,
        allows_text=False,
    )
    #: Wording a marketing template must carry (checked by :meth:`check_template`).
    opt_out_hint: ClassVar[str] = ""
    common_sms_options: ClassVar[dict[str, Option]] = {
        "sign_name": Option(required=True, doc="approved signature (签名), without 【】"),
        "templates": Option(parse=json.loads, doc="approved templates: SmsTemplate list (env: JSON)"),
        "opt_out_keywords": Option(default=OPT_OUT_KEYWORDS, env=False, doc="replies that withdraw consent"),
    }

    def _setup(self) -> None:
        self.templates = _templates(self.config["templates"])
        for template in self.templates.values():
            problems = self.check_template(template)
            if problems:
                raise InvalidMessage(f"SMS template {template.code}: " + "; ".join(problems))
        self._client: Any = None

    def add_template(self, template: SmsTemplate) -> None:
        """Register an approved template (validated now, not at send time)."""
        problems = self.check_template(template)
        if problems:
            raise InvalidMessage(f"SMS template {template.code}: " + "; ".join(problems))
        self.templates[template.code] = template

    def check_template(self, template: SmsTemplate) -> list[str]:
        """Provider rules on the template text (opt-out wording, forbidden content)."""
        problems = []
        if not any(ch for ch in re.sub(r"\$\{\w+\}|\{\w+\}", "", template.text).strip()):
            problems.append("a template made only of variables is refused by the providers")
        return problems

    # -- rendering ----------------------------------------------------------------------
    def template_for(self, message: Message) -> SmsTemplate:
        template = self.templates.get(message.template or "")
        if template is None:
            raise InvalidMessage(
                f"SMS template {message.template!r} is not registered with this channel; pass "
                f"templates=[SmsTemplate(code=..., kind=..., text=...)] (known: {sorted(self.templates) or 'none'})"
            )
        return template

    def render(self, message: Message) -> str:
        """``【signature】`` + the filled template, as the phone shows it."""
        template = self.template_for(message)
        return f"【{self.config['sign_name']}】" + render_template(template.text, message.variables)

    def phone(self, recipient: str) -> str:
        """The recipient in E.164. Raises :class:`~siyu.errors.InvalidPhone` for a
        number that is not a phone, or one a text message cannot reach (a landline,
        a 400/800 number)."""
        return sms_phone(recipient)

    def _check(self, message: Message) -> list[str]:
        template = self.template_for(message)
        problems = super()._check(message)
        if message.purpose == "marketing" and template.kind != "marketing":
            problems.append(f"marketing messages need a marketing template; {template.code} is {template.kind}")
        if template.kind == "marketing" and message.purpose != "marketing":
            problems.append(f"template {template.code} is a marketing template: set purpose='marketing'")
        extra = sorted(set(message.variables) - set(template.variables))
        if extra:
            problems.append(f"variables {extra} are not in template {template.code}")
        self.phone(message.recipient)
        return problems

    def _group(self, ready: list[tuple[int, Message]]) -> Iterable[list[tuple[int, Message]]]:
        groups: dict[str, list[tuple[int, Message]]] = {}
        for index, message in ready:
            token = json.dumps([message.template, sorted(message.variables.items())], ensure_ascii=False)
            groups.setdefault(token, []).append((index, message))
        return list(groups.values())

    # -- inbound --------------------------------------------------------------------------
    def handle_reply(self, phone: str, text: str, *, source: str | None = None) -> int | None:
        """Act on an inbound SMS: an opt-out keyword (R, T, TD, N, 退订) withdraws
        the sender's SMS marketing consent. Returns the user id it applied to,
        or ``None`` (not an opt-out, or an unknown number)."""
        if self.policy is None:
            raise ValidationError(
                f"channel {self.name!r} needs a workspace for inbound replies; create it with "
                f"ws.channels.get({self.name!r})"
            )
        word = text.strip().upper().rstrip("。.!！")
        if word not in {k.upper() for k in self.config["opt_out_keywords"]}:
            return None
        return self.policy.opt_out(self.consent_channel, phone=phone, source=source or f"{self.name}:reply:{word}")

    def handle_uplink(self, payload: Any) -> list[int]:
        """Process a provider's uplink (reply) push; return the users who opted out."""
        items: Sequence[Any] = payload if isinstance(payload, list) else [payload]
        done = []
        for item in items:
            if not isinstance(item, Mapping):
                raise ValidationError("an uplink item must be a JSON object")
            phone, text = self._uplink_fields(item)
            uid = self.handle_reply(phone, text)
            if uid is not None:
                done.append(uid)
        return done

    def _uplink_fields(self, item: Mapping[str, Any]) -> tuple[str, str]:
        raise NotImplementedError


RATE_LIMIT_SECONDS = {"minute": 60.0, "hour": 3600.0, "day": 86_400.0}


def call_context(keys: Sequence[str | None]) -> str:
    """The reference one SendSms call carries for reconciliation (Alibaba ``OutId``,
    Tencent ``SessionContext``): the key of a lone message, or the part the keys of
    all its messages share up to a ``:`` (a campaign's keys share
    ``campaign:<id>:<occurrence>:``), else the first key."""
    present = [k for k in keys if k]
    if not present:
        return ""
    if len(set(present)) == 1:
        return present[0]
    shared = min(present)
    for key in present:  # the longest common prefix of the keys
        while not key.startswith(shared):
            shared = shared[:-1]
    cut = shared.rfind(":")
    return shared[: cut + 1] if cut > 0 else present[0]


def context_matches(context: str | None, key: str | None) -> bool:
    """Whether a call's reference (:func:`call_context`) covers a message's key."""
    if not context or not key:
        return False
    return context == key or (context.endswith(":") and key.startswith(context))
