"""Conformance harness: other people's BPMN files, loaded and run by govflow."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def corpus_root() -> Path:
    """Where ../shared/conformance is: GOVFLOW_CONFORMANCE_DIR, beside this checkout, or
    beside the project's main checkout (/work/shared) when the checkout is elsewhere."""
    configured = os.environ.get("GOVFLOW_CONFORMANCE_DIR")
    if configured:
        return Path(configured)
    for candidate in (REPO.parent / "shared" / "conformance", Path("/work/shared/conformance")):
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "conformance"


CONFORMANCE = corpus_root()
