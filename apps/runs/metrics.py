"""The run engine's state as Prometheus gauges, read from the database when ``/metrics`` is scraped.

Named in NEENA_METRICS_COLLECTORS, so ``apps.core.exposition`` (a lower layer) never imports the runs app.
"""

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from apps.runs.models import FlowRun
from apps.runs.selectors import flow_run_approval_backlog, flow_run_status_counts

logger = logging.getLogger(__name__)


class RunStateCollector(Collector):
    """``neena_flow_runs{status}`` (every status, zeros included), ``neena_runs_awaiting_approval`` and
    ``neena_runs_awaiting_approval_oldest_seconds``: two queries per scrape (a GROUP BY and an aggregate), both on
    the ``flow_run_status`` index. A database that does not answer leaves them out of the scrape (and logs why):
    the processes' own values are still worth having, and an absent series is what Prometheus alerts on."""

    def collect(self) -> Iterator[Metric]:
        try:
            counts = flow_run_status_counts()
            waiting, oldest = flow_run_approval_backlog()
        except DatabaseError as error:
            logger.warning("Run gauges left out of the scrape: the database did not answer (%s).", error)
            return
        by_status = GaugeMetricFamily("neena_flow_runs", "Flow runs in the database, by status.", labels=["status"])
        for status in FlowRun.Status.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "neena_runs_awaiting_approval", "Flow runs parked until a person approves or rejects them.", value=waiting
        )
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "neena_runs_awaiting_approval_oldest_seconds",
            "How long the run waiting longest for approval has waited (0 when none waits).",
            value=max(0.0, age),
        )
