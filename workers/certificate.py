"""Certificates and licences issued at the end of a case, as numbered PDFs."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from engine.jobs.handlers import JobContext, handler
from engine.runtime import clock
from workers.adapters import systems

FONT = "STSong-Light"  # an Adobe CJK font every PDF reader has; nothing to embed
PREFIXES = {
    "食品经营许可证": "JY",
    "营业执照": "YZ",
    "公共场所卫生许可证": "WS",
    "道路运输经营许可证": "YS",
}


@cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def render_pdf(kind: str, holder: str, number: str, case: str) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    font = _font()
    page.setTitle(f"{kind} {number}")
    page.setFont(font, 26)
    page.drawCentredString(width / 2, height - 150, kind)
    page.setFont(font, 14)
    lines = [
        f"编号：{number}",
        f"持证人：{holder}",
        f"办件编号：{case}",
        f"发证日期：{clock.now().date().isoformat()}",
        "发证机关：县行政审批局（县政务服务中心）",
    ]
    for index, line in enumerate(lines):
        page.drawString(110, height - 230 - index * 32, line)
    page.showPage()
    page.save()
    return buffer.getvalue()


@handler("certificate.issue", max_attempts=3, backoff_s=2.0, timeout_s=60.0)
def issue(ctx: JobContext, variables: dict[str, Any]) -> dict[str, Any]:
    """Reads `certificate_kind` and `holder` (or `shop_name`, `applicant_name`); writes
    `certificate_number` and `certificate_url` (download path of the PDF)."""
    kind = str(variables.get("certificate_kind") or "办结证明")
    holder = str(
        variables.get("holder")
        or variables.get("shop_name")
        or variables.get("applicant_name")
        or "申请人"
    )
    case = ctx.business_key or ctx.instance_id
    prefix = PREFIXES.get(kind, "GF")
    number = systems().store_certificate(
        ctx, prefix, kind, holder, lambda n: render_pdf(kind, holder, n, case)
    )
    return {"certificate_number": number, "certificate_url": f"/api/certificates/{number}.pdf"}
