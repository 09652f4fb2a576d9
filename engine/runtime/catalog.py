"""The item catalogue (事项目录) and the configurable policies, as processes read them.

Both are data, not code: seeded from processes/catalog/ on first run, importable and editable
by ops, and cached per process with a version check (as the calendar is).
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time as _time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.runtime import clock
from engine.store.db import Database
from engine.store.models import CatalogItem, Department, Policy, Sequence

VERSION_KEY = "catalog_version"
ITEM_COLUMNS = (
    "code",
    "name",
    "department",
    "promised_workdays",
    "approval_levels",
    "certificate",
    "fee_amount",
    "required_materials",
    "optional_materials",
    "rongque_allowed",
)


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def normalise_item(row: dict[str, Any]) -> dict[str, Any]:
    """One catalogue entry from TSV text or JSON; ValueError says which field is wrong."""
    code = str(row.get("code") or "").strip()
    if not code:
        raise ValueError("code is empty")
    name = str(row.get("name") or "").strip()
    department = str(row.get("department") or "").strip()
    if not name or not department:
        raise ValueError("name and department are required")
    try:
        days = int(row["promised_workdays"])
        levels = int(row["approval_levels"])
        fee = float(row.get("fee_amount") or 0)
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            "promised_workdays, approval_levels and fee_amount must be numbers"
        ) from None
    if days < 1 or levels not in (1, 2) or fee < 0:
        raise ValueError(
            "promised_workdays must be >= 1, approval_levels 1 or 2 and fee_amount >= 0"
        )
    materials = {}
    for key in ("required_materials", "optional_materials"):
        value = row.get(key) or []
        materials[key] = _split(value) if isinstance(value, str) else [str(v) for v in value]
    rongque = row.get("rongque_allowed")
    if isinstance(rongque, str):
        rongque = rongque.strip().lower() in ("yes", "true", "1", "是")
    if rongque and not materials["optional_materials"]:
        raise ValueError("rongque_allowed needs at least one optional material")
    return {
        "code": code,
        "name": name,
        "department": department,
        "promised_workdays": days,
        "approval_levels": levels,
        "certificate": str(row.get("certificate") or "").strip() or None,
        "fee_amount": fee,
        **materials,
        "rongque_allowed": bool(rongque),
    }


def parse_items_tsv(text: str, source: str = "items.tsv") -> list[dict[str, Any]]:
    """Catalogue rows from TSV; every bad row is reported with its line and reason."""
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    missing = [c for c in ITEM_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"{source}: missing columns {', '.join(missing)}")
    items: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        try:
            item = normalise_item(row)
            if item["code"] in seen:
                raise ValueError(f"code {item['code']!r} is repeated")
            seen.add(item["code"])
            items.append(item)
        except ValueError as exc:
            problems.append({"file": source, "line": line, "message": str(exc)})
    if problems:
        raise InvalidInput(
            f"{len(problems)} bad row(s) in {source}; nothing was imported", problems
        )
    return items


BUNDLE_KIND = "one-thing"
BUNDLE_COLUMNS = (
    "code",
    "name",
    "category",
    "lead_department",
    "co_departments",
    "promised_workdays",
    "flow",
    "stages",
    "steps",
    "required_materials",
    "form_fields",
    "process",
)


def normalise_bundle(row: dict[str, Any]) -> dict[str, Any]:
    """One "one thing" bundle. `stages` runs left to right (`a > b,c > d`: a, then b and c in
    parallel, then d); `steps` names each department's part (`amr:设立登记;tax:...`)."""
    from engine.runtime.bundle_forms import unknown_fields

    code = str(row.get("code") or "").strip()
    name = str(row.get("name") or "").strip()
    lead = str(row.get("lead_department") or "").strip()
    if not code or not name or not lead:
        raise ValueError("code, name and lead_department are required")
    try:
        days = float(row["promised_workdays"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("promised_workdays must be a number (0.5 for half a day)") from None
    if days <= 0 or days > 365:
        raise ValueError("promised_workdays must be more than 0 and at most 365")
    flow = str(row.get("flow") or "").strip()
    if flow not in ("parallel", "sequential", "mixed"):
        raise ValueError("flow must be parallel, sequential or mixed")
    stages = [
        [d.strip() for d in group.split(",") if d.strip()]
        for group in str(row.get("stages") or "").split(">")
    ]
    if not stages or any(not group for group in stages):
        raise ValueError("stages must look like `amr > police,tax` with no empty stage")
    departments = list(dict.fromkeys(d for group in stages for d in group))
    steps: dict[str, str] = {}
    for part in _split(str(row.get("steps") or "")):
        dept, _, label = part.partition(":")
        steps[dept.strip()] = label.strip() or "办理"
    fields = _split(str(row.get("form_fields") or ""))
    unknown = unknown_fields(fields)
    if unknown:
        raise ValueError(f"form_fields has unknown field(s) {', '.join(unknown)}")
    for needed in ("applicant_name", "phone"):
        if needed not in fields:
            raise ValueError(f"form_fields must include {needed} (the pickup notice goes there)")
    return {
        "code": code,
        "name": name,
        "category": str(row.get("category") or "").strip(),
        "department": lead,
        "lead_department": lead,
        "co_departments": [d for d in departments if d != lead],
        "departments": departments,
        "promised_workdays": int(days) if days == int(days) else days,
        "flow": flow,
        "stages": stages,
        "steps": {d: steps.get(d, "办理") for d in departments},
        "required_materials": _split(str(row.get("required_materials") or "")),
        "optional_materials": [],
        "form_fields": fields,
        "process": str(row.get("process") or "one_thing_stages").strip(),
        "approval_levels": 1,
        "certificate": None,
        "fee_amount": 0.0,
        "rongque_allowed": False,
    }


def parse_bundles_tsv(text: str, source: str = "bundles.tsv") -> list[dict[str, Any]]:
    """Bundle rows from TSV; every bad row is reported with its line and reason."""
    reader = csv.DictReader(io.StringIO(text), delimiter="\t")
    missing = [c for c in BUNDLE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"{source}: missing columns {', '.join(missing)}")
    bundles: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        try:
            bundle = normalise_bundle(row)
            if bundle["code"] in seen:
                raise ValueError(f"code {bundle['code']!r} is repeated")
            seen.add(bundle["code"])
            bundles.append(bundle)
        except ValueError as exc:
            problems.append({"file": source, "line": line, "message": str(exc)})
    if problems:
        raise InvalidInput(
            f"{len(problems)} bad row(s) in {source}; nothing was imported", problems
        )
    return bundles


def _bump(session: Session) -> None:
    row = session.get(Sequence, VERSION_KEY)
    if row is None:
        session.add(Sequence(name=VERSION_KEY, value=1))
    else:
        row.value += 1


def store_items(session: Session, items: list[dict[str, Any]], kind: str = "item") -> int:
    """Insert or replace catalogue entries; every department they name must exist."""
    departments = set(session.scalars(select(Department.code)))
    named = {d for i in items for d in [i["department"], *i.get("departments", [])]}
    unknown = sorted(named - departments)
    if unknown:
        raise InvalidInput(f"unknown department code(s): {', '.join(unknown)}")
    now = clock.now()
    for item in items:
        row = session.get(CatalogItem, item["code"])
        if row is None:
            row = CatalogItem(code=item["code"])
            session.add(row)
        row.kind, row.name, row.department, row.data, row.updated_at = (
            kind,
            item["name"],
            item["department"],
            item,
            now,
        )
    _bump(session)
    session.flush()
    return len(items)


def seed(session: Session, folder: Path) -> int:
    """Add the items of processes/catalog/items.tsv and the policies of policies.json that the
    database lacks; what ops changed is never overwritten. Returns how many items were added."""
    added = 0
    items_file = folder / "items.tsv"
    if items_file.is_file():
        existing = set(session.scalars(select(CatalogItem.code)))
        items = parse_items_tsv(items_file.read_text(encoding="utf-8"), str(items_file))
        missing = [i for i in items if i["code"] not in existing]
        if missing:
            added = store_items(session, missing)
    bundles_file = folder / "bundles.tsv"
    if bundles_file.is_file():
        existing = set(session.scalars(select(CatalogItem.code)))
        bundles = parse_bundles_tsv(bundles_file.read_text(encoding="utf-8"), str(bundles_file))
        missing = [b for b in bundles if b["code"] not in existing]
        if missing:
            added += store_items(session, missing, kind=BUNDLE_KIND)
    policies_file = folder / "policies.json"
    if policies_file.is_file():
        existing = set(session.scalars(select(Policy.key)))
        defaults = json.loads(policies_file.read_text(encoding="utf-8"))
        new = {k: v for k, v in defaults.items() if k not in existing}
        for key, value in new.items():
            session.add(Policy(key=key, value=value))
        if new:
            _bump(session)
    return added


def set_policy(session: Session, key: str, value: Any) -> None:
    row = session.get(Policy, key)
    if row is None:
        session.add(Policy(key=key, value=value, updated_at=clock.now()))
    else:
        row.value, row.updated_at = value, clock.now()
    _bump(session)


def item_to_dict(row: CatalogItem) -> dict[str, Any]:
    return {
        **row.data,
        "code": row.code,
        "kind": row.kind,
        "name": row.name,
        "department": row.department,
    }


class CatalogProvider:
    """Catalogue items and policies for one process, reloaded when their version changes."""

    def __init__(self, database: Database, recheck_s: float = 10.0) -> None:
        self.database = database
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self._policies: dict[str, Any] = {}
        self._version: int | None = None
        self._checked = 0.0

    def invalidate(self) -> None:
        with self._lock:
            self._checked, self._version = 0.0, None

    def _refresh(self) -> None:
        with self._lock:
            if self._version is not None and _time.monotonic() - self._checked < self.recheck_s:
                return
            with self.database.read_session() as session:
                row = session.get(Sequence, VERSION_KEY)
                version = row.value if row else 0
                if version != self._version:
                    self._items = {
                        r.code: item_to_dict(r) for r in session.scalars(select(CatalogItem))
                    }
                    self._policies = {p.key: p.value for p in session.scalars(select(Policy))}
                    self._version = version
            self._checked = _time.monotonic()

    def item(self, code: str) -> dict[str, Any]:
        self._refresh()
        if code not in self._items:
            raise KeyError(f"no catalogue item {code!r}")
        return dict(self._items[code])

    def items(self) -> list[dict[str, Any]]:
        self._refresh()
        return [dict(v) for _, v in sorted(self._items.items())]

    def policy(self, key: str, default: Any = None) -> Any:
        self._refresh()
        if key not in self._policies and default is None:
            raise KeyError(f"no policy {key!r}; set it with `govflow policy set {key} VALUE`")
        return self._policies.get(key, default)


def _workdays(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 60


POLICY_TYPES: dict[str, str] = {
    "region_code": "a 12-digit administrative division code",
    "rating_default_level": "a whole number from 1 to 5",
}
_POLICY_CHECKS: dict[str, Any] = {
    "region_code": lambda v: isinstance(v, str) and len(v) == 12 and v.isdigit(),
    "rating_default_level": lambda v: v in (1, 2, 3, 4, 5) and not isinstance(v, bool),
}


def policy_problem(key: str, value: Any) -> str | None:
    """What is wrong with a policy value, if anything: known policies have a shape and a key
    ending in _workdays is a count of working days from 1 to 60."""
    if key.endswith("_workdays"):
        return None if _workdays(value) else "a whole number of working days from 1 to 60"
    check = _POLICY_CHECKS.get(key)
    if check is None or check(value):
        return None
    return POLICY_TYPES[key]
