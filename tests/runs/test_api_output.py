"""The runs API's output path (AttributeModelSerializer, the selector's prefetch, ORJSONRenderer) gives exactly what the
plain DRF path gave: plain ModelSerializers over a plain prefetch, rendered by DRF's JSONRenderer."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from apps.core.renderers import ORJSONRenderer
from apps.runs.models import FlowResult, FlowRun, TaskRun, TaskRunAttempt
from apps.runs.selectors import ATTEMPTS_ATTRIBUTE, flow_run_list_with_task_runs_for_user, task_runs_with_attempts
from apps.runs.serializers import (
    FlowResultSerializer,
    FlowRunPreviewSerializer,
    FlowRunSerializer,
    FlowRunWithResultSerializer,
    TaskRunAttemptSerializer,
    TaskRunSerializer,
)
from tests.factories import FlowResultFactory, FlowRunFactory, chain_flow

pytestmark = pytest.mark.django_db


class PlainTaskRunAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskRunAttempt
        fields = TaskRunAttemptSerializer.Meta.fields


class PlainTaskRunSerializer(serializers.ModelSerializer):
    """Every attempt through the related manager, newest first, counted in Python."""

    omitted_fields = serializers.SerializerMethodField()
    attempts = serializers.SerializerMethodField()
    attempts_total = serializers.SerializerMethodField()

    class Meta:
        model = TaskRun
        fields = TaskRunSerializer.Meta.fields

    def get_omitted_fields(self, task_run):
        return []

    def get_attempts(self, task_run):
        if isinstance(task_run, dict):
            return []
        return PlainTaskRunAttemptSerializer(task_run.attempts.order_by("-number"), many=True).data

    def get_attempts_total(self, task_run):
        return 0 if isinstance(task_run, dict) else task_run.attempts.count()


class PlainFlowRunPreviewSerializer(serializers.ModelSerializer):
    flow_version = serializers.IntegerField(source="flow_version.number")

    class Meta:
        model = FlowRun
        fields = FlowRunPreviewSerializer.Meta.fields


class PlainFlowRunSerializer(serializers.ModelSerializer):
    """Every task run, counted in Python."""

    flow_version = serializers.IntegerField(source="flow_version.number")
    task_runs = PlainTaskRunSerializer(many=True)
    task_runs_total = serializers.SerializerMethodField()
    task_runs_truncated = serializers.SerializerMethodField()

    class Meta:
        model = FlowRun
        fields = FlowRunSerializer.Meta.fields

    def get_task_runs_total(self, flow_run):
        return len(flow_run.task_runs.all())

    def get_task_runs_truncated(self, flow_run):
        return False


class PlainFlowResultSerializer(serializers.ModelSerializer):
    flow_run_id = serializers.UUIDField()
    organization_id = serializers.UUIDField()

    class Meta:
        model = FlowResult
        fields = FlowResultSerializer.Meta.fields


class PlainFlowRunWithResultSerializer(PlainFlowRunSerializer):
    result = PlainFlowResultSerializer(allow_null=True)

    class Meta(PlainFlowRunSerializer.Meta):
        fields = FlowRunWithResultSerializer.Meta.fields


@pytest.fixture
def runs(owner, organization):
    """Runs covering what the output path reads: nulls, choices, JSON of every kind, text beyond ASCII, a rerun."""
    flow = chain_flow(organization, steps=3)
    plain = FlowRunFactory(organization=organization, flow=flow)
    waiting = FlowRunFactory(
        organization=organization,
        flow=flow,
        status=FlowRun.Status.AWAITING_APPROVAL,
        approval_status=FlowRun.ApprovalStatus.PENDING,
        end_time=timezone.now(),
        approved_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        approved_by="approver@example.com",
        approval_comment="Grüße \u2028 ✓",
        rerun_of=plain,
    )
    first, second, third = waiting.task_runs.order_by("task_operation_index")
    first.result = {"text": 'line\u2029break "quoted" \\ / <b>', "numbers": [0, -1, 2**62, 0.5, 3.25], "ok": True}
    first.task_prep_prompt = {"messages": [{"role": "user", "content": "中文 \U0001f600 \x01"}]}
    first.error = "tab\tnew\nline"
    first.start_time = datetime.datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=datetime.UTC)
    first.save()
    second.result = None
    second.start_time = None
    second.status = TaskRun.Status.AWAITING_APPROVAL
    second.save()
    third.result = ["a", {"nested": [[], {}]}]
    third.attempt = 3
    third.save()
    started = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
    for number, status in enumerate(["retried", "abandoned", "running"], start=1):
        TaskRunAttempt.objects.create(
            task_run=third,
            number=number,
            status=status,
            started_at=started + datetime.timedelta(minutes=number),
            ended_at=None if status == "running" else started + datetime.timedelta(minutes=number, seconds=30),
            error="" if status == "running" else f"error {number} ✓",
            idempotency_key=f"{third.id}:{number - 1}",
        )
    FlowResultFactory(organization=organization, flow_run=waiting, body="Done ✓")
    return [plain, waiting]


def _plain_runs():
    """The runs as the plain path read them: every column, the task runs through the related manager (in
    TaskRun.Meta.ordering, step order)."""
    return list(FlowRun.objects.order_by("-created_date", "-id").prefetch_related("task_runs"))


def _assert_same_output(fast, plain):
    assert fast == plain
    assert ORJSONRenderer().render(fast) == JSONRenderer().render(plain)


def test_run_lists_match_the_plain_path(owner, runs):
    fast = FlowRunSerializer(flow_run_list_with_task_runs_for_user(user=owner), many=True).data
    plain = PlainFlowRunSerializer(_plain_runs(), many=True).data

    assert len(fast) == 2 and len(fast[0]["task_runs"]) == 3
    _assert_same_output(fast, plain)


def test_previews_and_task_runs_match_the_plain_path(owner, runs):
    fast = FlowRunPreviewSerializer(flow_run_list_with_task_runs_for_user(user=owner), many=True).data
    plain = PlainFlowRunPreviewSerializer(_plain_runs(), many=True).data
    _assert_same_output(fast, plain)

    task_runs = list(
        task_runs_with_attempts(
            TaskRun.objects.order_by("flow_run__created_date", "task_operation_index"), attempts_limit=100
        )
    )
    _assert_same_output(TaskRunSerializer(task_runs, many=True).data, PlainTaskRunSerializer(task_runs, many=True).data)


def test_run_with_result_matches_the_plain_path(owner, runs):
    fast_run = flow_run_list_with_task_runs_for_user(user=owner).get(id=runs[1].id)
    plain_run = next(run for run in _plain_runs() if run.id == runs[1].id)
    fast_run.result = plain_run.result = FlowResult.objects.get(flow_run=runs[1])

    _assert_same_output(FlowRunWithResultSerializer(fast_run).data, PlainFlowRunWithResultSerializer(plain_run).data)


def test_datetimes_follow_the_active_time_zone_like_drf(owner, runs):
    with timezone.override("Asia/Kolkata"):
        fast = FlowRunSerializer(flow_run_list_with_task_runs_for_user(user=owner), many=True).data
        plain = PlainFlowRunSerializer(_plain_runs(), many=True).data

    assert fast[0]["approved_at"].endswith("+05:30")
    _assert_same_output(fast, plain)


def test_rows_that_are_not_model_instances_take_drfs_path():
    row = {"task_operation_index": 1, "status": "completed", "start_time": None, "task_prep_prompt": {}}
    row |= {"task_prep_answer": {}, "end_time": None, "id": None, "flow_run": None, "result": None, "error": ""}
    row |= {"attempt": 0, ATTEMPTS_ATTRIBUTE: [], "attempts_total": 0}

    assert TaskRunSerializer(row).data == PlainTaskRunSerializer(row).data


def test_the_list_reads_no_engine_column(owner, runs):
    """The selector defers the engine's columns: serializing must not read one (a query per task run)."""
    queryset = flow_run_list_with_task_runs_for_user(user=owner)

    with CaptureQueriesContext(connection) as queries:
        FlowRunSerializer(queryset, many=True).data  # noqa: B018 - rendering is the point

    assert len(queries) == 3  # the runs, their task runs, the task runs' attempts
