"""User shapes of the documented API."""

from rest_framework import serializers

from apps.accounts.models import Membership
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
