"""Importing customers from a CSV file (the engine behind ``siyu users import``).

Columns: ``phone``, ``email``, ``wechat_unionid``, ``wechat_openid`` (with
``app``), ``wecom_external_userid`` (several separated by ``;``),
``source``, ``campaign``, ``state``, ``tags`` (``;``-separated
``group/name``), and ``attr.NAME`` for each attribute. Empty cells are
absent values. Rows go to ``ws.users.add_many`` and ``ws.tags.apply_many``
in batches, all inside one write transaction: either every good row is
imported or, when a row is bad and ``skip_invalid`` is off, none is.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import SiyuError, ValidationError
from ..identities import normalize_phone, sms_reachable
from ..services.tags import split_tag
from ..workspace import Workspace

__all__ = ["COLUMNS", "BadRow", "ImportAborted", "ImportResult", "import_users", "read_rows"]

#: Plain columns; ``attr.NAME`` columns come on top.
COLUMNS = (
    "phone",
    "email",
    "wechat_unionid",
    "wechat_openid",
    "app",
    "wecom_external_userid",
    "source",
    "campaign",
    "state",
    "tags",
)
_ROW_ERROR = re.compile(r"^row (\d+): (.*)$", re.DOTALL)


@attrs.frozen
class BadRow:
    """A row that was not imported: its line in the file and why."""

    line: int
    reason: str


@attrs.frozen
class ImportResult:
    """``user_ids`` per imported row; with ``update``, who was created, updated
    (profile, identities or new tags) and left unchanged, each user once."""

    user_ids: list[int]
    bad: list[BadRow]
    tags_applied: int
    created: list[int] = attrs.field(factory=list)
    updated: list[int] = attrs.field(factory=list)
    unchanged: list[int] = attrs.field(factory=list)
    #: File lines of imported rows whose phone SMS cannot reach (a landline, a 400/800 number).
    no_sms: list[int] = attrs.field(factory=list)


class ImportAborted(ValidationError):
    """Some rows were bad and nothing was imported (``bad`` lists them)."""

    def __init__(self, message: str, bad: list[BadRow]) -> None:
        super().__init__(message)
        self.bad = bad


@attrs.frozen
class _Row:
    line: int
    fields: dict[str, Any]
    tags: list[str]


def _check_header(header: list[str] | None, path: Path) -> None:
    if not header:
        raise ValidationError(f"{path} is empty; the first line must name the columns, e.g. phone,source,tags")
    unknown = [c for c in header if c not in COLUMNS and not (c.startswith("attr.") and len(c) > 5)]
    if unknown:
        raise ValidationError(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; columns are {', '.join(COLUMNS)} "
            "and attr.NAME for attributes"
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValidationError(f"{path}: column(s) {', '.join(dupes)} appear more than once; keep one of each")


def _parse(line: int, raw: Mapping[str, str | None]) -> _Row | BadRow:
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    tags: list[str] = []
    for column, value in raw.items():
        if column is None:
            return BadRow(line, "more cells than columns; quote values that contain commas")
        text = (value or "").strip()
        if not text:
            continue
        if column.startswith("attr."):
            attributes[column[5:]] = text
        elif column == "tags":
            tags = [t.strip() for t in text.split(";") if t.strip()]
        elif column == "wecom_external_userid":
            ids = [t.strip() for t in text.split(";") if t.strip()]
            fields[column] = ids if len(ids) > 1 else ids[0]
        else:
            fields[column] = text
    for tag in tags:
        try:
            split_tag(tag)
        except SiyuError as exc:
            return BadRow(line, f"tag {tag!r}: {exc}")
    if attributes:
        fields["attributes"] = attributes
    if not any(k in fields for k in ("phone", "email", "wechat_unionid", "wechat_openid", "wecom_external_userid")):
        return BadRow(
            line, "no identity: give at least one of phone, email, wechat_unionid, wechat_openid, wecom_external_userid"
        )
    return _Row(line, fields, tags)


def read_rows(path: Path, encoding: str = "utf-8-sig") -> Iterator[_Row | BadRow]:
    """Parse the file; yields good rows and :class:`BadRow` for unparseable ones."""
    try:
        handle = path.open(newline="", encoding=encoding)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
    except LookupError:  # unknown, or not a text encoding (base64, rot13 ...)
        raise ValidationError(
            f"--encoding {encoding!r} is not a text encoding Python knows; use utf-8 (the default, utf-8-sig, "
            "also skips a BOM) or gb18030 for Excel exports"
        ) from None
    with handle:
        # strict: a quote left open runs to the end of the file, which the lenient
        # reader would silently import as one huge value.
        reader = csv.DictReader(handle, strict=True)
        started = 1  # the line where the record being read begins
        try:
            _check_header(list(reader.fieldnames or []), path)
            started = reader.line_num + 1
            for raw in reader:
                started = reader.line_num + 1
                if not any((v or "").strip() for k, v in raw.items() if k is not None):
                    continue
                yield _parse(reader.line_num, raw)
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{path} is not {encoding} text ({exc.reason}); save it as UTF-8 or pass --encoding gb18030"
            ) from None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise ValidationError(
                    f"{path}, line {started}: a quoted value opened on this line is never closed (the file ends "
                    "inside it); add the closing \" or remove the stray one. Nothing was imported"
                ) from None
            raise ValidationError(
                f"{path}, line {started}: {exc}; check the quoting (a value with a \" must be quoted, "
                "and the \" inside doubled: \"a \"\"b\"\" c\"). Nothing was imported"
            ) from None


def _in_lines(reason: str, lines: list[int]) -> str:
    """The service counts rows within a batch; people think in file lines."""
    return re.sub(r"\brow (\d+)\b", lambda m: f"line {lines[int(m.group(1))]}", reason)


def import_users(
    ws: Workspace,
    rows: list[_Row | BadRow],
    *,
    by: str,
    skip_invalid: bool = False,
    update: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import parsed rows in batches inside one transaction.

    A batch that ``add_many`` (``upsert_many`` with ``update``) refuses names
    the offending row; that row is set aside and the rest of the batch is tried
    again, so every bad row is found in one pass. Without ``skip_invalid`` any
    bad row raises :class:`ImportAborted` and the transaction rolls back.
    """
    bad = [r for r in rows if isinstance(r, BadRow)]
    good = [r for r in rows if isinstance(r, _Row)]
    user_ids: list[int] = []
    created: set[int] = set()
    updated: set[int] = set()
    unchanged: set[int] = set()
    tagged: set[int] = set()
    no_sms: list[int] = []
    tags_applied = 0
    with ws.write():
        for start in range(0, len(good), batch_size):
            batch = good[start : start + batch_size]
            while batch:
                try:
                    if update:
                        outcome = ws.users.upsert_many([r.fields for r in batch])
                        ids = outcome.ids
                    else:
                        ids = ws.users.add_many([r.fields for r in batch])
                except SiyuError as exc:
                    match = _ROW_ERROR.match(str(exc))
                    if match is None:
                        raise
                    index = int(match.group(1))
                    reason = _in_lines(match.group(2), [r.line for r in batch])
                    bad.append(BadRow(batch[index].line, reason))
                    del batch[index]
                    continue
                if update:
                    # A user created by an earlier batch and matched again stays "created".
                    created.update(outcome.created)
                    updated.update(u for u in outcome.updated if u not in created)
                    unchanged.update(u for u in outcome.unchanged if u not in created | updated)
                else:
                    created.update(ids)
                by_tag: dict[str, list[int]] = {}
                for uid, row in zip(ids, batch, strict=True):
                    for tag in row.tags:
                        by_tag.setdefault(tag, []).append(uid)
                for tag, uids in by_tag.items():
                    before = set(ws.tags.users(tag)) if update and tag in ws.tags.names() else set()
                    applied = ws.tags.apply_many(uids, tag, by=by)
                    tags_applied += applied
                    if update and applied:
                        tagged.update(u for u in uids if u not in before)
                user_ids.extend(ids)
                no_sms.extend(r.line for r in batch if not _sms_reachable(r.fields.get("phone")))
                break
            if progress is not None:
                progress(min(batch_size, len(good) - start))
        bad.sort(key=lambda b: b.line)
        if bad and not skip_invalid:
            raise ImportAborted(
                f"{len(bad)} bad row(s), nothing imported; fix them or pass --skip-invalid to import the good rows", bad
            )
    updated |= (tagged & unchanged)
    unchanged -= tagged
    return ImportResult(
        user_ids=user_ids, bad=bad, tags_applied=tags_applied, created=sorted(created),
        updated=sorted(updated), unchanged=sorted(unchanged), no_sms=sorted(no_sms),
    )


_MOBILE = re.compile(r"^(?:\+?86|0086)?1\d{10}$")


def _sms_reachable(phone: object) -> bool:
    """Whether SMS can reach the phone of a row (no phone: nothing to warn about)."""
    if not isinstance(phone, str) or _MOBILE.match(re.sub(r"[\s\-().]", "", phone)):
        return True  # the common case, a mainland mobile, without parsing
    try:
        return sms_reachable(normalize_phone(phone))
    except SiyuError:
        return True  # an invalid phone was reported as a bad row already
