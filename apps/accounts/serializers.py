"""User, organization and member shapes of the documented API."""

from datetime import timedelta
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.models import Membership, Organization
from apps.accounts.services import APPROVAL_TIMEOUT_MAX
from apps.core.serializers import StrictInputSerializer


class MembershipSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="organization.id", read_only=True)
    name = serializers.CharField(source="organization.name", read_only=True)
    is_personal = serializers.BooleanField(source="organization.is_personal", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "name", "role", "is_personal"]


class UserSerializer(serializers.Serializer):
    """The current user; ``permissions`` lists the scopes of the token used (null where no token is involved)."""

    email = serializers.EmailField()
    full_name = serializers.CharField()
    auth0_id = serializers.CharField()
    id = serializers.UUIDField()
    permissions = serializers.ListField(child=serializers.CharField(), allow_null=True)
    organizations = MembershipSerializer(many=True, help_text="The organizations the user belongs to, with the role.")


class UserCreateIfNotExistsSerializer(StrictInputSerializer):
    # The current user's shape, which a client may send back as it read it.
    ignored_fields = ("email", "full_name", "auth0_id", "id", "permissions", "organizations")

    email = serializers.EmailField()
    full_name = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    auth0_id = serializers.CharField(max_length=255, allow_blank=True)


ORGANIZATION_OUTPUT_FIELDS = (
    "id",
    "name",
    "is_personal",
    "role",
    "approval_policy",
    "approval_timeout_seconds",
    "approval_timeout_action",
    "forbid_self_approval",
    "created_date",
    "modified_date",
)


class OrganizationSerializer(serializers.Serializer):
    """An organization as its members see it: ``role`` is the caller's own in it."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    is_personal = serializers.BooleanField()
    role = serializers.ChoiceField(choices=Membership.Role.choices, help_text="The caller's role.")
    approval_policy = serializers.ChoiceField(choices=Organization.ApprovalPolicy.choices)
    approval_timeout_seconds = serializers.SerializerMethodField(
        help_text="How long a run may wait for approval, in seconds; null waits for ever."
    )
    approval_timeout_action = serializers.ChoiceField(choices=Organization.ApprovalTimeoutAction.choices)
    forbid_self_approval = serializers.BooleanField()
    created_date = serializers.DateTimeField()
    modified_date = serializers.DateTimeField()

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_approval_timeout_seconds(self, organization: Organization) -> int | None:
        timeout = organization.approval_timeout
        return None if timeout is None else int(timeout.total_seconds())


class OrganizationInputSerializer(StrictInputSerializer):
    """A new organization's name and approval policy (the defaults: before each side-effecting step, no timeout)."""

    ignored_fields = ORGANIZATION_OUTPUT_FIELDS

    name = serializers.CharField(max_length=255)
    approval_policy = serializers.ChoiceField(
        choices=Organization.ApprovalPolicy.choices, default=Organization.ApprovalPolicy.SIDE_EFFECTS
    )
    approval_timeout_seconds = serializers.IntegerField(
        min_value=1, max_value=int(APPROVAL_TIMEOUT_MAX.total_seconds()), allow_null=True, default=None
    )
    approval_timeout_action = serializers.ChoiceField(
        choices=Organization.ApprovalTimeoutAction.choices, default=Organization.ApprovalTimeoutAction.CANCEL
    )
    forbid_self_approval = serializers.BooleanField(default=False)

    def to_service_kwargs(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        seconds = data.pop("approval_timeout_seconds")
        data["approval_timeout"] = None if seconds is None else timedelta(seconds=seconds)
        return data


class OrganizationUpdateInputSerializer(OrganizationInputSerializer):
    """The whole policy, as on create, for the organization ``id``."""

    id = serializers.UUIDField()

    def to_service_kwargs(self) -> dict[str, Any]:
        data = super().to_service_kwargs()
        data.pop("id")
        return data


class MembersQuerySerializer(serializers.Serializer):
    organization_id = serializers.UUIDField()


class MemberRemoveQuerySerializer(MembersQuerySerializer):
    email = serializers.EmailField(max_length=254)


class MemberSerializer(serializers.Serializer):
    """A member of an organization: who, with which role, since when."""

    email = serializers.EmailField(source="user.email")
    full_name = serializers.CharField(source="user.full_name")
    user_id = serializers.UUIDField(source="user.id")
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    created_date = serializers.DateTimeField(help_text="When they joined.")


class MemberInputSerializer(StrictInputSerializer):
    """Who (by email: a user with no account yet is provisioned) and with which role."""

    ignored_fields = ("full_name", "user_id", "created_date")

    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices)
