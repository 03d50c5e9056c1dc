"""Campaign templates: variables from user attributes and campaign data.

A campaign has one ``template`` and any number of variants; each variant is
a dict of campaign data (its keys are template variables) and may override
the template with ``"template"``. How the message is built depends on the
channel:

* channels that take free text (outbox, console, WeCom, e-mail ...): the
  template is text with ``${name}`` / ``{name}`` placeholders, filled from the
  variant's data, then the user's attributes, then the built-ins
  (``user_id``);
* channels that only send provider templates (SMS, mini-program): the
  template is the provider's template code and the variables sent are the
  campaign's ``params`` (or, without ``params``, the variant's data keys).

A variable missing for some users fails :meth:`Campaigns.preview` (with the
count and example users); at send time the user is skipped with reason
``missing_variable`` and the rest still go out. Lengths are counted by the
channel's own rule (:func:`siyu.channels.text_length`, ``limits.length_unit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..channels.base import Channel, Message, render_template, template_variables, text_length
from ..errors import ValidationError

__all__ = ["BUILTINS", "RESERVED", "MissingVariable", "Renderer"]

#: Variant keys with a meaning of their own (not template variables).
RESERVED = frozenset({"template", "subject", "options"})
#: Variables siyu fills itself.
BUILTINS = frozenset({"user_id"})


class MissingVariable(ValidationError):
    """A template variable has no value for a user (internal: the send skips that user)."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"no value for template variable(s) {sorted(names)}")
        self.names = tuple(sorted(names))


class Renderer:
    """Builds the :class:`~siyu.channels.Message` of each variant for each user."""

    def __init__(
        self,
        channel: Channel,
        template: str,
        variants: Mapping[str, Mapping[str, Any]],
        *,
        params: Sequence[str] | None = None,
        purpose: str = "marketing",
    ) -> None:
        self.channel = channel
        self.provider_template = bool(channel.limits.requires_template or not channel.limits.allows_text)
        self.purpose = purpose
        self.templates: dict[str, str] = {}
        self.data: dict[str, dict[str, str]] = {}
        self.needed: dict[str, tuple[str, ...]] = {}
        self.subjects: dict[str, str | None] = {}
        for name, variant in variants.items():
            tmpl = str(variant.get("template", template))
            data = {k: str(v) for k, v in variant.items() if k not in RESERVED}
            self.templates[name] = tmpl
            self.data[name] = data
            subject = variant.get("subject")
            self.subjects[name] = None if subject is None else str(subject)
            if self.provider_template:
                names = list(params) if params is not None else list(data)
            else:
                names = template_variables(tmpl)
                if subject is not None:
                    names += template_variables(str(subject))
            self.needed[name] = tuple(dict.fromkeys(names))
        self._fixed: dict[str, str] = {}
        for name in self.templates:
            if not self.provider_template and self.subjects[name] is None and not self.user_variables(name) \
                    and "user_id" not in self.needed[name]:
                self._fixed[name] = _fill(self.templates[name], self.data[name])

    def user_variables(self, variant: str) -> tuple[str, ...]:
        """Variables of ``variant`` that must come from user attributes."""
        data = self.data[variant]
        return tuple(n for n in self.needed[variant] if n not in data and n not in BUILTINS)

    def all_user_variables(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for variant in self.templates:
            names.update(dict.fromkeys(self.user_variables(variant)))
        return tuple(names)

    def variables(self, variant: str, user_id: int, attributes: Mapping[str, Any]) -> dict[str, str]:
        data = self.data[variant]
        values: dict[str, str] = {}
        missing: list[str] = []
        for name in self.needed[variant]:
            if name in data:
                values[name] = data[name]
            elif name in attributes and attributes[name] is not None:
                values[name] = str(attributes[name])
            elif name == "user_id":
                values[name] = str(user_id)
            else:
                missing.append(name)
        if missing:
            raise MissingVariable(missing)
        return values

    def message(
        self, variant: str, user_id: int, recipient: str, attributes: Mapping[str, Any], key: str | None
    ) -> Message:
        """The message for one user; raises :class:`MissingVariable`."""
        fixed = self._fixed.get(variant)
        if fixed is not None:
            # The same text for everyone: render once, build only the envelope per user.
            return Message(recipient, text=fixed, key=key, user_id=user_id, purpose=self.purpose)
        values = self.variables(variant, user_id, attributes)
        tmpl = self.templates[variant]
        subject = self.subjects[variant]
        if subject is not None:
            subject = _fill(subject, values)
        if self.provider_template:
            return Message(
                recipient, template=tmpl, variables=values, key=key, user_id=user_id, purpose=self.purpose,
                subject=subject,
            )
        return Message(
            recipient, text=_fill(tmpl, values), key=key, user_id=user_id, purpose=self.purpose, subject=subject
        )

    def length(self, message: Message) -> int:
        try:
            text = self.channel.render(message)
        except ValidationError:
            return 0
        return text_length(text, self.channel.limits.length_unit)

    def longest(self, variant: str, longest_values: Mapping[str, str]) -> int:
        """The longest text of ``variant`` given the longest value of each user variable."""
        values = {**{n: v for n, v in longest_values.items()}, **self.data[variant], "user_id": "9" * 10}
        try:
            probe = self.message(variant, 1, "probe", values, None)
        except MissingVariable:
            return 0
        return self.length(probe)


def _fill(template: str, values: Mapping[str, str]) -> str:
    return render_template(template, values)
