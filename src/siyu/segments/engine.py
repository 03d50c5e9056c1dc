"""Evaluate segment trees on Roaring bitmaps, with caches that follow storage.

Each kind of input is cached per process and stamped with the change
counters (``tx.meta.version``) it depends on; a query reads those counters
in its own read transaction and refreshes only what moved, so a change
committed by another process is seen by the next query.

- tags: one bitmap per tag. When the ``tags`` counter moves, the tag history
  written since the last refresh is read and each touched ``(user, tag)``
  pair is set to what storage holds now (not replayed), so order and gaps
  in the history cannot leave a stale bit.
- the universe (active users): rebuilt when ``users`` moves, cheaply while
  ids are dense.
- attributes, sources and identities: one scan of active users when ``users``
  moves, into sorted value indexes.
- metrics: each registered metric's values, keyed by its own counters
  (and the clock for time-dependent ones).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyroaring import BitMap

from ..errors import SegmentReferenceError
from ..models.users import IDENTITY_KINDS
from .ast import And, Attr, Compare, DaysSince, Has, Metric, Node, Not, Or, SegmentRef, Source, Tag, to_text
from .index import NUMBER, TEXT, TIME, SortedIndex, kind_of
from .metrics import MetricDef
from .parser import location, parse

if TYPE_CHECKING:
    from ..storage.base import Transaction

__all__ = ["Engine", "Evaluation"]

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!=", "in": "in"}
#: Tag history lines replayed before a full reload is cheaper.
_MAX_REPLAY = 200_000
#: Positions missing from the tag history are re-checked this long (seconds), in
#: case a concurrent writer (PostgreSQL sequences) commits them late.
_GAP_TTL = 120.0
#: Write the tag bitmaps back once this many memberships exist (smaller sets rebuild fast) ...
_WRITE_BACK_MIN = 100_000
#: ... and once this many changes were replayed since the stored copy.
_WRITE_BACK_AFTER = 50_000


class _TagCache:
    """Tag bitmaps. Without a stored copy, each tag is loaded from the rows on
    first use, so a cold process only reads the tags its queries name."""

    def __init__(self) -> None:
        self.version = -1
        self.ids: dict[tuple[str, str], int] = {}
        self.bitmaps: dict[int, BitMap] = {}
        #: Tags whose bitmap is loaded, or ``None`` once every tag is.
        self.loaded: set[int] | None = set()
        self.position = 0
        self.gaps: dict[int, float] = {}
        #: Changes not yet in the stored copy (see ``Engine.write_back``).
        self.unsaved = 0

    def refresh(self, tx: Transaction, version: int) -> None:
        if version == self.version:
            return
        self.ids = {(g, n): i for i, g, n in tx.tags.tags()}
        if self.version < 0:
            self.start(tx)
        else:
            changes = tx.segments.tag_changes(self.position, sorted(self.gaps))
            if len(changes) > _MAX_REPLAY:
                self.start(tx, stored=False)
            else:
                self.replay(tx, changes)
        self.version = version

    def start(self, tx: Transaction, *, stored: bool = True) -> None:
        if stored and self.load_stored(tx):
            return
        self.position = tx.segments.tag_log_position()
        self.bitmaps, self.loaded, self.gaps, self.unsaved = {}, set(), {}, 0

    def get(self, tx: Transaction, tag_id: int) -> BitMap:
        """The tag's bitmap, read from the rows (in ``tx``'s view) if not loaded yet."""
        bitmap = self.bitmaps.get(tag_id)
        if bitmap is not None:
            return bitmap
        if self.loaded is None or tag_id in self.loaded:
            return BitMap()
        bitmap = self.bitmaps[tag_id] = BitMap(tx.segments.tag_holders(tag_id))
        self.loaded.add(tag_id)
        self.unsaved += len(bitmap)
        return bitmap

    def load_all(self, tx: Transaction) -> None:
        if self.loaded is None:
            return
        for tag_id in sorted(set(self.ids.values()) - self.loaded):
            self.get(tx, tag_id)
        self.loaded = None

    def load_stored(self, tx: Transaction) -> bool:
        """Load the bitmaps written back by an earlier process, then catch up with
        the tag history since. A total that disagrees with storage (rows written
        behind siyu's back) falls back to reading the rows."""
        stored = tx.segments.cached_bitmaps()
        if stored is None:
            return False
        raw, items = stored
        try:
            state = json.loads(raw)
            bitmaps = {tag_id: BitMap.deserialize(data) for tag_id, data in items}
            position, gaps = int(state["position"]), [int(p) for p in state.get("gaps", ())]
            tags = state.get("tags")
            loaded = None if tags is None else {int(t) for t in tags}
        except (ValueError, KeyError, TypeError):
            return False
        changes = tx.segments.tag_changes(position, gaps)
        if len(changes) > _MAX_REPLAY:
            return False
        self.bitmaps, self.loaded, self.position = bitmaps, loaded, position
        self.gaps = dict.fromkeys(gaps, time.monotonic())
        self.replay(tx, changes)
        held = sum(len(b) for b in self.bitmaps.values())
        if held != tx.segments.membership_count(None if loaded is None else sorted(loaded)):
            return False
        self.unsaved = len(changes)
        return True

    def state(self) -> str:
        tags = None if self.loaded is None else sorted(self.loaded)
        return json.dumps({"position": self.position, "gaps": sorted(self.gaps), "tags": tags})

    def replay(self, tx: Transaction, changes: list[tuple[int, int, int]]) -> None:
        pairs = {(u, t) for _, u, t in changes}
        held = tx.tags.held(sorted(pairs)) if pairs else set()
        for user_id, tag_id in pairs:
            if self.loaded is not None and tag_id not in self.loaded:
                continue  # read fresh from the rows when first used
            bitmap = self.bitmaps.get(tag_id)
            if (user_id, tag_id) in held:
                if bitmap is None:
                    bitmap = self.bitmaps[tag_id] = BitMap()
                bitmap.add(user_id)
            elif bitmap is not None:
                bitmap.discard(user_id)
        now = time.monotonic()
        seen = {p for p, _, _ in changes}
        self.gaps = {p: t for p, t in self.gaps.items() if p not in seen and now - t < _GAP_TTL}
        top = max(seen, default=self.position)
        missing = [p for p in range(self.position + 1, top) if p not in seen] if top - self.position < 1_000_000 else []
        for p in missing[:10_000]:
            self.gaps[p] = now
        self.unsaved += len(changes)
        self.position = max(self.position, top)


class _Profiles:
    """Attribute and source indexes plus identity bitmaps, from one scan."""

    def __init__(self, tx: Transaction) -> None:
        per_key: dict[str, list[tuple[int, Any]]] = {}
        sources: list[tuple[int, Any]] = []
        for uid, source, attributes in tx.segments.profiles():
            if source is not None:
                sources.append((uid, source))
            for key, value in attributes.items():
                per_key.setdefault(key, []).append((uid, value))
        self.attributes = {key: SortedIndex(pairs) for key, pairs in per_key.items()}
        self.source = SortedIndex(sources)
        kinds: dict[str, list[int]] = {}
        for kind, uid in tx.segments.identity_kinds():
            kinds.setdefault(kind, []).append(uid)
        self.identities = {kind: BitMap(ids) for kind, ids in kinds.items()}


class Evaluation:
    """One query: evaluates nodes against the caches, memoising repeated sub-trees."""

    def __init__(self, engine: Engine, tx: Transaction, now: datetime, text: str) -> None:
        self.engine = engine
        engine.begin(tx)
        self.tx = tx
        self.now = now
        self.text = text
        self.universe = engine.universe(tx)
        self._memo: dict[Node, BitMap] = {}
        self._stack: list[str] = []

    def error(self, message: str, pos: int, expected: str) -> SegmentReferenceError:
        line, column = location(self.text, pos)
        if self._stack:
            message = f"in segment {self._stack[0]!r}: {message}"
        return SegmentReferenceError(message, text=self.text, line=line, column=column, expected=expected)

    def run(self, node: Node) -> BitMap:
        """Users matching ``node`` (a new bitmap the caller may keep)."""
        return self.eval(node) & self.universe

    def eval(self, node: Node) -> BitMap:
        cached = self._memo.get(node)
        if cached is None:
            cached = self._memo[node] = self._eval(node)
        return cached

    def _eval(self, node: Node) -> BitMap:
        if isinstance(node, Tag):
            return self.tag(node)
        if isinstance(node, Not):
            return self.universe - self.eval(node.item)
        if isinstance(node, And):
            positive = [self.eval(i) for i in node.items if not isinstance(i, Not)]
            negative = [self.eval(i.item) for i in node.items if isinstance(i, Not)]
            if not positive:
                positive = [self.universe]
            positive.sort(key=len)
            result = BitMap.intersection(*positive) if len(positive) > 1 else positive[0]
            for other in negative:
                result = result - other
            return result
        if isinstance(node, Or):
            return BitMap.union(*(self.eval(i) for i in node.items))
        if isinstance(node, SegmentRef):
            return self.segment(node)
        if isinstance(node, Has):
            if node.kind not in IDENTITY_KINDS:
                raise self.error(f"unknown identity kind {node.kind!r}", node.pos,
                                 "one of " + ", ".join(sorted(IDENTITY_KINDS)))
            return self.engine.profiles(self.tx).identities.get(node.kind, BitMap())
        assert isinstance(node, Compare)
        return self.compare(node)

    def tag(self, node: Tag) -> BitMap:
        cache = self.engine.tags(self.tx)
        tag_id = cache.ids.get((node.group, node.name))
        if tag_id is None:
            if (node.group, node.name) in self.engine.declared:
                return BitMap()
            raise self.error(f"unknown tag {node.full!r}", node.pos,
                             "an existing tag (ws.tags.names() lists them; ws.tags.define() creates one)")
        return cache.get(self.tx, tag_id)

    def segment(self, node: SegmentRef) -> BitMap:
        saved = self.engine.saved(self.tx)
        if node.name not in saved:
            raise self.error(f"unknown segment {node.name!r}", node.pos,
                             "a saved segment (ws.segments.list() shows them)")
        if node.name in self._stack:
            raise self.error(f"segment {node.name!r} refers to itself", node.pos, "a segment without cycles")
        self._stack.append(node.name)
        try:
            return self.eval(saved[node.name])
        finally:
            self._stack.pop()

    def compare(self, node: Compare) -> BitMap:
        operand, op, value = node.operand, node.op, node.value
        if isinstance(operand, Attr):
            profiles = self.engine.profiles(self.tx)
            index = profiles.attributes.get(operand.key)
            if index is None:
                known = ", ".join(sorted(profiles.attributes)[:20]) or "none yet"
                raise self.error(f"unknown attribute {operand.key!r}", operand.pos,
                                 f"an attribute some user has (known: {known})")
            return index.compare(op, value)
        if isinstance(operand, Source):
            return self.engine.profiles(self.tx).source.compare(op, value)
        if isinstance(operand, DaysSince):
            return self.days_since(node, operand)
        assert isinstance(operand, Metric)
        index = self.engine.metric(self.tx, self.now, operand.name)
        if index is None:
            raise self.error(f"unknown metric {operand.name!r}", operand.pos,
                             "a registered metric (ws.segments.metrics() lists them)")
        if TIME in index.kinds:
            raise self.error(f"{operand.name} is a point in time; compare days_since({operand.name}) instead",
                             operand.pos, f"days_since({operand.name})")
        self.check_kind(node, index)
        return index.compare(op, value)

    def check_kind(self, node: Compare, index: SortedIndex) -> None:
        literals = node.value if isinstance(node.value, tuple) else (node.value,)
        kinds = index.kinds
        for literal in literals:
            kind = kind_of(literal)
            if kinds and kind not in kinds:
                want = "a number" if NUMBER in kinds else "text in quotes" if TEXT in kinds else "true or false"
                raise self.error(f"{to_text(node)}: {literal!r} cannot be compared with this metric's values",
                                 node.pos, want)

    def days_since(self, node: Compare, operand: DaysSince) -> BitMap:
        function = f"{operand.unit}s_since"
        direct = self.engine.metric(self.tx, self.now, f"days_since({operand.name})") \
            if operand.unit == "day" else None
        if direct is not None:
            return direct.compare(node.op, node.value)
        index = self.engine.metric(self.tx, self.now, operand.name)
        if index is None:
            raise self.error(f"unknown metric {operand.name!r}", operand.pos,
                             "a time-valued metric such as last_active, first_seen or last_order")
        if index.kinds - {TIME}:
            raise self.error(f"{operand.name} is not a point in time; compare it directly", operand.pos,
                             operand.name)
        literals = node.value if isinstance(node.value, tuple) else (node.value,)
        for literal in literals:
            if kind_of(literal) != NUMBER:
                raise self.error(f"{function}(...) counts {operand.unit}s; compare it with a number, not {literal!r}",
                                 node.pos, f"a number of {operand.unit}s")
        tz = self.engine.tz
        today = self.now.astimezone(tz).date()

        unit = operand.unit

        def key(value: datetime) -> int:
            # Whole calendar days, weeks or months in the business time zone, negated so that
            # it grows with the instant (the index is sorted by instant).
            day = value.astimezone(tz).date()
            if unit == "week":
                return ((day - timedelta(days=day.weekday())) - (today - timedelta(days=today.weekday()))).days // 7
            if unit == "month":
                return (day.year - today.year) * 12 + day.month - today.month
            return (day - today).days

        flipped: Any = tuple(-v for v in literals) if node.op == "in" else -literals[0]  # type: ignore[operator]
        return index.compare(_FLIP[node.op], flipped, key=key, memo=(today, unit))


class Engine:
    """The per-workspace evaluator and its caches (thread-safe)."""

    def __init__(self, tz: Any, metrics: dict[str, MetricDef],
                 families: dict[str, Callable[[str], MetricDef | None]] | None = None) -> None:
        self.tz = tz
        self.metrics = metrics
        #: Metric families by prefix: ``events`` resolves ``events.page_view`` when first used.
        self.families = {} if families is None else families
        self.lock = threading.RLock()
        self._tags = _TagCache()
        self._universe: tuple[int, BitMap] | None = None
        self._profiles: tuple[int, _Profiles] | None = None
        self._saved: tuple[int, dict[str, Node]] | None = None
        self._metrics: dict[str, tuple[tuple[Any, ...], SortedIndex]] = {}
        self._tentative: Transaction | None = None
        #: ``(group, name)`` of tags that are valid before they exist.
        self.declared: set[tuple[str, str]] = set()

    def begin(self, tx: Transaction) -> None:
        """Called before each evaluation. Caches refreshed inside a write
        transaction hold its uncommitted state; if that transaction did not
        commit (its after-commit hook never ran), drop every cache."""
        if self._tentative is not None and self._tentative is not tx:
            self.reset()
        if tx.write and self._tentative is None:
            self._tentative = tx
            tx.after_commit(lambda: self._committed(tx))
            # A savepoint rolled back inside a transaction that still commits.
            tx.after_rollback(self.reset)

    def _committed(self, tx: Transaction) -> None:
        with self.lock:
            if self._tentative is tx:
                self._tentative = None

    def reset(self) -> None:
        with self.lock:
            self._tentative = None
            self._tags = _TagCache()
            self._universe = self._profiles = self._saved = None
            self._metrics.clear()

    def tags(self, tx: Transaction) -> _TagCache:
        self._tags.refresh(tx, tx.meta.version("tags"))
        return self._tags

    def write_back(self, write: Callable[[Callable[[Transaction], None]], None]) -> bool:
        """Store the tag bitmaps if enough changed since the stored copy; ``write``
        runs a function in a new write transaction. Returns whether it wrote."""
        with self.lock:
            cache = self._tags
            if self._tentative is not None or cache.version < 0 or cache.unsaved < _WRITE_BACK_AFTER:
                return False
            total = sum(len(b) for b in cache.bitmaps.values())
            if total < _WRITE_BACK_MIN:
                return False
            state = cache.state()
            blobs = [(tag_id, bitmap.serialize()) for tag_id, bitmap in sorted(cache.bitmaps.items()) if bitmap]
            cache.unsaved = 0
        write(lambda tx: tx.segments.save_bitmaps(state, iter(blobs)))
        return True

    def preload(self, tx: Transaction) -> None:
        """Load every tag's bitmap now (normally each is loaded on first use)."""
        self.tags(tx).load_all(tx)

    def universe(self, tx: Transaction) -> BitMap:
        version = tx.meta.version("users")
        if self._universe is None or self._universe[0] != version:
            count, top = tx.segments.user_span()
            if count == top:
                # Ids are dense: the universe is a range minus the merged-away users.
                universe = BitMap()
                if top:
                    universe.add_range(1, top + 1)
                universe -= BitMap(tx.segments.user_ids(active=False))
            else:
                universe = BitMap(tx.segments.user_ids())
            self._universe = (version, universe)
        return self._universe[1]

    def profiles(self, tx: Transaction) -> _Profiles:
        version = tx.meta.version("users")
        if self._profiles is None or self._profiles[0] != version:
            self._profiles = (version, _Profiles(tx))
        return self._profiles[1]

    def saved(self, tx: Transaction) -> dict[str, Node]:
        version = tx.meta.version("segments")
        if self._saved is None or self._saved[0] != version:
            self._saved = (version, {s.name: parse(s.expression) for s in tx.segments.all()})
        return self._saved[1]

    def metric(self, tx: Transaction, now: datetime, name: str) -> SortedIndex | None:
        definition = self.metrics.get(name)
        if definition is None:
            prefix, _, rest = name.partition(".")
            family = self.families.get(prefix)
            if family is None or not rest:
                return None
            definition = family(rest)
            if definition is None:
                return None
            self.metrics[name] = definition
        token: tuple[Any, ...] = tuple(tx.meta.version(c) for c in definition.counters)
        if definition.period:
            token += (now.timestamp() // definition.period,)
        cached = self._metrics.get(name)
        if cached is None or cached[0] != token:
            cached = (token, SortedIndex(definition.values(tx, now)))
            self._metrics[name] = cached
        return cached[1]

