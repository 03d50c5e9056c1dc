"""Rule-based tags: ``ws.tags.rules`` keeps a tag equal to a segment.

>>> ws.tags.rules.add("value/high", "spend_30d >= 500")          # doctest: +SKIP
>>> ws.tags.rules.run()["value/high"].applied                      # doctest: +SKIP

``run()`` applies the tag to users who match and removes it from users who
no longer do, recording each change with ``by="rule:<tag>"``. Rules run:

- on demand, ``ws.tags.rules.run()`` (all) or ``run("value/high")`` (one);
- automatically after committed changes: once per committed write (a bulk
  write's thousands of events included), unless it only holds the rules' own
  tag changes, the rules whose inputs moved re-run. "Inputs moved" is
  checked with the change counters the expression reads (``tags``, ``users``,
  ``segments`` and each metric's counters), so an event that cannot affect a
  rule costs a few counter reads and no evaluation. Turn it off with
  ``ws.tags.rules.auto = False`` (for a bulk import, then call ``run()``);
- rules that read the clock (``days_since(...)``, ``points``, ``spend_30d``)
  change with time alone: run them from the same daily job as
  ``ws.lifecycle.sweep()``.

In an exclusive group, a user matching several rules gets the tag of the
rule added first, so the result is stable from one run to the next.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from pyroaring import BitMap

from .._text import split_tag
from ..errors import NotFound, SegmentReferenceError, ValidationError
from ..events import Event, TagApplied, TagRemoved
from ..models.lifecycle import TagRule
from ..segments.ast import Compare, DaysSince, Metric, Node, SegmentRef, Tag, atoms
from ..segments.parser import location, parse

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..segments import Segments
    from ..storage.base import Transaction
    from .tags import Tags

__all__ = ["RuleDiff", "TagRules"]

_BASE_COUNTERS = ("tags", "users", "segments", "tag_rules")


@attrs.frozen(kw_only=True)
class RuleDiff:
    """What one rule changed in a run: user ids that gained and lost the tag."""

    tag: str
    applied: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.removed)


class _Observer:
    def __init__(self, rules: TagRules) -> None:
        self.rules = rules

    def handle(self, events: Sequence[Event]) -> None:
        # Rules are functions of the stored state, so one run after a whole delivery
        # leaves the same tags as one run after each of its events.
        rules = self.rules
        if not rules.auto:
            return
        if not rules._known and time.monotonic() - rules._looked < 1.0:
            return  # the common case, no rules: keep the per-delivery cost minimal
        if all(isinstance(e, TagApplied | TagRemoved) and e.by.startswith("rule:") for e in events):
            return  # only the rules' own writes: nothing new to react to
        rules._run_changed()


class TagRules:
    """``ws.tags.rules``: add, list, remove and run rule-based tags."""

    def __init__(self, uow: UnitOfWork, *, tags: Tags, segments: Segments) -> None:
        self._uow = uow
        self._tags = tags
        self._segments = segments
        #: Re-run rules automatically after committed changes (see the module docs).
        self.auto = True
        self._tokens: dict[str, tuple[Any, ...]] = {}
        self._known = False
        self._looked = -1.0
        self._running = threading.local()
        #: The ``siyu_on_events`` plugin that re-runs rules after committed changes.
        self.observer = _Observer(self)

    # -- defining ------------------------------------------------------------------------
    def add(self, tag: str, expression: str, *, group_exclusive: bool = False) -> TagRule:
        """Keep ``tag`` equal to the users matching ``expression`` (any segment
        expression). An invalid expression, an unknown name in it, or a rule
        that depends on its own tag (directly or through other rules) is
        rejected now, not when it runs. ``group_exclusive=True`` makes the
        tag's group exclusive (one tag of the group per user). Adding a rule
        for a tag that has one replaces it. The rule first runs on the next
        :meth:`run` (or automatic run)."""
        group, name = split_tag(tag)
        full = f"{group}/{name}"
        if not isinstance(group_exclusive, bool):
            raise ValidationError(f"group_exclusive must be True or False, got {group_exclusive!r}")
        canonical = self._segments.validate(expression)
        now = self._uow.now()
        with self._uow.write() as tx:
            others = {r.tag: r for r in tx.tag_rules.all() if r.tag != full}
            self._check_acyclic(tx, full, expression, others)
            if group_exclusive:
                existing = tx.tags.get_group(group)
                if existing is None or not existing.exclusive:
                    self._tags.define_group(group, exclusive=True)
            self._tags.define(full)
            old = tx.tag_rules.get(full)
            rule = TagRule(tag=full, expression=canonical, group_exclusive=group_exclusive,
                           created_at=old.created_at if old else now)
            tx.tag_rules.save(rule)
            tx.meta.bump("tag_rules")
        self._tokens.pop(full, None)
        self._known = True
        return rule

    def _tags_of(self, tx: Transaction, node: Node, seen: set[str] | None = None) -> set[str]:
        """Tags an expression reads, through saved segments."""
        seen = set() if seen is None else seen
        found: set[str] = set()
        for atom in atoms(node):
            if isinstance(atom, Tag):
                found.add(atom.full)
            elif isinstance(atom, SegmentRef) and atom.name not in seen:
                seen.add(atom.name)
                saved = tx.segments.get(atom.name)
                if saved is not None:
                    found |= self._tags_of(tx, parse(saved.expression), seen)
        return found

    def _check_acyclic(self, tx: Transaction, tag: str, expression: str, others: dict[str, TagRule]) -> None:
        node = parse(expression)
        reads = {r.tag: self._tags_of(tx, parse(r.expression)) for r in others.values()}
        reads[tag] = self._tags_of(tx, node)
        path: list[str] = []

        def visit(current: str) -> bool:
            if current in path:
                return current == tag
            path.append(current)
            try:
                return any(visit(dep) for dep in reads.get(current, ()) if dep in reads or dep == tag)
            finally:
                path.pop()

        if tag in reads[tag] or visit(tag):
            pos = next((a.pos for a in atoms(node) if isinstance(a, Tag)), 0)
            line, column = location(expression, pos)
            raise SegmentReferenceError(
                f"the rule for {tag!r} would depend on its own tag (directly or through other rules), "
                "so every run would undo the previous one",
                text=expression, line=line, column=column, expected="an expression that does not read " + tag,
            )

    def list(self) -> list[TagRule]:
        """Every rule, in the order they were added (the order they run)."""
        with self._uow.read() as tx:
            return tx.tag_rules.all()

    def get(self, tag: str) -> TagRule:
        group, name = split_tag(tag)
        with self._uow.read() as tx:
            rule = tx.tag_rules.get(f"{group}/{name}")
        if rule is None:
            raise NotFound(f"no rule for tag {group}/{name}; ws.tags.rules.list() shows the rules")
        return rule

    def remove(self, tag: str) -> bool:
        """Stop maintaining ``tag`` (users keep it until removed by hand)."""
        group, name = split_tag(tag)
        with self._uow.write() as tx:
            removed = tx.tag_rules.delete(f"{group}/{name}")
            if removed:
                tx.meta.bump("tag_rules")
        return removed

    # -- running ------------------------------------------------------------------------------
    def _order(self, rules: builtins.list[TagRule]) -> Iterator[TagRule]:
        """Rules whose tag other rules read run first; otherwise in the order added."""
        with self._uow.read() as tx:
            reads = {r.tag: self._tags_of(tx, parse(r.expression)) for r in rules}
        done: set[str] = set()
        pending = list(rules)
        while pending:
            for rule in pending:
                if all(dep in done or dep not in reads for dep in reads[rule.tag]):
                    done.add(rule.tag)
                    pending.remove(rule)
                    yield rule
                    break
            else:  # a cycle slipped in through a redefined saved segment: run in order added
                yield from pending
                return

    def _counters(self, tx: Transaction, rule: TagRule) -> tuple[Any, ...]:
        names = set(_BASE_COUNTERS)
        metric = self._segments.metric
        timed = False
        for atom in atoms(parse(rule.expression)):
            if isinstance(atom, Compare):
                operand = atom.operand
                key = operand.name if isinstance(operand, Metric | DaysSince) else None
                for candidate in (key, f"days_since({key})" if key else None):
                    definition = metric(candidate or "")
                    if definition is not None:
                        names.update(definition.counters)
                        timed = timed or bool(definition.period)
                if isinstance(operand, DaysSince):
                    timed = True
        token: tuple[Any, ...] = tuple(sorted((n, tx.meta.version(n)) for n in names))
        # Clock-dependent rules are re-run once per minute at most by the automatic path.
        return (*token, self._uow.now().replace(second=0, microsecond=0)) if timed else token

    def run(self, tag: str | None = None) -> dict[str, RuleDiff]:
        """Apply and remove so each rule's tag equals its segment now; one
        transaction for all. Returns ``{tag: RuleDiff}`` for the rules run."""
        return self._run(tag, changed_only=False)

    def _run_changed(self) -> None:
        if getattr(self._running, "active", False):
            return
        # Without rules, events cost nothing but a look every second for rules
        # another process may have added.
        if not self._known and time.monotonic() - self._looked < 1.0:
            return
        with self._uow.read() as tx:
            self._known = bool(tx.tag_rules.all())
        self._looked = time.monotonic()
        if self._known:
            self._run(None, changed_only=True)

    def _run(self, tag: str | None, *, changed_only: bool) -> dict[str, RuleDiff]:
        wanted = None
        if tag is not None:
            group, name = split_tag(tag)
            wanted = f"{group}/{name}"
        with self._uow.read() as tx:
            rules = [r for r in tx.tag_rules.all() if r.enabled and (wanted is None or r.tag == wanted)]
            if changed_only:
                rules = [r for r in rules if self._tokens.get(r.tag) != self._counters(tx, r)]
        if wanted is not None and not rules:
            raise NotFound(f"no rule for tag {wanted}; add one with ws.tags.rules.add(...)")
        if not rules:
            return {}
        diffs: dict[str, RuleDiff] = {}
        claimed: dict[str, BitMap] = {}
        self._running.active = True
        try:
            with self._uow.write() as tx:
                for rule in self._order(rules):
                    diffs[rule.tag] = self._apply(tx, rule, claimed)
                tokens = {r.tag: self._counters(tx, r) for r in tx.tag_rules.all()}
            self._tokens.update(tokens)
        finally:
            self._running.active = False
        return diffs

    def _apply(self, tx: Transaction, rule: TagRule, claimed: dict[str, BitMap]) -> RuleDiff:
        group, name = split_tag(rule.tag)
        target = self._segments.bitmap(rule.expression)
        info = tx.tags.get_group(group)
        if info is not None and info.exclusive:
            taken = claimed.setdefault(group, BitMap())
            target -= taken
            taken |= target
        tag_id = tx.tags.tag_id(group, name)
        current = BitMap(tx.tags.holders(tag_id)) if tag_id is not None else BitMap()
        add, drop = target - current, current - target
        by = f"rule:{rule.tag}"
        if add:
            self._tags.grant(tx, list(add), (group, name), by=by, now=self._uow.now())
        if drop:
            self._tags.revoke(tx, list(drop), (group, name), by=by, now=self._uow.now())
        return RuleDiff(tag=rule.tag, applied=tuple(add), removed=tuple(drop))
