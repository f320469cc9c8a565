"""The Prometheus counters and histograms Neena keeps, and the one small typed function that records each.

Services call the ``record_*`` functions where the event happens; nothing else touches the metric objects. Every
label comes from a bounded set (a URL pattern's name, never the path; an integration's ``short_name`` and a task's
name from the catalogue; an error's code), so the number of series stays small whatever clients send.

Under gunicorn and Celery several processes record: with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client writes
each process's values to files in that directory and ``/metrics`` sums them (``apps.core.exposition``). The variable
is read when prometheus-client is imported, so it must be in the environment the processes start with. What the
database and the broker already know (runs by status, queue depths) is not counted here: it is read at scrape time.
"""

from prometheus_client import Counter, Histogram

# Seconds; from a fast API read to a slow planning call or integration step.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_REQUEST_DURATION = Histogram(
    "neena_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern name, method and status code.",
    ["view", "method", "status"],
    buckets=_DURATION_BUCKETS,
)
STEPS_STARTED = Counter(
    "neena_steps_started_total", "Steps claimed by a worker (each attempt counts).", ["integration", "task"]
)
STEPS_COMPLETED = Counter("neena_steps_completed_total", "Steps that completed.", ["integration", "task"])
STEPS_FAILED = Counter("neena_steps_failed_total", "Steps that failed.", ["integration", "task"])
STEP_DURATION = Histogram(
    "neena_step_duration_seconds",
    "Time from a step's claim to its end (completed or failed), by integration, task and status.",
    ["integration", "task", "status"],
    buckets=_DURATION_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "neena_webhook_deliveries_total",
    "Inbound webhook deliveries: accepted (new, duplicate, challenge) or refused (the error code answered).",
    ["outcome", "reason"],
)
PLANNING_DURATION = Histogram(
    "neena_planning_duration_seconds",
    "Time to plan a flow for a request, by planner and outcome (planned, refused).",
    ["planner", "outcome"],
    buckets=_DURATION_BUCKETS,
)


def record_http_request(*, view: str, method: str, status: int, seconds: float) -> None:
    """One answered request. Methods outside the standard ones are counted as ``other``: clients choose them."""
    method = method if method in _KNOWN_METHODS else "other"
    HTTP_REQUEST_DURATION.labels(view=view, method=method, status=str(status)).observe(seconds)


def record_step_started(*, integration: str, task: str) -> None:
    STEPS_STARTED.labels(integration=integration, task=task).inc()


def record_step_ended(*, integration: str, task: str, status: str, seconds: float | None) -> None:
    """A step's end: counted as completed or failed; its duration observed when its start is known."""
    counter = STEPS_COMPLETED if status == "completed" else STEPS_FAILED
    counter.labels(integration=integration, task=task).inc()
    if seconds is not None:
        STEP_DURATION.labels(integration=integration, task=task, status=status).observe(max(0.0, seconds))


def record_webhook_delivery(*, accepted: bool, reason: str) -> None:
    WEBHOOK_DELIVERIES.labels(outcome="accepted" if accepted else "refused", reason=reason).inc()


def record_planning(*, planner: str, planned: bool, seconds: float) -> None:
    PLANNING_DURATION.labels(planner=planner, outcome="planned" if planned else "refused").observe(seconds)
