"""What a job remembers of a run while it runs the run's steps (``RunMemory``), so that it reads each thing once.

A job may run many steps of one run in place (``apps.runs.services.step_execution``). What does not change while it does
is read at most once: the edges and order of the run's flow version (which never change at all), how each step is
queued, the request, the task definitions, the results of completed steps (a completed step's result is final), and
the rows of steps not started yet (a waiting step's row changes only by leaving ``pending``, which the claim checks).
The steps' states are always read afresh.
"""

from typing import Any
from uuid import UUID

from django.conf import settings

from apps.accounts.models import Organization
from apps.flows.dag import ancestors, topological_order
from apps.flows.models import Dependency, FlowRequest, TaskOperation
from apps.integrations.models import TaskDefinition
from apps.runs.models import FlowRun, TaskRun
from apps.runs.queueing import ReadyStep, queue_for

Edge = tuple[int, int]

# What a step's outputs hold: never read to run it (an approved step reads its prepared answer when it resumes).
STEP_OUTPUTS = ("result", "task_prep_prompt", "task_prep_answer")


def time_limit(retry_policy: dict[str, Any]) -> int:
    """A task's time limit in seconds, from its definition's retry policy."""
    return int(retry_policy.get("time_limit_seconds", 60))


class RunMemory:
    """What a job reads of one run at most once, however many of the run's steps it runs (see the module)."""

    def __init__(self, flow_run: FlowRun) -> None:
        self.flow_run_id = flow_run.id
        self.flow_version_id = flow_run.flow_version_id
        self.flow_request_id = flow_run.flow_request_id
        self.organization_id = flow_run.organization_id
        self._edges: list[Edge] | None = None
        self._predecessors: dict[int, list[int]] | None = None
        self._successors: dict[int, list[int]] | None = None
        self._order: list[int] | None = None
        self._queueing: dict[int, tuple[str, int]] | None = None
        self._flow_request: FlowRequest | None = None
        self._organization: Organization | None = None
        self._definitions: dict[UUID, TaskDefinition] = {}
        self._results: dict[int, Any] = {}
        self._unstarted: dict[int, TaskRun] = {}

    @property
    def edges(self) -> list[Edge]:
        if self._edges is None:
            self._edges = list(
                Dependency.objects.filter(flow_version_id=self.flow_version_id).values_list(
                    "source_task_operation", "target_task_operation"
                )
            )
        return self._edges

    def predecessors(self, index: int) -> list[int]:
        return self._neighbours()[0].get(index, [])

    def successors(self, index: int) -> list[int]:
        return self._neighbours()[1].get(index, [])

    def _neighbours(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """Each step's predecessors and successors, from the edges, built once."""
        if self._predecessors is None or self._successors is None:
            self._predecessors, self._successors = {}, {}
            for source, target in self.edges:
                self._predecessors.setdefault(target, []).append(source)
                self._successors.setdefault(source, []).append(target)
        return self._predecessors, self._successors

    def ready_step(self, index: int, task_run_id: UUID) -> ReadyStep:
        if self._queueing is None:
            operations = TaskOperation.objects.filter(flow_version_id=self.flow_version_id).values_list(
                "index", "task_definition__integration__short_name", "task_definition__retry_policy"
            )
            self._queueing = {
                index: (queue_for(integration), time_limit(policy)) for index, integration, policy in operations
            }
        # A step whose operation an edit removed before flows had versions: its job fails it ("Step removed.").
        queue, limit = self._queueing.get(index, (settings.NEENA_ORCHESTRATION_QUEUE, time_limit({})))
        return ReadyStep(task_run_id, queue, limit)

    @property
    def flow_request(self) -> FlowRequest:
        if self._flow_request is None:
            self._flow_request = FlowRequest.objects.get(id=self.flow_request_id)
        return self._flow_request

    @property
    def organization(self) -> Organization:
        if self._organization is None:
            self._organization = Organization.objects.get(id=self.organization_id)
        return self._organization

    @organization.setter
    def organization(self, organization: Organization) -> None:
        self._organization = organization

    def definition(self, definition_id: UUID) -> TaskDefinition:
        if definition_id not in self._definitions:
            self._definitions[definition_id] = TaskDefinition.objects.select_related("integration").get(
                id=definition_id
            )
        return self._definitions[definition_id]

    def upstream(self, index: int) -> tuple[dict[int, Any], list[int], list[int]]:
        """The step's ancestors' results (read once each), its direct predecessors, and its ancestors nearest first
        (in the flow's topological order)."""
        step_count = 1 + max({index, *(node for edge in self.edges for node in edge)})
        earlier = ancestors(step_count, self.edges, index)
        missing = earlier - self._results.keys()
        if missing:
            self._results.update(
                TaskRun.objects.filter(
                    flow_run_id=self.flow_run_id, task_operation_index__in=missing, status=TaskRun.Status.COMPLETED
                ).values_list("task_operation_index", "result")
            )
        if self._order is None:
            self._order, _ = topological_order(step_count, self.edges)
        results = {ancestor: self._results[ancestor] for ancestor in earlier if ancestor in self._results}
        nearest_first = [node for node in reversed(self._order) if node in results]
        return results, sorted(self.predecessors(index)), nearest_first

    def remember(self, index: int, result: Any) -> None:
        self._results[index] = result

    def unstarted(self, indices: list[int]) -> list[TaskRun]:
        """The steps (with their operations) among ``indices`` that had not started when last read: each once, as the
        job readies it. A step's row does not change while it waits, except by leaving ``pending`` (the claim checks
        its status and ``modified_date``); so the steps coming next are read ahead, up to NEENA_INLINE_STEP_LIMIT at
        a time, and a chain run in place reads its steps in a query per so many of them."""
        missing = [index for index in indices if index not in self._unstarted]
        if missing:
            ahead = list(dict.fromkeys(missing))
            for index in ahead:  # breadth first, so the nearest steps come first
                if len(ahead) >= max(len(missing), settings.NEENA_INLINE_STEP_LIMIT):
                    break
                ahead.extend(successor for successor in self.successors(index) if successor not in ahead)
            rows = (
                TaskRun.objects.select_related("task_operation")
                .defer(*STEP_OUTPUTS)
                .filter(
                    flow_run_id=self.flow_run_id,
                    task_operation_index__in=ahead,
                    status=TaskRun.Status.PENDING,
                    enqueued_at__isnull=True,  # not one queued already, or waiting for a retry's countdown
                )
            )
            self._unstarted.update({task_run.task_operation_index: task_run for task_run in rows})
        return [self._unstarted.pop(index) for index in sorted(set(indices)) if index in self._unstarted]
