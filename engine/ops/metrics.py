"""Prometheus metrics: live figures read from the projections at scrape time, plus the
histograms this process observes (command latency, timer lag).

Gauges come from the database so every API process reports the same totals; histograms are
per process, as Prometheus expects, and are summed over processes by the query.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from engine.runtime import clock
from engine.store.db import Database
from engine.store.models import HumanTask, Incident, Instance, Job, Timer

REGISTRY = CollectorRegistry(auto_describe=True)

COMMAND_SECONDS = Histogram(
    "govflow_command_seconds",
    "Time to run one command on a case (load, apply, engine steps, save), by command",
    ["command", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
TIMER_LAG_SECONDS = Histogram(
    "govflow_timer_lag_seconds",
    "How late a timer fired after its due moment",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "govflow_job_latency_seconds",
    "From a job's creation to its result being applied, by topic",
    ["topic"],
    buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600),
    registry=REGISTRY,
)
TASK_AGE_BUCKETS = (3600, 4 * 3600, 24 * 3600, 3 * 86400, 7 * 86400, 30 * 86400)


def observe_command(name: str, seconds: float, outcome: str) -> None:
    COMMAND_SECONDS.labels(name, outcome).observe(seconds)


def observe_timer_lag(due_at: datetime, fired_at: datetime) -> None:
    TIMER_LAG_SECONDS.observe(max(0.0, (fired_at - due_at).total_seconds()))


def observe_job(topic: str, created_at: datetime, finished_at: datetime) -> None:
    JOB_SECONDS.labels(topic).observe(max(0.0, (finished_at - created_at).total_seconds()))


class StoreCollector(Collector):
    """Figures read from the database at each scrape."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        now = clock.now()
        with self.database.read_session() as session:
            instances = GaugeMetricFamily(
                "govflow_instances", "Cases by process and state", labels=["process", "state"]
            )
            for key, status, count in session.execute(
                select(Instance.definition_key, Instance.status, func.count()).group_by(
                    Instance.definition_key, Instance.status
                )
            ):
                instances.add_metric([key, status], count)
            yield instances

            tasks = GaugeMetricFamily(
                "govflow_open_tasks", "Open user tasks by process", labels=["process", "claimed"]
            )
            oldest = GaugeMetricFamily(
                "govflow_open_task_oldest_age_seconds",
                "Age of the oldest open user task, by process",
                labels=["process"],
            )
            ages = GaugeMetricFamily(
                "govflow_open_tasks_older_than",
                "Open user tasks older than the given seconds",
                labels=["le_age"],
            )
            counts_by_age = dict.fromkeys(TASK_AGE_BUCKETS, 0)
            firsts: dict[str, datetime] = {}
            for key, created in session.execute(
                select(HumanTask.definition_key, HumanTask.created_at).where(
                    HumanTask.state == "open"
                )
            ):
                firsts[key] = min(firsts.get(key, created), created)
                age = (now - created).total_seconds()
                for bound in TASK_AGE_BUCKETS:
                    if age > bound:
                        counts_by_age[bound] += 1
            for key, claimed, count in session.execute(
                select(
                    HumanTask.definition_key,
                    HumanTask.assignee.is_not(None),
                    func.count(),
                )
                .where(HumanTask.state == "open")
                .group_by(HumanTask.definition_key, HumanTask.assignee.is_not(None))
            ):
                tasks.add_metric([key, "true" if claimed else "false"], count)
            for key, first in firsts.items():
                oldest.add_metric([key], (now - first).total_seconds())
            for bound, count in counts_by_age.items():
                ages.add_metric([str(bound)], count)
            yield tasks
            yield oldest
            yield ages

            depth = GaugeMetricFamily(
                "govflow_jobs", "Service jobs by topic and state", labels=["topic", "state"]
            )
            for topic, state, count in session.execute(
                select(Job.topic, Job.state, func.count())
                .where(Job.state.in_(("pending", "running", "failed")))
                .group_by(Job.topic, Job.state)
            ):
                depth.add_metric([topic, state], count)
            yield depth
            waiting = GaugeMetricFamily(
                "govflow_job_oldest_pending_seconds",
                "How long the oldest pending job of a topic has been due",
                labels=["topic"],
            )
            for topic, first in session.execute(
                select(Job.topic, func.min(Job.next_run_at))
                .where(Job.state == "pending")
                .group_by(Job.topic)
            ):
                waiting.add_metric([topic], max(0.0, (now - first).total_seconds()))
            yield waiting

            lag = GaugeMetricFamily(
                "govflow_timers_overdue_seconds",
                "How long the most overdue timer has been due without firing",
            )
            overdue = GaugeMetricFamily("govflow_timers_overdue", "Timers due but not fired")
            first_due, count = session.execute(
                select(func.min(Timer.due_at), func.count()).where(
                    Timer.state == "waiting", Timer.due_at <= now
                )
            ).one()
            lag.add_metric([], max(0.0, (now - first_due).total_seconds()) if first_due else 0.0)
            overdue.add_metric([], count)
            yield lag
            yield overdue

            incidents = GaugeMetricFamily(
                "govflow_open_incidents", "Unresolved incidents by kind", labels=["kind"]
            )
            for kind, count in session.execute(
                select(Incident.kind, func.count())
                .where(Incident.resolved_at.is_(None))
                .group_by(Incident.kind)
            ):
                incidents.add_metric([kind], count)
            yield incidents


def exposition(database: Database) -> bytes:
    """The text format of every metric: this process's histograms and the store's figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(database))
    return generate_latest(REGISTRY) + generate_latest(registry)
