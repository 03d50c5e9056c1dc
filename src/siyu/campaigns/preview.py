"""Campaign previews: reach after every gate, counted over the whole audience
with bitmaps, plus sample renders and template checks."""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

from pyroaring import BitMap

from .._clock import aware
from ..channels.base import Channel, text_length
from ..errors import TemplateError, ValidationError
from ..services._common import check_int
from .gates import (
    ADDRESS_KIND,
    GATES,
    over_limit,
    user_zones,
    window_start,
    without_credit,
)
from .models import GateCount, Preview, SampleRender
from .records import Stored, audience_of, find
from .settings import GateConfig, channel_for, gates_for, renderer_for
from .templates import BUILTINS, MissingVariable, Renderer
from .variables import UserVariables

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..channels.service import ChannelService
    from ..storage.base import Transaction
    from .policy import ContactPolicy

__all__ = ["CampaignPreview"]


class CampaignPreview:
    """Previews campaigns (``ws.campaigns.preview``)."""

    def __init__(self, uow: UnitOfWork, *, channels: ChannelService, policy: ContactPolicy,
                 variables: UserVariables | None = None) -> None:
        self._uow = uow
        self._channels = channels
        self._policy = policy
        self._variables = variables if variables is not None else UserVariables()

    def preview(self, campaign: int | str, *, at: datetime | None = None, samples: int = 3) -> Preview:
        check_int(samples, "samples", minimum=0, maximum=100)
        when = None if at is None else aware(at, "at")
        with self._uow.read() as tx:
            found = find(tx, campaign)
            row = found.row
            now = when if when is not None else self._uow.now()
            channel = channel_for(self._channels, row.channel)
            renderer = renderer_for(found, channel)
            cfg = gates_for(tx, found)
            audience = audience_of(row)
            if audience is None:
                audience = BitMap(tx.users.ids())
            gates, reach, deferred = self._preview_gates(tx, found, cfg, audience, now, renderer)
            problems: list[str] = []
            longest: dict[str, str] = {}
            for name in renderer.all_user_variables():
                if self._variables.provides(name):
                    continue  # computed per user at send time: a user without a value is skipped then
                values = tx.campaigns.attribute_values(name)
                have = BitMap(values)
                lacking = reach - have
                if lacking:
                    example = list(lacking[:5]) if hasattr(lacking, "__getitem__") else list(lacking)[:5]
                    problems.append(
                        f"variable {name!r} has no value for {len(lacking):,} of {len(reach):,} reachable users "
                        f"(e.g. users {example}); set the attribute or put {name!r} in every variant's data"
                    )
                in_reach = [str(values[u]) for u in (reach & have)]
                if in_reach:
                    unit = channel.limits.length_unit
                    longest[name] = max(in_reach, key=lambda v: text_length(v, unit))
            max_length: dict[str, int] = {}
            limit = channel.limits.max_text_length
            for variant in row.variants:
                missing = [n for n in renderer.needed[variant] if n not in renderer.data[variant]
                           and n not in BUILTINS and n not in renderer.all_user_variables()]
                if missing:
                    problems.append(f"variant {variant!r} lacks {missing}")
                size = renderer.longest(variant, longest)
                max_length[variant] = size
                if limit is not None and size > limit:
                    unit = "bytes" if channel.limits.length_unit == "utf8_bytes" else "characters"
                    problems.append(
                        f"variant {variant!r} renders up to {size} {unit}; channel {channel.name!r} allows {limit}"
                    )
            sample_renders = self._samples(tx, found, channel, renderer, reach or audience, samples)
        for s in sample_renders:
            problems.extend(f"variant {s.variant!r}, user {s.user_id}: {p}" for p in s.problems)
        if problems:
            raise TemplateError(
                f"campaign {row.name!r} cannot be sent as is: " + "; ".join(problems), problems=tuple(problems)
            )
        return Preview(
            campaign_id=row.id, audience=len(audience), gates=tuple(gates), reach=len(reach) - len(deferred),
            deferred=len(deferred), samples=tuple(sample_renders), max_length=max_length, at=now,
        )

    def _preview_gates(
        self, tx: Transaction, found: Stored, cfg: GateConfig, audience: BitMap, now: datetime,
        renderer: Renderer,
    ) -> tuple[list[GateCount], BitMap, BitMap]:
        row = found.row
        remaining = BitMap(audience)
        gates: list[GateCount] = []

        def gate(name: str, blocked: BitMap | None) -> None:
            nonlocal remaining
            if blocked is None:
                hit = BitMap()
            else:
                hit = remaining & blocked
                remaining = remaining - hit
            gates.append(GateCount(gate=name, removed=len(hit), remaining=len(remaining)))

        inactive, top = tx.campaigns.inactive_users()
        beyond = remaining - BitMap(range(1, top + 1)) if remaining and remaining.max() > top else BitMap()
        gate("inactive", BitMap(inactive) | beyond)
        medium = row.consent_channel
        gate("consent", self._policy.without_consent(tx, row.purpose, medium, remaining) if cfg.needs_consent else None)
        gate("suppressed", self._policy.unreachable(tx, medium))
        kind = ADDRESS_KIND.get(medium)
        if kind is not None:
            reachable = BitMap(uid for k, uid in tx.segments.identity_kinds() if k == kind)
            gate("no_address", remaining - reachable)
        else:
            gate("no_address", None)
        capped: BitMap | None = None
        if cfg.counts_toward_budget and (cfg.budget or cfg.caps):
            periods = [p for p, _ in cfg.budget] + [c["period"] for c in cfg.caps]
            since = min(window_start(p, now, self._uow.tz) for p in periods)
            touches = tx.campaigns.touches(since)
            gate("budget", over_limit(touches, cfg.budget, now, self._uow.tz, candidates=remaining))
            rules = [(c["period"], c["limit"]) for c in cfg.caps]
            if rules:
                capped = over_limit(touches, rules, now, self._uow.tz, medium=medium, candidates=remaining)
        else:
            gate("budget", None)
        if cfg.credits and kind is not None and remaining:
            # The send's credit gate, per the template of the variant each user would get.
            broke = without_credit(tx, row.channel, kind, self._credit_needs(found, renderer, remaining))
            capped = broke if capped is None else capped | broke
        gate("platform_cap", capped)
        deferred = BitMap()
        if cfg.quiet is not None:
            zones = user_zones(tx.campaigns.attribute_values(cfg.tz_attribute), self._uow.tz)
            if cfg.quiet.contains(now.astimezone(self._uow.tz)):
                deferred = remaining - BitMap(
                    uid for uid, z in zones.items() if not cfg.quiet.contains(now.astimezone(z))
                )
            else:
                deferred = BitMap(uid for uid, z in zones.items() if cfg.quiet.contains(now.astimezone(z)))
            deferred &= remaining
        gates.append(GateCount(gate="quiet_hours", removed=0, remaining=len(remaining) - len(deferred),
                               deferred=len(deferred)))
        assert [g.gate for g in gates] == list(GATES)
        return gates, remaining, deferred

    @staticmethod
    def _credit_needs(found: Stored, renderer: Renderer, users: BitMap) -> dict[str, BitMap]:
        """Which template each user would need a credit for: the launched or winning
        variant's; before that, with one variant, its template; with several,
        every variant's (a pilot may deal a user any of them), so a preview never
        counts a user the send would skip."""
        state = found.state
        chosen = state.launch.variant if state.launch is not None else state.winner
        variants = [chosen] if chosen in renderer.templates else list(renderer.templates)
        return {renderer.templates[v]: users for v in variants}

    def _samples(
        self, tx: Transaction, found: Stored, channel: Channel, renderer: Renderer, pool: BitMap, count: int
    ) -> list[SampleRender]:
        out: list[SampleRender] = []
        if count == 0 or not pool:
            return out
        row = found.row
        rng = random.Random(found.config.seed)
        picks = sorted(rng.sample(list(pool) if len(pool) <= 100_000 else list(pool[:100_000]),
                                  min(count, len(pool))))
        attributes = self._variables.fill(tx, picks, renderer.all_user_variables(),
                                          tx.campaigns.attributes(picks))
        kind = ADDRESS_KIND.get(row.consent_channel)
        for variant in row.variants:
            for uid in picks:
                recipient = str(uid)
                if kind is not None:
                    recipient = next((i.value for i in tx.users.identities(uid) if i.kind == kind), "")
                try:
                    message = renderer.message(variant, uid, recipient or "?", attributes.get(uid, {}), None)
                except MissingVariable as exc:
                    out.append(SampleRender(variant=variant, user_id=uid, recipient=recipient or None, text="",
                                            length=0, length_unit=channel.limits.length_unit,
                                            limit=channel.limits.max_text_length, problems=(str(exc),)))
                    continue
                problems = [p for p in channel.check(message) if "recipient" not in p]
                try:
                    text = channel.render(message)
                except ValidationError as exc:
                    text, problems = "", [*problems, str(exc)]
                out.append(SampleRender(
                    variant=variant, user_id=uid, recipient=recipient or None, text=text,
                    length=text_length(text, channel.limits.length_unit), length_unit=channel.limits.length_unit,
                    limit=channel.limits.max_text_length, problems=tuple(dict.fromkeys(problems)),
                ))
        return out

