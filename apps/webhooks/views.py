"""``/api/v1/webhook_trigger_operations/`` (create, read, update, rotate the secret, list, delete),
``/api/v1/webhook_trigger_runs/`` (read, list) and the public inbound endpoint ``/api/v1/webhooks/<operation_id>/``.
"""

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import NotFoundError
from apps.core.query import IdQuerySerializer, parse_query
from apps.core.schema import ErrorSerializer
from apps.core.viewsets import QueryStringViewSet
from apps.webhooks.models import TriggerRun, WebhookTriggerOperation
from apps.webhooks.selectors import trigger_operation_list_for_user, trigger_run_list_for_user
from apps.webhooks.serializers import (
    InboundDeliveryAcceptedSerializer,
    InboundDeliveryAnswerSerializer,
    TriggerOperationInputSerializer,
    TriggerOperationSerializer,
    TriggerOperationUpdateInputSerializer,
    TriggerOperationWithSecretSerializer,
    TriggerRunListQuerySerializer,
    TriggerRunSerializer,
)
from apps.webhooks.services import operations
from apps.webhooks.services.receiving import delivery_check_declared_size, delivery_receive
from apps.webhooks.signatures import (
    GITHUB_SIGNATURE,
    SLACK_SIGNATURE,
    SLACK_TIMESTAMP,
    STANDARD_ID,
    STANDARD_SIGNATURE,
    STANDARD_TIMESTAMP,
    ZENDESK_SIGNATURE,
    ZENDESK_TIMESTAMP,
)


@extend_schema_view(
    list=extend_schema(summary="Read all webhook trigger operations"),
    retrieve=extend_schema(summary="Read a webhook trigger operation", parameters=[IdQuerySerializer]),
    create=extend_schema(
        summary="Create a webhook trigger operation",
        description="Every <{field}> in template_body must be an event field of the trigger definition. The answer "
        "carries the operation's inbound_url and its signing_secret, shown only here and when rotated. Events are "
        "POSTed to inbound_url without a token, signed with the secret as the definition's signature_scheme says: "
        "standard_webhooks (the webhook integration, the Gmail relay) is Standard Webhooks, webhook-id, "
        "webhook-timestamp (Unix seconds) and webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body keyed "
        "with the whsec_ secret's bytes>; github_sha256 X-Hub-Signature-256; slack_v0 X-Slack-Signature and "
        "X-Slack-Request-Timestamp; zendesk X-Zendesk-Webhook-Signature and X-Zendesk-Webhook-Signature-Timestamp. "
        "A new event answers 202 with its trigger_run_id, a repeated delivery 200; a bad signature 401 "
        "(signature_invalid, signature_missing, or stale_delivery for a signed timestamp outside "
        "NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS), an inactive operation 404.",
        request=TriggerOperationInputSerializer,
        responses=TriggerOperationWithSecretSerializer,
    ),
    update=extend_schema(
        summary="Update a webhook trigger operation",
        description="Replaces name and template_body (placeholders checked as on create) and, when given, status. "
        "Updating a failed operation reactivates it.",
        request=TriggerOperationUpdateInputSerializer,
        responses=TriggerOperationSerializer,
    ),
    destroy=extend_schema(
        summary="Remove a webhook trigger operation",
        parameters=[IdQuerySerializer],
        responses=TriggerOperationSerializer,
    ),
)
class WebhookTriggerOperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = TriggerOperationSerializer

    def get_queryset(self) -> QuerySet[WebhookTriggerOperation]:
        return trigger_operation_list_for_user(user=self.user)

    def create(self, request: Request) -> Response:
        serializer = TriggerOperationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data["organization"] = self.target_organization(data.get("organization"))
        operation, secret = operations.trigger_operation_create(user=self.user, **data)
        return Response(TriggerOperationWithSecretSerializer(operation, context={"signing_secret": secret}).data)

    def update(self, request: Request) -> Response:
        serializer = TriggerOperationUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        operation = operations.trigger_operation_update(
            user=self.user, operation=self.get_object_by_id(data.pop("id")), **data
        )
        return Response(TriggerOperationSerializer(operation).data)

    def destroy(self, request: Request) -> Response:
        operation = self.get_object()
        body = TriggerOperationSerializer(operation).data
        operations.trigger_operation_delete(user=self.user, operation=operation)
        return Response(body)

    @extend_schema(
        summary="Rotate a webhook trigger operation's signing secret",
        description="Replaces the secret at once: deliveries signed with the old one answer 401 from now on. The "
        "answer carries the new signing_secret, shown only here.",
        parameters=[IdQuerySerializer],
        request=None,
        responses=TriggerOperationWithSecretSerializer,
    )
    @action(detail=False, methods=["post"], url_path="rotate_secret")
    def rotate_secret(self, request: Request) -> Response:
        self.refuse_body_fields()
        operation = self.get_object()
        secret = operations.trigger_operation_rotate_secret(user=self.user, operation=operation)
        return Response(TriggerOperationWithSecretSerializer(operation, context={"signing_secret": secret}).data)


@extend_schema_view(
    list=extend_schema(
        summary="Read all webhook trigger runs",
        description="One per delivered event, newest first: status (received, processing, completed, failed), the "
        "reason of a failure, the extracted event fields, the flow request and run it started, and the payload as "
        "delivered. 404 when operation_id names no operation of the caller's organizations.",
        parameters=[TriggerRunListQuerySerializer],
        responses={200: TriggerRunSerializer(many=True), 404: ErrorSerializer},
    ),
    retrieve=extend_schema(
        summary="Read a webhook trigger run",
        parameters=[IdQuerySerializer],
    ),
)
class WebhookTriggerRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, QueryStringViewSet):
    serializer_class = TriggerRunSerializer

    def get_queryset(self) -> QuerySet[TriggerRun]:
        return trigger_run_list_for_user(user=self.user)

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        operation_id = parse_query(TriggerRunListQuerySerializer, request).get("operation_id")
        visible = trigger_operation_list_for_user(user=self.user)
        if operation_id is not None and not visible.filter(id=operation_id).exists():
            raise NotFoundError("Webhook trigger operation not found.")
        page = self.paginate_queryset(trigger_run_list_for_user(user=self.user, operation_id=operation_id))
        return Response(TriggerRunSerializer(page, many=True).data)


class IgnoreAcceptNegotiation(BaseContentNegotiation):
    """Integrations do not negotiate: the inbound endpoint always answers JSON, whatever Accept says."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


# The headers each signature scheme reads. None is required by every operation (each operation's definition names
# one scheme), so none is marked required; a delivery without its scheme's headers answers 401 signature_missing.
INBOUND_SIGNATURE_HEADERS = [
    (STANDARD_ID, "standard_webhooks: the delivery id (signed; repeated deliveries are recognised by it)."),
    (STANDARD_TIMESTAMP, "standard_webhooks: Unix seconds, within NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS."),
    (
        STANDARD_SIGNATURE,
        "standard_webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body keyed with the whsec_ secret's bytes>.",
    ),
    (GITHUB_SIGNATURE, "github_sha256: sha256=<hex HMAC-SHA256 of the body>."),
    (SLACK_SIGNATURE, 'slack_v0: v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">.'),
    (SLACK_TIMESTAMP, "slack_v0: Unix seconds, within NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS."),
    (ZENDESK_SIGNATURE, "zendesk: <base64 HMAC-SHA256 of timestamp + body>."),
    (ZENDESK_TIMESTAMP, "zendesk: the signed timestamp, within NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS."),
]


class InboundWebhookView(APIView):
    """``POST /api/v1/webhooks/<operation_id>/``: where integrations deliver events. Public: the signature over the
    raw body, with the operation's secret, is the authentication (see ``apps.webhooks.signatures``).

    Answers 202 ``{"trigger_run_id"}`` for a new event (processed by a worker), 200 with ``"duplicate": true`` for a
    delivery id seen before, 200 ``{"challenge"}`` for Slack's URL verification; 401 bad, missing or stale
    signature, 404 unknown, inactive or failed operation (the same answer), 413 body over
    NEENA_WEBHOOK_MAX_BODY_BYTES, 422 not a JSON object, a NUL or lone surrogate in it, nesting over
    NEENA_MAX_JSON_DEPTH (all checked after the signature, storing nothing), or an overlong delivery id, 503 when the
    operation's secret cannot be decrypted.

    In the OpenAPI schema without a security requirement (``auth=[]``), with the signature headers of every scheme as
    optional header parameters and its own answers; its callers are integrations configured with the URL.

    Not throttled per client: deliveries come in bursts from a few integration addresses, and refusing them would
    lose events; an unsigned request costs one indexed read before it is refused.
    """

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    content_negotiation_class = IgnoreAcceptNegotiation

    @extend_schema(
        summary="Deliver a webhook event",
        operation_id="webhooks_deliver",
        description="Where integrations post events for a webhook trigger operation (its inbound_url). No token: "
        "the signature over the raw body, made with the operation's signing_secret as its trigger definition's "
        "signature_scheme says, is the authentication. A new event answers 202 with its trigger_run_id (a worker then "
        "runs the operation's flow with the extracted event fields as inputs); a delivery seen before answers 200 with "
        "duplicate true and starts no second run; Slack's url_verification answers 200 with its challenge. 401: bad, "
        "missing or stale signature (signature_invalid, signature_missing, stale_delivery). 404: unknown, inactive or "
        "failed operation, all alike. 413: body over NEENA_WEBHOOK_MAX_BODY_BYTES. 422 (checked after the signature): "
        "not a JSON object, text that cannot be stored, nesting over NEENA_MAX_JSON_DEPTH, an overlong delivery id. "
        "503: the operation's secret cannot be decrypted now.",
        auth=[],
        parameters=[
            OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False, description=description)
            for name, description in INBOUND_SIGNATURE_HEADERS
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            202: InboundDeliveryAcceptedSerializer,
            200: InboundDeliveryAnswerSerializer,
            401: ErrorSerializer,
        },
    )
    def post(self, request: Request, operation_id: UUID) -> Response:
        try:
            declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared_length = 0
        delivery_check_declared_size(declared_length=declared_length)  # refused before the body is read
        outcome = delivery_receive(operation_id=operation_id, body=request.body, headers=request.headers)
        if outcome.challenge is not None:
            return Response({"challenge": outcome.challenge})
        if outcome.created:
            return Response({"trigger_run_id": str(outcome.trigger_run_id)}, status=status.HTTP_202_ACCEPTED)
        return Response({"trigger_run_id": str(outcome.trigger_run_id), "duplicate": True})
