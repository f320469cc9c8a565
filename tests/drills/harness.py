"""What the failure drills share: long flows with side effects; a worker supervised as in production (started again
when it exits); pointing this process at a drill's own broker; finishing runs the way the sweeper would; and the
checks every drill ends with (every run ended, every step completed once, no side effect twice)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.flows.models import Flow
from apps.integrations.models import Notification
from apps.runs.models import FlowRun, TaskRun
from apps.runs.services.control import runs_sweep
from neena.celery import app as celery_app
from tests.runs.flows import make_flow, step
from tests.workers import CeleryWorker, wait_for

# No step inline: one broker round trip per step, so a run is still going when the drill breaks something.
ONE_STEP_PER_JOB = {"NEENA_INLINE_STEP_LIMIT": "0"}


def notifying_chain(owner: User, length: int, label: str = "update") -> Flow:
    """Format Text and Send Notification steps taking turns, each depending on the one before."""
    steps = [
        step(index, "Format Text", template=f"{label} {index}")
        if index % 2 == 0
        else step(
            index, "Send Notification", recipient="ops@example.com", message=f"{{{{ steps.{index - 1}.result.text }}}}"
        )
        for index in range(length)
    ]
    return make_flow(owner, steps, [(index, index + 1) for index in range(length - 1)])


def completed_steps(flow_run: FlowRun) -> int:
    return TaskRun.objects.filter(flow_run=flow_run, status=TaskRun.Status.COMPLETED).count()


def step_statuses(flow_run: FlowRun) -> dict[str, int]:
    """How many of the run's steps are in each status, for failure messages."""
    statuses: dict[str, int] = {}
    for status in TaskRun.objects.filter(flow_run=flow_run).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


class SupervisedWorker:
    """A Celery worker that is started again whenever it has exited, as docker-compose's ``restart: unless-stopped``
    (or systemd) does in production. ``restarts`` counts how often that was needed."""

    def __init__(self, *, broker_url: str, name: str, environment: dict[str, str] | None = None) -> None:
        self._broker_url, self._name, self._environment = broker_url, name, environment
        self.worker = self._start()
        self.restarts = 0
        self.exits: list[str] = []

    def _start(self) -> CeleryWorker:
        return CeleryWorker(broker_url=self._broker_url, name=self._name, environment=self._environment)

    def supervise(self) -> None:
        if self.worker.process.poll() is None:
            return
        self.exits.append(self.worker.output()[-3000:])
        self.worker.stop()
        self.restarts += 1
        self.worker = self._start()

    def output(self) -> str:
        return "\n".join([*self.exits, self.worker.output()])

    def stop(self) -> None:
        self.worker.stop()


def finish_with_the_sweeper(
    *flow_runs: FlowRun, timeout: float = 120.0, worker: SupervisedWorker | None = None
) -> None:
    """Waits for the runs to end, running the sweeper as beat would, with a clock moved past every lease and the
    re-queue delay (as the SIGKILL drill does): steps whose worker or message was lost are queued again. A
    supervised worker that exited is started again meanwhile."""
    later = timezone.now() + timedelta(seconds=600)

    def ended() -> bool:
        if worker is not None:
            worker.supervise()
        runs_sweep(now=later)
        return FlowRun.objects.filter(id__in=[run.id for run in flow_runs], status__in=FlowRun.TERMINAL).count() == len(
            flow_runs
        )

    try:
        wait_for(ended, timeout=timeout, interval=0.5, message="the runs to end after the drill")
    except AssertionError as error:
        states = [(run.id, FlowRun.objects.get(id=run.id).status, step_statuses(run)) for run in flow_runs]
        output = worker.output()[-4000:] if worker else ""
        raise AssertionError(f"{error}: {states}\n{output}") from error
    for flow_run in flow_runs:
        flow_run.refresh_from_db()


def assert_completed_once(flow_run: FlowRun, length: int) -> None:
    """The run completed, every step completed, and each Send Notification step notified exactly once."""
    assert flow_run.status == FlowRun.Status.COMPLETED, flow_run.status_reason
    assert completed_steps(flow_run) == length
    notifying = TaskRun.objects.filter(
        flow_run=flow_run, task_operation__task_definition__task_name="Send Notification"
    ).values_list("id", flat=True)
    per_step = dict.fromkeys(map(str, notifying), 0)
    # The key is "<task run id>:<attempt>": a second notification for a step would carry the same task run id.
    for key in Notification.objects.filter(flow_run=flow_run).values_list("idempotency_key", flat=True):
        task_run_id = key.split(":")[0]
        per_step[task_run_id] = per_step.get(task_run_id, 0) + 1
    assert per_step and set(per_step.values()) == {1}, per_step


@contextmanager
def celery_publishing_to(broker_url: str) -> Iterator[None]:
    """Points this process's Celery app (what ``flow_execute`` and the sweeper send with) at another broker.

    The app keeps its connection and producer pools once made, so its references to them are dropped on the way in
    and out, as Celery does itself in a forked child (there is no public call for it). kombu keeps one pool per
    broker URL: the session broker's pools stay open for after the drill, the drill broker's are closed at its end.
    """

    def forget_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    previous = celery_app.conf.broker_url
    forget_pools()
    celery_app.conf.broker_url = broker_url
    try:
        yield
    finally:
        celery_app.amqp.producer_pool.force_close_all()
        celery_app.pool.force_close_all()
        forget_pools()
        celery_app.conf.broker_url = previous
