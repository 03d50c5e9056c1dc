"""``ws.segments``: count, list, save, snapshot and explain audiences."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap, FrozenBitMap

from .._text import split_tag
from .._validation import check_id, check_key, check_many, check_optional_text, check_text
from ..errors import NotFound, SegmentReferenceError, ValidationError
from ..models.segments import Explanation, SavedSegment, Snapshot
from .ast import And, Node, Not, Or, SegmentRef, atoms, to_text
from .builtin_metrics import register_builtin_metrics
from .engine import Engine, Evaluation
from .metrics import MetricDef, MetricSpec, MetricValues, check_metric_name
from .parser import location
from .parser import parse as _parse

if TYPE_CHECKING:
    from .._uow import UnitOfWork
    from ..storage.base import Transaction

__all__ = ["Segments"]


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str) -> Node:
    return _parse(text)


def _check_name(name: object) -> str:
    value = check_text(name, "segment name", max_length=64)
    if value != value.strip() or any(ch in value for ch in "()&|!,=<>\"'\\") or any(ch.isspace() for ch in value):
        raise ValidationError(
            f"segment name {value!r} must be one word without spaces, quotes or any of ( ) & | ! , = < > "
            "(it is written as segment:NAME in expressions), e.g. 'vip_shanghai'"
        )
    return value


def _period(time_dependent: object) -> float:
    if isinstance(time_dependent, timedelta):
        if time_dependent.total_seconds() <= 0:
            raise ValidationError("time_dependent must be a positive timedelta, True or False")
        return time_dependent.total_seconds()
    if not isinstance(time_dependent, bool):
        raise ValidationError(f"time_dependent must be True, False or a timedelta, got {time_dependent!r}")
    return 60.0 if time_dependent else 0.0


class Segments:
    """``ws.segments``: the audience language on Roaring bitmaps.

    >>> ws.segments.count('tag:lifecycle/customer and not tag:churned')   # doctest: +SKIP
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._metrics: dict[str, MetricDef] = {}
        self._families: dict[str, Callable[[str], MetricDef | None]] = {}
        self._engine = Engine(uow.tz, self._metrics, self._families)
        register_builtin_metrics(self)

    # -- extension point ---------------------------------------------------------------
    def register_metric(
        self,
        name: str,
        values: Callable[[Transaction, datetime], MetricValues],
        *,
        counters: Iterable[str] = (),
        time_dependent: bool | timedelta = False,
        replace: bool = False,
    ) -> None:
        """Make ``name`` usable in expressions (``orders >= 2``, ``rfm.r = 5``).

        ``values(tx, now)`` returns ``{user_id: value}`` for the users that
        have a value (ints, Decimals, floats or aware datetimes; ``None`` or a
        missing user means no value, and every comparison on it is false).
        The result is cached until one of ``counters`` (names bumped with
        ``tx.meta.bump``) changes; ``time_dependent=True`` also recomputes it
        when the clock enters a new minute (pass a ``timedelta`` for another
        period), for values that change with time alone (expiry, "last 30 days"). A datetime-valued metric ``X`` is
        compared as ``days_since(X)``. A second registration of a name raises
        unless ``replace=True``.
        """
        check_metric_name(name)
        if not callable(values):
            raise ValidationError(f"metric {name!r}: values must be a callable (tx, now) -> dict[user_id, value]")
        names = tuple(counters)
        for counter in names:
            check_text(counter, "counter", max_length=64)
        if name in self._metrics and not replace:
            raise ValidationError(
                f"metric {name!r} is already registered; pass replace=True to override it deliberately"
            )
        with self._engine.lock:
            self._metrics[name] = MetricDef(name, values, names, _period(time_dependent))
            self._engine._metrics.pop(name, None)

    def register_metric_family(self, prefix: str, resolve: Callable[[str], MetricSpec | None]) -> None:
        """Make every ``prefix.<name>`` a metric, defined when an expression first uses it:
        ``resolve(name)`` returns its :class:`~siyu.segments.metrics.MetricSpec`, or ``None`` for a
        name the family does not know (the expression then fails as an unknown metric). Analytics
        registers ``events``: ``events.page_view >= 2`` counts each user's tracked ``page_view`` events."""
        check_metric_name(prefix)
        if "." in prefix or prefix in self._families:
            raise ValidationError(f"metric family {prefix!r} must be one word and registered once")

        def definition(name: str) -> MetricDef | None:
            spec = resolve(name)
            if spec is None:
                return None
            return MetricDef(spec.name, spec.values, tuple(spec.counters), _period(spec.time_dependent))

        with self._engine.lock:
            self._families[prefix] = definition

    def register_metrics(self, specs: Iterable[MetricSpec]) -> None:
        """:meth:`register_metric` for each of a domain's declared metrics."""
        if isinstance(specs, str | bytes) or not isinstance(specs, Iterable):
            raise ValidationError(f"specs must be an iterable of MetricSpec, got {type(specs).__name__}")
        for spec in specs:
            if not isinstance(spec, MetricSpec):
                raise ValidationError(f"specs must hold MetricSpec values, got {type(spec).__name__}")
            self.register_metric(spec.name, spec.values, counters=spec.counters, time_dependent=spec.time_dependent)

    def declare_tags(self, tags: Iterable[str]) -> None:
        """Tags another domain creates on first use (``lifecycle/recalled``):
        until they exist they are valid in expressions and match nobody,
        instead of being reported as unknown."""
        parsed = [split_tag(check_text(tag, "tag")) for tag in check_many(tags, "tags", "['lifecycle/recalled']")]
        with self._engine.lock:
            self._engine.declared.update(parsed)

    def metric(self, name: str) -> MetricDef | None:
        """The definition of metric ``name`` (its counters and period), or ``None``."""
        return self._metrics.get(name) if isinstance(name, str) else None

    def metrics(self) -> builtins.list[str]:
        """Names of every registered metric."""
        return sorted(self._metrics)

    # -- parsing -----------------------------------------------------------------------
    def parse(self, expression: str) -> Node:
        """The syntax tree of ``expression`` (syntax only; names are checked when evaluated)."""
        return _parse_cached(expression) if isinstance(expression, str) else _parse(expression)

    def validate(self, expression: str) -> str:
        """Check syntax and every name in ``expression``; return its canonical text."""
        node = self.parse(expression)
        self._evaluate(expression, node)
        return to_text(node)

    def _evaluate(self, expression: str, node: Node) -> tuple[BitMap, Evaluation]:
        with self._uow.read() as tx, self._engine.lock:
            evaluation = Evaluation(self._engine, tx, self._uow.now(), expression)
            result = evaluation.run(node)
        if not self._uow.in_transaction():
            self._engine.write_back(self._write)
        return result, evaluation

    def _write(self, work: Callable[[Transaction], None]) -> None:
        with self._uow.write() as tx:
            work(tx)

    # -- queries -------------------------------------------------------------------------
    def bitmap(self, expression: str) -> BitMap:
        """The matching user ids as a new :class:`pyroaring.BitMap` (yours to change)."""
        return self._evaluate(expression, self.parse(expression))[0]

    def count(self, expression: str) -> int:
        """How many active users match ``expression``."""
        return len(self.bitmap(expression))

    def users(self, expression: str) -> list[int]:
        """Ids of the active users matching ``expression``, ascending."""
        return self.bitmap(expression).to_array().tolist()

    def contains(self, expression: str, user_id: int) -> bool:
        """Whether one user matches."""
        return isinstance(user_id, int) and 0 < user_id < 2**32 and user_id in self.bitmap(expression)

    def explain(self, expression: str) -> Explanation:
        """Per-clause counts: how many users each part matches on its own and,
        along an ``and`` chain, how many are left after each step. ``print()``
        the result for an indented tree."""
        node = self.parse(expression)
        _, evaluation = self._evaluate(expression, node)
        with self._uow.read() as tx, self._engine.lock:
            evaluation.tx = tx
            return self._explain(evaluation, node)

    def _explain(self, evaluation: Evaluation, node: Node, running: int | None = None) -> Explanation:
        result = evaluation.eval(node) & evaluation.universe
        children: list[Explanation] = []
        if isinstance(node, And):
            left: BitMap | None = None
            for item in node.items:
                mine = evaluation.eval(item) & evaluation.universe
                left = mine if left is None else left & mine
                children.append(self._explain(evaluation, item, len(left)))
        elif isinstance(node, Or | Not):
            items = node.items if isinstance(node, Or) else (node.item,)
            children = [self._explain(evaluation, item) for item in items]
        elif isinstance(node, SegmentRef):
            children = [self._explain(evaluation, evaluation.engine.saved(evaluation.tx)[node.name])]
        return Explanation(text=to_text(node), count=len(result), running=running, children=tuple(children))

    # -- saved segments -------------------------------------------------------------------
    def save(self, name: str, expression: str, *, description: str = "") -> SavedSegment:
        """Save (or redefine) a named segment; ``segment:NAME`` then refers to it.
        The expression is validated first, and may not refer back to ``name``."""
        name = _check_name(name)
        description = check_text(description, "description", max_length=500, allow_empty=True)
        node = self.parse(expression)
        now = self._uow.now()
        with self._uow.write() as tx:
            self._check_no_cycle(tx, name, node, expression)
            self._evaluate(expression, node)
            old = tx.segments.get(name)
            segment = SavedSegment(
                name=name, expression=to_text(node), description=description,
                created_at=old.created_at if old else now, updated_at=now,
            )
            tx.segments.save(segment)
            tx.meta.bump("segments")
        return segment

    def _check_no_cycle(self, tx: Transaction, name: str, node: Node, expression: str) -> None:
        saved = {s.name: s.expression for s in tx.segments.all()}
        seen: set[str] = set()
        todo = [a for a in atoms(node) if isinstance(a, SegmentRef)]
        while todo:
            ref = todo.pop()
            if ref.name == name:
                line, column = location(expression, ref.pos) if ref.pos < len(expression) else (1, 1)
                raise SegmentReferenceError(
                    f"segment {name!r} would refer to itself through segment:{ref.name}",
                    text=expression, line=line, column=column, expected="an expression without a cycle",
                )
            if ref.name in seen or ref.name not in saved:
                continue
            seen.add(ref.name)
            todo.extend(a for a in atoms(_parse_cached(saved[ref.name])) if isinstance(a, SegmentRef))

    def get(self, name: str) -> SavedSegment:
        check_text(name, "name")
        with self._uow.read() as tx:
            segment = tx.segments.get(name)
        if segment is None:
            raise NotFound(f"no saved segment {name!r}; ws.segments.list() shows the saved ones")
        return segment

    def list(self) -> list[SavedSegment]:
        """Every saved segment, by name."""
        with self._uow.read() as tx:
            return tx.segments.all()

    def delete(self, name: str) -> bool:
        """Forget a saved segment; refused while another saved segment refers to it.
        Snapshots taken from it stay."""
        check_text(name, "name")
        with self._uow.write() as tx:
            users = [s.name for s in tx.segments.all()
                     if any(isinstance(a, SegmentRef) and a.name == name for a in atoms(_parse_cached(s.expression)))]
            users += [f"the rule for {r.tag}" for r in tx.tag_rules.all()
                      if any(isinstance(a, SegmentRef) and a.name == name for a in atoms(_parse_cached(r.expression)))]
            if users:
                raise ValidationError(f"segment {name!r} is used by {', '.join(users)}; change those first")
            deleted = tx.segments.delete(name)
            if deleted:
                tx.meta.bump("segments")
        return deleted

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self, name: str, *, expression: str | None = None, key: str | None = None) -> Snapshot:
        """Freeze today's audience: store the matching ids with the expression and time.

        ``name`` is a saved segment, or with ``expression`` any label for an
        ad-hoc audience. With ``key``, a retry returns the first snapshot
        instead of taking another. Campaigns send to snapshots.
        """
        label = check_text(name, "snapshot name", max_length=64)
        if key is not None:
            check_key(key)
        now = self._uow.now()
        with self._uow.write() as tx:
            if key is not None:
                existing = tx.segments.snapshot_by_key(key)
                if existing is not None:
                    return self._snapshot(existing)
            if expression is None:
                saved = tx.segments.get(label)
                if saved is None:
                    raise NotFound(
                        f"no saved segment {label!r}; save it first or pass expression=... for an ad-hoc audience"
                    )
                expression = saved.expression
            node = self.parse(expression)
            bitmap, evaluation = self._evaluate(expression, node)
            resolved = to_text(self._inline(evaluation, node))
            data = bitmap.serialize()
            snapshot_id = tx.segments.add_snapshot(
                name=label, expression=expression, resolved=resolved, at=now, count=len(bitmap), bitmap=data,
                key=key,
            )
            tx.meta.bump("snapshots")
        return Snapshot(id=snapshot_id, name=label, expression=expression, resolved=resolved, created_at=now,
                        user_ids=FrozenBitMap(bitmap))

    def _inline(self, evaluation: Evaluation, node: Node) -> Node:
        if isinstance(node, SegmentRef):
            return self._inline(evaluation, evaluation.engine.saved(evaluation.tx)[node.name])
        if isinstance(node, Not):
            return Not(self._inline(evaluation, node.item))
        if isinstance(node, And | Or):
            return type(node)(tuple(self._inline(evaluation, i) for i in node.items))
        return node

    @staticmethod
    def _snapshot(row: dict[str, Any]) -> Snapshot:
        return Snapshot(id=row["id"], name=row["name"], expression=row["expression"], resolved=row["resolved"],
                        created_at=row["at"], user_ids=FrozenBitMap.deserialize(row["bitmap"]))

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        """A stored snapshot by id."""
        check_id(snapshot_id, "snapshot_id")
        with self._uow.read() as tx:
            row = tx.segments.snapshot(snapshot_id)
        if row is None:
            raise NotFound(f"no snapshot {snapshot_id}; ws.segments.snapshots() lists them")
        return self._snapshot(row)

    def snapshots(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        """Stored snapshots (of one name), oldest first: ``id``, ``name``,
        ``expression``, ``resolved``, ``created_at``, ``count``, ``key`` (load the
        ids with :meth:`get_snapshot`)."""
        check_optional_text(name, "name")
        with self._uow.read() as tx:
            rows = tx.segments.snapshots(name)
        return [{"created_at" if k == "at" else k: v for k, v in row.items()} for row in rows]

    def preload(self) -> None:
        """Load every tag's bitmap now, e.g. at start-up of a long-running worker.
        Otherwise each tag is loaded on first use (from the stored copy, or
        from the rows), so the first query of a cold process stays quick."""
        with self._uow.read() as tx, self._engine.lock:
            self._engine.begin(tx)
            self._engine.preload(tx)
        if not self._uow.in_transaction():
            self._engine.write_back(self._write)

    def refresh(self) -> None:
        """Drop every cache; the next query rebuilds from storage (normally never needed)."""
        self._engine.reset()
