"""Drill: Redis, the broker, stops in the middle of a run and comes back on the same port with its data.

A dedicated Redis keeps an append-only file, as a production broker would, and a dedicated worker serves it. While
the broker is down, a client still executes a flow through the API: the run is committed and answered, and its first
step waits in the database until the sweeper queues it again. Afterwards both runs complete, every step once.

The worker is supervised (started again if it exits), as in production: with Celery 5.7 / kombu 5.7 on Redis, a
worker holding an unacknowledged message when the broker goes away dies with "Unrecoverable error: AttributeError
('NoneType' object has no attribute 'hostname')" while restoring that message, instead of reconnecting.
"""

import time

import pytest
from django.test import override_settings

from apps.accounts.models import Organization
from apps.flows.models import FlowRequest
from apps.runs.models import FlowRun
from apps.runs.services.run_creation import flow_execute
from neena.embedded_redis import EmbeddedRedis
from tests.drills.harness import (
    ONE_STEP_PER_JOB,
    SupervisedWorker,
    assert_completed_once,
    celery_publishing_to,
    completed_steps,
    finish_with_the_sweeper,
    notifying_chain,
)
from tests.runs.flows import make_request, set_policy
from tests.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

LENGTH = 60
# A restart, not a long outage: the worker retries the broker only twice (CELERY_BROKER_CONNECTION_MAX_RETRIES in the
# test settings) before it gives up, and then its supervisor starts it again.
DOWN_SECONDS = 1.0


def test_broker_restart_mid_run_every_run_completes_once(owner, organization, api, tmp_path):
    set_policy(organization, Organization.ApprovalPolicy.NEVER)
    first_flow = notifying_chain(owner, LENGTH)
    second_flow = notifying_chain(owner, 4, label="during the outage")
    second_request = make_request(owner)
    data = tmp_path / "redis"
    broker = EmbeddedRedis(directory=data)
    worker = None
    try:
        with celery_publishing_to(broker.url), override_settings(CELERY_BROKER_URL=broker.url, REDIS_URL=broker.url):
            worker = SupervisedWorker(broker_url=broker.url, name="broker-drill", environment=ONE_STEP_PER_JOB)
            first = flow_execute(user=owner, flow=first_flow, flow_request=make_request(owner))
            wait_for(lambda: completed_steps(first) >= 10, timeout=30, message="the run to get going")

            broker.stop()
            assert completed_steps(first) < LENGTH, "the run finished before the broker stopped; make it longer"
            # Accepted while the broker is down: the run is committed, its first step readied in the database.
            response = api.post(f"/api/v1/flows/execute?flow_id={second_flow.id}&flow_request_id={second_request.id}")
            assert response.status_code == 200, response.content
            second = FlowRun.objects.get(id=response.json()["id"])

            time.sleep(DOWN_SECONDS)
            broker = EmbeddedRedis(port=broker.port, directory=data)
            finish_with_the_sweeper(first, second, worker=worker, timeout=90)
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()

    assert_completed_once(first, LENGTH)
    assert_completed_once(second, 4)
    assert FlowRequest.objects.filter(id=second_request.id).exists()
