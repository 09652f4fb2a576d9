"""Helpers for the center's processes: the item catalogue, policies, case numbers and the
national 1-15 case status codes (办理状态)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.runtime import clock, work_orders
from engine.runtime.catalog import CatalogProvider
from engine.runtime.deadlines import Notes, current
from engine.store.sequences import next_value

STATUS_NAMES = {
    1: "已接件",
    2: "已撤件",
    3: "已受理",
    4: "不受理",
    5: "不予受理",
    6: "补正（开始）",
    7: "补正（结束）",
    8: "部门开始办理",
    9: "特别程序（开始）",
    10: "特别程序（结束）",
    11: "办结（通过）",
    12: "办结（容缺通过）",
    13: "办结（不通过）",
    14: "撤回",
    15: "撤销",
}


class CaseHelpers:
    def __init__(self, catalog: CatalogProvider, tz: Any) -> None:
        self.catalog = catalog
        self.tz = tz

    def namespace(self) -> dict[str, Any]:
        return {
            "catalog_item": self.catalog_item,
            "policy": self.policy,
            "assign_case_number": self.assign_case_number,
            "case_status": self.case_status,
            "assign_work_order_number": self.assign_work_order_number,
            "work_order": self.work_order,
            "case_item": self.case_item,
        }

    def catalog_item(self, code: str) -> dict[str, Any]:
        """The catalogue entry of an item (promised working days, materials, levels, ...)."""
        try:
            return self.catalog.item(str(code))
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None

    def policy(self, key: str, default: Any = None) -> Any:
        try:
            return self.catalog.policy(str(key), default)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None

    def assign_case_number(self) -> str:
        """A new case number, `<12-digit region><yyyymmdd><6-digit serial of the day>`, which
        also becomes the case's business key."""
        notes = self._notes("case numbers can be assigned")
        day = clock.now().astimezone(self.tz).strftime("%Y%m%d")
        region = str(self.policy("region_code", "000000000000"))
        number = f"{region}{day}{next_value(notes.session, f'case:{day}'):06d}"
        notes.business_key = number
        return number

    @staticmethod
    def _notes(what: str) -> Notes:
        notes = current()
        if notes is None or notes.session is None:
            raise RuntimeError(f"{what} only while a case runs")
        return notes

    def assign_work_order_number(self) -> str:
        """A new work order number, `ZG<yyyymmdd><4-digit serial>`, also the business key."""
        notes = self._notes("work order numbers can be assigned")
        today = clock.now().astimezone(self.tz).date()
        number = work_orders.new_number(notes.session, today)
        notes.business_key = notes.work_order_number = number
        return number

    def work_order(self, **fields: Any) -> None:
        """Record facts about the case's rectification work order (status, department,
        category, ...) for the problem list; see engine/runtime/work_orders.py."""
        self._notes("a work order can be recorded").work_orders.append(
            work_orders.check_fields(dict(fields))
        )

    def case_item(self, code: str, due: Any = None) -> str:
        """Record which catalogue item the case serves and the moment it is promised by (call
        again when a pause moves it); the case's 办结 status then yields the item's figures."""
        if due is not None and not isinstance(due, datetime):
            raise ValueError("case_item(code, due): due must be a datetime, e.g. workdays(3)")
        self._notes("a case item can be recorded").case_items.append((str(code), due))
        return str(code)

    def case_status(self, code: int, note: str = "") -> int:
        """Record that the case reached status `code` (1-15)."""
        value = int(code)
        if value not in STATUS_NAMES:
            raise ValueError(f"case status {code!r} is not one of the national codes 1-15")
        notes = current()
        if notes is None:
            raise RuntimeError("a case status can only be recorded while a case runs")
        notes.statuses.append((value, str(note)))
        return value
