"""Outside systems behind one interface; the default does the work locally and records it.

Set GOVFLOW_ADAPTER=package.module:factory to plug in real gateways (an SMS platform, the
licence system, EMS); the local adapter keeps what it did in tables a person can look at.
"""

from __future__ import annotations

import importlib
import os
from decimal import Decimal
from functools import cache
from typing import Protocol

from sqlalchemy import func, select

from engine.jobs.handlers import JobContext
from engine.runtime import clock
from engine.store.models import Certificate, Delivery, Payment, SentMessage
from engine.store.sequences import next_value


class OutsideSystems(Protocol):
    def send_sms(self, ctx: JobContext, to: str, text: str) -> str: ...

    def store_certificate(
        self, ctx: JobContext, prefix: str, kind: str, holder: str, render: object
    ) -> str: ...

    def create_delivery(
        self, ctx: JobContext, recipient: str, phone: str, address: str, serial_to_number: object
    ) -> str: ...

    def paid_amount(self, ctx: JobContext) -> Decimal: ...


class LocalSystems:
    """Records instead of sending; every record is keyed by job id, so a repeat is harmless."""

    def send_sms(self, ctx: JobContext, to: str, text: str) -> str:
        with ctx.session() as session:
            existing = session.scalars(
                select(SentMessage).where(SentMessage.job_id == ctx.job_id)
            ).first()
            if existing is None:
                existing = SentMessage(
                    job_id=ctx.job_id,
                    instance_id=ctx.instance_id,
                    business_key=ctx.business_key,
                    to=to,
                    text=text,
                    created_at=clock.now(),
                )
                session.add(existing)
                session.flush()
            return f"sms-{existing.id}"

    def store_certificate(
        self, ctx: JobContext, prefix: str, kind: str, holder: str, render: object
    ) -> str:
        with ctx.session() as session:
            existing = session.scalars(
                select(Certificate).where(Certificate.job_id == ctx.job_id)
            ).first()
            if existing is not None:
                return existing.number
            stem = f"{prefix}{clock.now().year}"
            number = f"{stem}{next_value(session, f'certificate:{stem}'):06d}"
            pdf = render(number)  # type: ignore[operator]
            session.add(
                Certificate(
                    number=number,
                    job_id=ctx.job_id,
                    instance_id=ctx.instance_id,
                    business_key=ctx.business_key,
                    kind=kind,
                    holder=holder,
                    pdf=pdf,
                    issued_at=clock.now(),
                )
            )
            session.flush()
            return number

    def create_delivery(
        self, ctx: JobContext, recipient: str, phone: str, address: str, serial_to_number: object
    ) -> str:
        with ctx.session() as session:
            existing = session.scalars(
                select(Delivery).where(Delivery.job_id == ctx.job_id)
            ).first()
            if existing is not None:
                return existing.tracking_number
            number = serial_to_number(next_value(session, "ems"))  # type: ignore[operator]
            session.add(
                Delivery(
                    job_id=ctx.job_id,
                    instance_id=ctx.instance_id,
                    business_key=ctx.business_key,
                    tracking_number=number,
                    recipient=recipient,
                    phone=phone,
                    address=address,
                    created_at=clock.now(),
                )
            )
            session.flush()
            return number

    def paid_amount(self, ctx: JobContext) -> Decimal:
        if not ctx.business_key:
            return Decimal("0")
        with ctx.session() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(Payment.amount), 0)).where(
                    Payment.business_key == ctx.business_key
                )
            )
        return Decimal(str(total or 0))


@cache
def systems() -> OutsideSystems:
    spec = os.environ.get("GOVFLOW_ADAPTER")
    if not spec:
        return LocalSystems()
    module_name, _, attribute = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute or "systems")
    return factory()
