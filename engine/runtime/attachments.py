"""Files attached to task forms: stored once, referenced from the case data by id.

The case data holds only `{id, filename, size, media_type, sha256}`, so instance documents
stay small and the file is served with the same visibility check as its case.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.runtime import clock
from engine.store.models import Attachment

ALLOWED_TYPES = {
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
}


def safe_filename(raw: str) -> str:
    """The last path segment, without control characters, separators or leading dots."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = name.strip().lstrip(".").strip()
    name = re.sub(r"[<>:\"|?*]", "_", name)
    return (name or "attachment")[:200]


def store(
    session: Session,
    instance_id: str,
    task_id: str | None,
    filename: str,
    media_type: str | None,
    content: bytes,
    uploaded_by: str,
    max_bytes: int,
    field: str = "file",
) -> dict[str, Any]:
    if len(content) > max_bytes:
        raise InvalidInput(
            f"the file {safe_filename(filename)!r} is {len(content)} bytes; at most "
            f"{max_bytes} are allowed",
            [{"path": f"$.{field}", "message": f"larger than {max_bytes} bytes"}],
        )
    if not content:
        raise InvalidInput(
            "the uploaded file is empty", [{"path": f"$.{field}", "message": "empty file"}]
        )
    kind = (media_type or "application/octet-stream").split(";")[0].strip().lower()
    if kind not in ALLOWED_TYPES:
        raise InvalidInput(
            f"files of type {kind} are not accepted",
            [
                {
                    "path": f"$.{field}",
                    "message": f"type {kind} is not accepted (PDF, images, text, Office)",
                }
            ],
        )
    row = Attachment(
        id=str(uuid.uuid4()),
        instance_id=instance_id,
        task_id=task_id,
        filename=safe_filename(filename),
        media_type=kind,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_by=uploaded_by,
        uploaded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return {
        "id": row.id,
        "filename": row.filename,
        "size": row.size,
        "media_type": row.media_type,
        "sha256": row.sha256,
    }
