"""Staff relations and group members per second, against a raw insert of the same rows.

1. Relations: ``StaffSync.apply_many`` for (member, customer) items as ``batch/get_by_user``
   returns them — 2-3 members per customer — 500 items per write, as ``StaffSync.relations``
   writes them, creating the users and one relation per pair. Baselines: a bare ``INSERT`` of
   each user row and relation row (same columns, same indexes as siyu's tables), one
   transaction per item, and the same in one transaction per 500 items.
2. Callbacks: ``ws.wecom.process_many`` for ``del_follow_user`` events on those relations,
   500 per call (a backlog). Baselines: a bare ``UPDATE`` of the relation row per event, one
   transaction each, and 500 per transaction.
3. Groups: ``ws.groups.save_detail`` for groups of up to 500 members. Baseline: bare
   ``INSERT`` of the group row and its member rows in one transaction per group.

The baseline runs on SQLite with the pragmas siyu's SQLite backend uses (WAL,
synchronous NORMAL); with ``--db`` siyu runs wherever it points, the baseline stays on
SQLite. Both sides end with the same number of rows (checked). siyu does more per item: the
identity lookup, the late-callback and owner rules, the event-log rows, the callback's
de-duplication claim. Goal of the issue: at least 0.3x.

    .venv/bin/python bench/scrm.py [--db URL] [--scale 0.1]
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import check_equal, parse_args, ratio_line, scaled, temp_dir, timed, workspace_url

import siyu
from siyu.channels.wecom import ContactEvent
from siyu.staff.sync import StaffSync
from siyu.testing import FakeClock

START = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
BATCH = 500  # items per write, as StaffSync.relations writes them
BASELINE_DDL = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, external TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL)",
    "CREATE TABLE staff_relations (user_id INTEGER NOT NULL, staff TEXT NOT NULL, status TEXT NOT NULL, "
    "remark TEXT NOT NULL, tags TEXT NOT NULL, add_way INTEGER, state TEXT, since INTEGER NOT NULL, "
    "changed_at INTEGER NOT NULL, PRIMARY KEY (user_id, staff))",
    "CREATE INDEX staff_relations_staff ON staff_relations (staff, status, user_id)",
    "CREATE TABLE chats (chat_id TEXT PRIMARY KEY, owner TEXT NOT NULL, version TEXT NOT NULL)",
    "CREATE TABLE chat_members (chat_id TEXT NOT NULL, member_id TEXT NOT NULL, type INTEGER NOT NULL, "
    "user_id INTEGER, joined_at INTEGER, PRIMARY KEY (chat_id, member_id))",
    "CREATE INDEX chat_members_user ON chat_members (user_id)",
]


def items(customers: int) -> list[tuple[dict[str, object], dict[str, object]]]:
    out = []
    for i in range(customers):
        for m in range(2 + i % 2):
            out.append(({"external_userid": f"wm{i:07}"},
                        {"userid": f"staff{(i + m) % 50:02}", "remark": "", "add_way": 1, "state": "qr",
                         "createtime": 1_795_000_000 + i, "tag_id": []}))
    return out


def group_details(groups: int, size: int) -> list[dict[str, object]]:
    return [{"chat_id": f"wr{g:05}", "name": f"群{g}", "owner": f"staff{g % 50:02}", "member_version": "v1",
             "member_list": [{"userid": f"wm{(g * 97 + k) % 10_000_000:07}", "type": 2,
                              "join_time": 1_795_000_000, "join_scene": 3} for k in range(size)]}
            for g in range(groups)]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    customers = scaled(100_000, args.scale, minimum=20)
    groups = scaled(2_000, args.scale, minimum=2)
    size = min(500, scaled(500, args.scale ** 0.5, minimum=5))
    rows = items(customers)
    details = group_details(groups, size)
    with temp_dir() as directory:
        clock = FakeClock(START)
        with siyu.connect(workspace_url(args, directory), clock=clock, delivery="worker") as ws:
            sync = StaffSync(ws.staff, ws.users, None)  # type: ignore[arg-type]
            with timed(len(rows)) as siyu_sync:
                for start in range(0, len(rows), BATCH):
                    sync.apply_many(rows[start : start + BATCH])
            events = [ContactEvent.from_xml(
                f"<xml><CreateTime>{1_795_400_000 + n}</CreateTime><Event><![CDATA[change_external_contact]]>"
                f"</Event><ChangeType><![CDATA[del_follow_user]]></ChangeType><UserID><![CDATA[{f['userid']}]]>"
                f"</UserID><ExternalUserID><![CDATA[{c['external_userid']}]]></ExternalUserID></xml>")
                for n, (c, f) in enumerate(rows[: len(rows) // 2])]
            outcomes: list[str] = []
            with timed(len(events)) as siyu_events:
                for start in range(0, len(events), BATCH):
                    outcomes += ws.wecom.process_many(events[start : start + BATCH])
            check_equal("callback errors", [o for o in outcomes if o.startswith("error")], [])
            with timed(sum(len(d["member_list"]) for d in details)) as siyu_groups:  # type: ignore[arg-type]
                for detail in details:
                    ws.groups.save_detail(detail)
            relation_count = sum(ws.staff.relation_counts().values())
            member_count = sum(ws.groups.sizes().values())
        base = sqlite3.connect(directory / "baseline.db", isolation_level=None)
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):  # siyu's settings
            base.execute(f"PRAGMA {pragma}")
        for ddl in BASELINE_DDL:
            base.execute(ddl)
        ids: dict[object, int] = {}

        def insert(batch: list[tuple[dict[str, object], dict[str, object]]]) -> None:
            base.execute("BEGIN IMMEDIATE")
            for contact, follow in batch:
                ext = contact["external_userid"]
                if ext not in ids:
                    ids[ext] = base.execute("INSERT INTO users (external, created_at) VALUES (?, ?) RETURNING id",
                                            (ext, 0)).fetchone()[0]
                base.execute("INSERT INTO staff_relations VALUES (?, ?, 'active', '', '[]', 1, 'qr', ?, ?)",
                             (ids[ext], follow["userid"], follow["createtime"], follow["createtime"]))
            base.execute("COMMIT")

        def delete(batch: list[tuple[dict[str, object], dict[str, object]]]) -> None:
            base.execute("BEGIN IMMEDIATE")
            for contact, follow in batch:
                base.execute("UPDATE staff_relations SET status = 'deleted_by_customer' "
                             "WHERE user_id = ? AND staff = ?", (ids[contact["external_userid"]], follow["userid"]))
            base.execute("COMMIT")

        def reset() -> None:
            base.execute("DELETE FROM staff_relations")
            base.execute("DELETE FROM users")
            ids.clear()

        with timed(len(rows)) as raw_sync_batched:
            for start in range(0, len(rows), BATCH):
                insert(rows[start : start + BATCH])
        with timed(len(events)) as raw_events_batched:
            for start in range(0, len(events), BATCH):
                delete(rows[: len(rows) // 2][start : start + BATCH])
        reset()
        with timed(len(rows)) as raw_sync:
            for item in rows:
                insert([item])
        with timed(len(events)) as raw_events:
            for item in rows[: len(rows) // 2]:
                delete([item])
        with timed(siyu_groups.count) as raw_groups:
            for detail in details:
                base.execute("BEGIN IMMEDIATE")
                base.execute("INSERT INTO chats VALUES (?, ?, ?)", (detail["chat_id"], detail["owner"], "v1"))
                base.executemany("INSERT INTO chat_members VALUES (?, ?, 2, ?, 1795000000)",
                                 [(detail["chat_id"], m["userid"], ids.get(m["userid"]))
                                  for m in detail["member_list"]])  # type: ignore[attr-defined]
                base.execute("COMMIT")
        raw_active = base.execute("SELECT COUNT(*) FROM staff_relations WHERE status = 'active'").fetchone()[0]
        raw_members = base.execute("SELECT COUNT(*) FROM chat_members").fetchone()[0]
        base.close()
    check_equal("active relations", relation_count, raw_active)
    check_equal("group members", member_count, raw_members)
    print(ratio_line("relations synced", siyu_sync, raw_sync, "one transaction per item; goal 0.3x"))
    print(ratio_line("relations synced", siyu_sync, raw_sync_batched, f"{BATCH} per transaction on both sides"))
    print(ratio_line("del_follow_user callbacks", siyu_events, raw_events, "one transaction per event; goal 0.3x"))
    print(ratio_line("del_follow_user callbacks", siyu_events, raw_events_batched,
                     f"{BATCH} per transaction on both sides"))
    print(ratio_line("group members stored", siyu_groups, raw_groups, "goal 0.3x"))


if __name__ == "__main__":
    main()
