"""Importing problem ledgers (台账) from CSV or XLSX into rectification cases.

The rule is all or nothing: every row is checked first, and a file with any bad row is refused
with each bad row's line and reason; a good file starts one `rectification` case per row in a
single transaction, so an import is never half done.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.accounts.actor import Actor
from engine.errors import Forbidden, InvalidInput
from engine.runtime import clock
from engine.store.models import Department, WorkOrder

if TYPE_CHECKING:
    from engine.app import Govflow

PROCESS_KEY = "rectification"
MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024
HEADERS = {
    "window": "window",
    "窗口": "window",
    "department": "department",
    "部门": "department",
    "description": "description",
    "问题描述": "description",
    "contact": "contact",
    "联系方式": "contact",
    "reported_on": "reported_on",
    "日期": "reported_on",
}
FIELDS = ("window", "department", "description", "contact", "reported_on")
LIMITS = {"window": 100, "department": 64, "description": 4000, "contact": 200}


@dataclass
class LedgerRow:
    line: int
    values: dict[str, Any]


def _rows_from_csv(data: bytes, source: str) -> list[tuple[int, list[Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise InvalidInput(f"{source}: not UTF-8 or GB18030 text")
    reader = csv.reader(io.StringIO(text, newline=""))
    return [(reader.line_num, row) for row in reader]


def _rows_from_xlsx(data: bytes, source: str) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook  # parses its XML through defusedxml

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise InvalidInput(f"{source}: not a readable XLSX workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        rows = []
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            rows.append((number, list(row)))
            if number > MAX_ROWS + 1:
                break
        return rows
    finally:
        book.close()


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip().replace("/", "-").replace(".", "-")
    for fmt in ("%Y-%m-%d", "%Y年%m月%d日"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"日期/reported_on {value!r} is not a date (YYYY-MM-DD)")


def parse(data: bytes, source: str, departments: set[str], today: date) -> list[LedgerRow]:
    """Rows of a ledger file; InvalidInput lists every bad row as {file, line, message}."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"{source}: larger than {MAX_BYTES // (1024 * 1024)} MB")
    is_xlsx = source.lower().endswith(".xlsx") or data[:2] == b"PK"
    table = _rows_from_xlsx(data, source) if is_xlsx else _rows_from_csv(data, source)
    table = [(line, row) for line, row in table if any(str(c or "").strip() for c in row)]
    if not table:
        raise InvalidInput(f"{source}: the file is empty")
    header_line, header = table[0]
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = HEADERS.get(str(title or "").strip().lower()) or HEADERS.get(str(title or "").strip())
        if key:
            columns[key] = index
    missing = [f for f in FIELDS if f not in columns]
    if missing:
        raise InvalidInput(
            f"{source}: missing column(s) {', '.join(missing)}",
            [{"file": source, "line": header_line, "message": f"missing {', '.join(missing)}"}],
        )
    if len(table) - 1 > MAX_ROWS:
        raise InvalidInput(f"{source}: more than {MAX_ROWS} rows; split the file")
    rows: list[LedgerRow] = []
    problems: list[dict[str, Any]] = []
    for line, raw in table[1:]:
        cells = {f: raw[columns[f]] if columns[f] < len(raw) else None for f in FIELDS}
        reasons: list[str] = []
        values: dict[str, Any] = {}
        for field in ("window", "department", "description", "contact"):
            text = str(cells[field] if cells[field] is not None else "").strip()
            if not text:
                reasons.append(f"{field} is empty")
            elif len(text) > LIMITS[field]:
                reasons.append(f"{field} is longer than {LIMITS[field]} characters")
            values[field] = text
        if values.get("department") and values["department"] not in departments:
            reasons.append(f"department {values['department']!r} is not a department code")
        try:
            reported = _date(cells["reported_on"])
            if reported > today:
                reasons.append(f"reported_on {reported.isoformat()} is in the future")
            values["reported_on"] = reported.isoformat()
        except ValueError as exc:
            reasons.append(str(exc))
        if reasons:
            problems.append({"file": source, "line": line, "message": "; ".join(reasons)})
        else:
            rows.append(LedgerRow(line, values))
    if problems:
        raise InvalidInput(
            f"{len(problems)} bad row(s) in {source}; nothing was imported", problems
        )
    return rows


def import_file(govflow: Govflow, actor: Actor, data: bytes, source: str) -> dict[str, Any]:
    """Check the whole file, then start one rectification case per row, all in one go."""
    if not (actor.has_role("ops", "admin") or "center" in actor.departments):
        raise Forbidden("importing a ledger needs the ops role or a clerk of the center")
    calendar = govflow.services.calendars.get()
    with govflow.database.read_session() as session:
        departments = set(session.scalars(select(Department.code)))
    rows = parse(data, source, departments, calendar.today(clock.now()))
    batch = [{"source": "ledger", "origin_case": "", **row.values} for row in rows]
    instances = govflow.runner.start_many(PROCESS_KEY, actor, batch)
    ids = [i.id for i in instances]
    with govflow.database.read_session() as session:
        numbers = dict(
            session.execute(
                select(WorkOrder.instance_id, WorkOrder.number).where(
                    WorkOrder.instance_id.in_(ids)
                )
            ).all()
        )
    return {
        "imported": len(ids),
        "work_orders": [
            {"line": row.line, "instance_id": i, "number": numbers.get(i)}
            for row, i in zip(rows, ids, strict=True)
        ],
    }
