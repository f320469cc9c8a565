"""The task base's log line per job: every job is logged once with its duration; an idle sweep is quiet."""

import logging

import pytest

from apps.idempotency.tasks import sweep_idempotency_keys
from apps.runs.tasks import sweep_runs
from apps.webhooks.tasks import sweep_trigger_runs


@pytest.mark.django_db
@pytest.mark.parametrize("sweep", [sweep_runs, sweep_trigger_runs, sweep_idempotency_keys])
def test_a_sweep_that_found_nothing_logs_at_debug_only(sweep, caplog):
    with caplog.at_level(logging.DEBUG, logger="neena.tasks"):
        sweep.apply()
    lines = [record for record in caplog.records if record.name == "neena.tasks"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert sweep.name in lines[0].getMessage()


def test_a_sweep_that_acted_logs_its_counts_at_info(caplog, monkeypatch):
    report = type("Report", (), {"requeued_received": 2, "requeued_stalled": 0})()
    monkeypatch.setattr("apps.webhooks.tasks.trigger_runs_sweep", lambda: report)
    with caplog.at_level(logging.DEBUG, logger="neena.tasks"):
        sweep_trigger_runs.apply()
    (line,) = [record for record in caplog.records if record.name == "neena.tasks"]
    assert line.levelno == logging.INFO
    assert "'requeued_received': 2" in line.getMessage()


def test_celery_does_not_repeat_the_line_per_job():
    from django.conf import settings

    for name in ("celery.worker.strategy", "celery.app.trace"):
        assert settings.LOGGING["loggers"][name]["level"] == "WARNING"
    assert settings.LOGGING["loggers"]["celery.beat"]["filters"] == ["routine_beat"]


def test_beat_keeps_its_start_line_and_drops_its_per_job_line():
    from apps.core.structured_logs import RoutineBeatFilter

    beat = logging.getLogger("celery.beat")
    due = logging.LogRecord("celery.beat", logging.INFO, "", 0, "Scheduler: Sending due task %s (%s)", ("a", "b"), None)
    start = logging.LogRecord("celery.beat", logging.INFO, "", 0, "beat: Starting...", (), None)
    previous = beat.level
    beat.setLevel(logging.INFO)
    try:
        assert RoutineBeatFilter().filter(due) is False
        assert RoutineBeatFilter().filter(start) is True
    finally:
        beat.setLevel(previous)
