"""``python manage.py runs retry --flow ID [--since DATE]``: retry a flow's failed runs from the command line, as
``POST /api/v1/flow_runs/retry_failed`` does, with a progress bar."""

from datetime import datetime, time
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.core.exceptions import ConflictError
from apps.flows.models import Flow
from apps.runs.services.replays import flow_runs_retry_failed

ACTOR = "manage.py runs retry"
BAR_WIDTH = 30


def since_parsed(text: str) -> datetime:
    """An ISO 8601 date and time, or a date (its midnight); without an offset, in the deployment's time zone."""
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--since: '{text}' is not an ISO 8601 date or date and time (e.g. 2026-12-01T08:00).")
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = "Run control from the command line. 'retry --flow ID [--since DATE]' retries the flow's failed runs."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        retry = actions.add_parser("retry", help="Retry the failed runs of a flow (at most NEENA_RETRY_FAILED_LIMIT).")
        retry.add_argument("--flow", required=True, help="The flow's id.")
        retry.add_argument("--since", help="Only runs that failed at or after this ISO 8601 date or date and time.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            flow = Flow.objects.get(id=UUID(options["flow"]))
        except (ValueError, Flow.DoesNotExist):
            raise CommandError(f"--flow: no flow has the id '{options['flow']}'.") from None
        since = since_parsed(options["since"]) if options["since"] else None
        try:
            report = flow_runs_retry_failed(flow=flow, user=None, since=since, actor=ACTOR, progress=self._progress)
        except ConflictError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Queued {report.queued} failed runs again; skipped {report.skipped}.")
        if report.more:
            self.stdout.write("More failed runs than NEENA_RETRY_FAILED_LIMIT were found: run the command again.")

    def _progress(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total
        self.stdout.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}", ending="")
        if done == total:
            self.stdout.write("")
