"""Factories for test data. Users and organizations go through the services, as in production."""

from typing import Any

import factory
from django.contrib.auth.models import Permission
from django.utils import timezone

from apps.accounts.models import Membership, Organization, User
from apps.accounts.services import user_create
from apps.flows.models import Dependency, Flow, FlowRequest, FlowVersion, TaskOperation
from apps.integrations.models import TaskDefinition, WebhookTriggerDefinition
from apps.runs.models import FlowResult, FlowRun, TaskRun
from apps.webhooks.models import WebhookTriggerOperation


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a personal organization (``user.organizations.get()``), made by ``user_create``."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        return user_create(**kwargs)


def personal_organization(user: User) -> Organization:
    return Organization.objects.get(memberships__user=user, is_personal=True)


def add_member(user: User, organization: Organization, role: str = Membership.Role.MEMBER) -> Membership:
    return Membership.objects.create(user=user, organization=organization, role=role)


def staff_user(email: str, *permissions: str, organizations: Any = (), role: str = Membership.Role.MEMBER) -> User:
    """An admin user (staff, not superuser) with these model permissions (codenames), a member of these
    organizations with ``role``. Made bare, as ``createsuperuser`` makes admins: no personal organization."""
    user = User.objects.create_user(email, "secret-password", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    for organization in organizations:
        add_member(user, organization, role)
    return user


def task_definition(name: str) -> TaskDefinition:
    """A task definition of the synced catalogue, by its task name."""
    return TaskDefinition.objects.get(task_name=name, deleted_at__isnull=True)


def trigger_definition(name: str) -> WebhookTriggerDefinition:
    return WebhookTriggerDefinition.objects.get(trigger_name=name, deleted_at__isnull=True)


class FlowFactory(factory.django.DjangoModelFactory):
    """A flow with an empty version 1 (add steps with ``TaskOperationFactory``, which puts them in the latest)."""

    class Meta:
        model = Flow

    name = factory.Sequence(lambda n: f"Flow {n}")
    created_by_email = "factory@example.com"
    modified_by_email = "factory@example.com"

    @classmethod
    def _create(cls, model_class: type[Flow], *args: Any, **kwargs: Any) -> Flow:
        flow = super()._create(model_class, *args, **kwargs)
        flow.latest_version = FlowVersion.objects.create(flow=flow, number=1, created_by_email=flow.created_by_email)
        flow.save(update_fields=["latest_version"])
        return flow


class TaskOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskOperation

    flow = factory.SubFactory(FlowFactory)
    flow_version = factory.LazyAttribute(lambda operation: operation.flow.latest_version)
    task_definition = factory.LazyFunction(lambda: task_definition("Format Text"))
    name = factory.Sequence(lambda n: f"Step {n}")
    instruction = "Say hello"
    index = factory.Sequence(lambda n: n)
    sorted_index = factory.SelfAttribute("index")


def chain_flow(organization: Organization, steps: int = 2, **kwargs: Any) -> Flow:
    """A flow of ``steps`` Format Text steps, each depending on the one before."""
    flow = FlowFactory(organization=organization, **kwargs)
    for index in range(steps):
        TaskOperationFactory(flow=flow, index=index, parameters={"template": f"step {index}"})
        if index:
            Dependency.objects.create(
                flow=flow,
                flow_version=flow.latest_version,
                source_task_operation=index - 1,
                target_task_operation=index,
            )
    return flow


class FlowRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlowRequest

    request_instructions = "Summarise the ticket and notify the team."
    request_metadata = factory.LazyFunction(lambda: [{"customer_email": "ann@example.com"}])
    request_name = factory.Sequence(lambda n: f"Request {n}")
    created_by_email = "factory@example.com"
    modified_by_email = "factory@example.com"


class FlowRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlowRun
        skip_postgeneration_save = True

    flow = factory.LazyAttribute(lambda run: chain_flow(run.organization))
    flow_version = factory.LazyAttribute(lambda run: run.flow.latest_version)
    flow_request = factory.LazyAttribute(lambda run: FlowRequestFactory(organization=run.organization, flow=run.flow))
    status = FlowRun.Status.COMPLETED
    triggered_time = factory.LazyFunction(timezone.now)
    triggered_by = "factory@example.com"

    @factory.post_generation
    def task_runs(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            for operation in self.flow_version.task_operations.all():
                TaskRun.objects.create(
                    flow_run=self,
                    task_operation=operation,
                    task_operation_index=operation.index,
                    status=TaskRun.Status.COMPLETED,
                    task_prep_answer={"parameters": [{"name": "template", "value": "hi", "explanation": "binding"}]},
                    result={"text": "hi"},
                )


class FlowResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlowResult

    flow_run = factory.LazyAttribute(lambda result: FlowRunFactory(organization=result.organization))
    integration_short_name = "zendesk"
    integration_entity_id = factory.Sequence(lambda n: str(1000 + n))
    body = "Thanks, we are on it."


class WebhookTriggerOperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookTriggerOperation

    name = factory.Sequence(lambda n: f"Operation {n}")
    webhook_trigger_definition = factory.LazyFunction(lambda: trigger_definition("Zendesk Ticket Created"))
    template_body = "Reply to ticket <{ticket_id}>: <{subject}>"


def shared_organization(user: User, role: str = Membership.Role.OWNER) -> Organization:
    """A second, shared organization the user belongs to."""
    organization = Organization.objects.create(name=f"Team of {user.email}")
    add_member(user, organization, role)
    return organization
