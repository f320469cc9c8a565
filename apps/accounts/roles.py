"""Roles: what each member of an organization may do, in one table, and the one permission that enforces it.

The roles are ranked; each grants what the ones below it grant::

    viewer < member < approver < admin < owner

- viewer: read everything in the organization (never a secret).
- member: create and change flow requests and flows, generate and execute flows, cancel, retry and rerun runs, manage
  the integration credentials they own.
- approver: approve and reject runs.
- admin: everyone's credentials, webhook trigger operations and their secrets, MCP servers, the approval policy,
  the members.
- owner: delete the organization, make and unmake owners. The last owner can neither leave nor be demoted.

``ACTION_ROLES`` says, for every action of every viewset on the API router, which role it needs: the role matrix test
(tests/accounts/test_role_matrix.py) fails for an action without a row. ``HasOrganizationRole`` reads the table: the
organization named by ``X-Neena-Organization`` is checked before the handler runs, the organization of the object an
action addresses when the viewset looks it up (``check_object_permissions``). Services check again with
``role_require`` (through ``organization_for_write`` for new objects), so the admin and the commands get the same
answer as the API. Token scopes (``HasTokenScope``) still apply on top.
"""

from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from django.db.models import Model
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.models import Membership, Organization, User
from apps.core.exceptions import ForbiddenError, InputValidationError, NotFoundError

Role = Membership.Role

# Lowest first, as Membership.Role lists them.
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(Role.values)}

# The header a caller with several organizations names the one a request acts in.
ORGANIZATION_HEADER = "X-Neena-Organization"


def role_at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` grants what ``needed`` grants (``None``, no membership, grants nothing)."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[needed]


class RoleRequiredError(ForbiddenError):
    """The caller is a member of the organization, with a role too low for the action; the message names both."""

    default_code = "role_required"

    def __init__(self, *, needed: str, organization: Organization, current: str) -> None:
        super().__init__(
            f"This needs the {needed} role in {organization.name} ({organization.id}); you are {current}.",
        )
        self.needed = needed


def membership_of(*, user: User, organization_id: UUID) -> Membership | None:
    """The user's membership of the organization, with the organization, or None."""
    return Membership.objects.select_related("organization").filter(user=user, organization_id=organization_id).first()


def role_require(*, user: User, organization_id: UUID, role: str) -> Membership:
    """The user's membership of the organization, when its role grants ``role``.

    Not a member: 404, as for an organization that does not exist (membership is what makes it visible). A member
    with a lower role: 403 ``role_required`` naming the role needed.
    """
    membership = membership_of(user=user, organization_id=organization_id)
    if membership is None:
        raise NotFoundError("Organization not found.")
    if not role_at_least(membership.role, role):
        raise RoleRequiredError(needed=role, organization=membership.organization, current=membership.role)
    return membership


@dataclass(frozen=True)
class RoleRule:
    """What an action needs: ``role``; or, with ``others_role``, ``role`` on objects the caller owns (their
    ``owner_id``) and ``others_role`` on everyone else's. ``None`` needs no membership (the caller's own account,
    creating an organization)."""

    role: str | None
    others_role: str | None = None

    def role_for(self, *, user: User, obj: Any) -> str | None:
        if self.others_role is not None and getattr(obj, "owner_id", None) != user.id:
            return self.others_role
        return self.role


ANY_USER = RoleRule(None)
VIEWER = RoleRule(Role.VIEWER)
MEMBER = RoleRule(Role.MEMBER)
APPROVER = RoleRule(Role.APPROVER)
ADMIN = RoleRule(Role.ADMIN)
OWNER = RoleRule(Role.OWNER)
OWN_ELSE_ADMIN = RoleRule(Role.MEMBER, others_role=Role.ADMIN)

_READ = {"list": VIEWER, "retrieve": VIEWER}

# (router basename, as the apps' urls.py register it; viewset action) -> what it needs. Every action on the router
# has a row (the role matrix test checks); an action without one is refused.
ACTION_ROLES: dict[tuple[str, str], RoleRule] = {
    ("users", "retrieve"): ANY_USER,
    ("users", "create_if_not_exists"): ANY_USER,
    ("organizations", "list"): ANY_USER,
    ("organizations", "create"): ANY_USER,
    ("organizations", "retrieve"): VIEWER,
    ("organizations", "update"): ADMIN,
    ("organizations", "destroy"): OWNER,
    ("organizations", "members"): VIEWER,
    # Adding, changing and removing members: admin; making, unmaking or removing an owner: owner (the service).
    ("organizations", "members_add"): ADMIN,
    ("organizations", "members_role_change"): ADMIN,
    # Anyone may leave: membership_remove asks the admin (or owner) role only to remove someone else.
    ("organizations", "members_remove"): VIEWER,
    **{("flow-requests", action): rule for action, rule in _READ.items()},
    ("flow-requests", "create"): MEMBER,
    ("flow-requests", "update"): MEMBER,
    ("flow-requests", "destroy"): MEMBER,
    **{("flows", action): rule for action, rule in _READ.items()},
    ("flows", "versions"): VIEWER,
    ("flows", "diff"): VIEWER,
    ("flows", "create"): MEMBER,
    ("flows", "update"): MEMBER,
    ("flows", "destroy"): MEMBER,
    ("flows", "generate"): MEMBER,
    ("flows", "execute"): MEMBER,
    ("flows", "export"): VIEWER,
    ("flows", "import_flow"): MEMBER,
    # The shared catalogue is the same for everyone; an organization's own (its MCP tools) only its members see.
    ("integrations", "list"): ANY_USER,
    **{("task-definitions", action): ANY_USER for action in _READ},
    **{("webhook-trigger-definitions", action): ANY_USER for action in _READ},
    ("integration-credentials", "list"): VIEWER,
    ("integration-credentials", "create"): MEMBER,
    ("integration-credentials", "destroy"): OWN_ELSE_ADMIN,
    ("integration-credentials", "oauth2_authorize_url"): MEMBER,
    ("integration-credentials", "oauth2_code"): MEMBER,
    **{("mcp-servers", action): rule for action, rule in _READ.items()},
    ("mcp-servers", "create"): ADMIN,
    ("mcp-servers", "destroy"): ADMIN,
    ("mcp-servers", "sync"): ADMIN,
    **{("flow-runs", action): rule for action, rule in _READ.items()},
    ("flow-runs", "all_for_flow_id"): VIEWER,
    ("flow-runs", "with_flow_result"): VIEWER,
    ("flow-runs", "preview"): VIEWER,
    ("flow-runs", "create"): MEMBER,
    ("flow-runs", "cancel"): MEMBER,
    ("flow-runs", "retry"): MEMBER,
    ("flow-runs", "rerun"): MEMBER,
    ("flow-runs", "rerun_from"): MEMBER,
    ("flow-runs", "retry_failed"): MEMBER,
    ("flow-runs", "approve"): APPROVER,
    ("flow-runs", "reject"): APPROVER,
    ("flow-results", "retrieve"): VIEWER,
    **{("webhook-trigger-operations", action): rule for action, rule in _READ.items()},
    ("webhook-trigger-operations", "create"): ADMIN,
    ("webhook-trigger-operations", "update"): ADMIN,
    ("webhook-trigger-operations", "destroy"): ADMIN,
    ("webhook-trigger-operations", "rotate_secret"): ADMIN,
    **{("webhook-trigger-runs", action): rule for action, rule in _READ.items()},
    # Any signed-in user may ask; the selector shows only the organizations where they are admin or owner.
    ("audit-events", "list"): ANY_USER,
}


def action_rule(view: Any) -> RoleRule | None:
    """The view action's row of ``ACTION_ROLES``, or None when it has none."""
    return ACTION_ROLES.get((getattr(view, "basename", ""), getattr(view, "action", None) or ""))


def request_organization(request: Request) -> Organization | None:
    """The organization ``X-Neena-Organization`` names, the caller being a member of it; None without the header.

    Malformed: 422. Not a member (or no such organization): 404, the two never told apart. Read once per request.
    """
    if hasattr(request, "neena_organization"):
        return cast(Organization | None, request.neena_organization)
    raw = request.headers.get(ORGANIZATION_HEADER)
    organization = None
    if raw is not None:
        try:
            organization_id = UUID(raw.strip())
        except ValueError:
            raise InputValidationError.single(
                ["header", ORGANIZATION_HEADER], "Must be a valid UUID.", "invalid"
            ) from None
        membership = membership_of(user=cast(User, request.user), organization_id=organization_id)
        if membership is None:
            raise NotFoundError("Organization not found.")
        organization = membership.organization
    setattr(request, "neena_organization", organization)  # noqa: B010 (an attribute of our own on DRF's request)
    return organization


def _organization_id_of(obj: Model) -> UUID:
    return cast(UUID, obj.pk if isinstance(obj, Organization) else obj.organization_id)  # type: ignore[attr-defined]


class HasOrganizationRole(BasePermission):
    """Enforces ``ACTION_ROLES``: raises the 403 ``role_required`` (or the header's 404 or 422) itself, so the body
    says which role is missing where."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        action_map = getattr(view, "action_map", None)
        if action_map is not None and (request.method or "").lower() not in action_map:
            return True  # a method the viewset does not have (OPTIONS too): DRF answers 405 and runs nothing
        rule = action_rule(view)
        if rule is None:
            raise ForbiddenError("No role grants this action.", code="role_required")
        organization = request_organization(request)
        if organization is not None and rule.role is not None:
            role_require(user=request.user, organization_id=organization.id, role=rule.role)
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Model) -> bool:
        """The object was found in the caller's scoped queryset, so the caller is a member of its organization: the
        lowest role needs no second look (and reading an object costs no extra query)."""
        user = cast(User, request.user)
        rule = action_rule(view)
        role = rule.role_for(user=user, obj=obj) if rule is not None else Role.OWNER
        if role is not None and role != Role.VIEWER:
            role_require(user=user, organization_id=_organization_id_of(obj), role=role)
        return True
