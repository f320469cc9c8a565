"""Account rules: creating users with their personal organization, signing in with an OIDC issuer's token,
organizations and their approval policy, their members and roles (each change audited), issuing personal API keys.

Every change of membership goes through one function here (``organization_create``, ``organization_delete``,
``membership_add``, ``membership_role_change``, ``membership_remove``), each checking the actor's role itself."""

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value

from apps.accounts.exceptions import TokenRefusedError
from apps.accounts.models import Membership, Organization, User
from apps.accounts.roles import role_require
from apps.audit.services import audit_event_record, audit_membership_record, audit_snapshot
from apps.core.exceptions import ConflictError, ErrorItem, ForbiddenError, InputValidationError, NotFoundError
from apps.runs.models import FlowRun

Role = Membership.Role

# How long a run may wait for approval at most. Longer is a mistake, not a policy, and a timeout of thousands of years
# cannot be stored (a duration column holds microseconds in 64 bits) nor added to a date.
APPROVAL_TIMEOUT_MAX = timedelta(days=365)

# What the audit log records of an organization: its name and approval policy.
POLICY_FIELDS = ("name", "approval_policy", "approval_timeout", "approval_timeout_action", "forbid_self_approval")


@transaction.atomic
def user_create(*, email: str, full_name: str = "", auth0_id: str = "", password: str | None = None) -> User:
    """Creates a user, a personal organization named after them, and their owner membership of it."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name, auth0_id=auth0_id)
    organization = Organization.objects.create(
        name=f"{full_name or user.email}'s organization",
        is_personal=True,
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    Membership.objects.create(
        user=user,
        organization=organization,
        role=Membership.Role.OWNER,
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    return user


@transaction.atomic
def user_get_or_create(*, email: str, full_name: str = "", auth0_id: str = "") -> User:
    """The user with this email (case-insensitive), created with a personal organization when there is none."""
    user = User.objects.filter(email__iexact=email).first()
    return user or user_create(email=email, full_name=full_name, auth0_id=auth0_id)


@transaction.atomic
def user_sign_in_oidc(*, subject: str, email: str, full_name: str = "") -> User:
    """The user a verified OIDC token acts as: found by the email the issuer vouches for, provisioned when new.

    Steps:
    1. The user with this email (case-insensitive); none: one is created with a personal organization and
       ``auth0_id`` set to ``subject`` (as ``create_if_not_exists`` documents). Of two first requests at once, the
       second reads the user the first created.
    2. A deactivated user is refused.
    3. A user whose ``auth0_id`` is blank is linked to ``subject`` now (an UPDATE conditional on it being blank).
    4. A user linked to another subject is refused: the email belongs to another of the issuer's identities (another
       connection, or someone else's account claiming the address). The subject alone never finds a user: any user
       may write ``auth0_id`` into their own account through ``create_if_not_exists``.
    """
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        try:
            with transaction.atomic():
                user = user_create(email=email, full_name=full_name, auth0_id=subject)
        except IntegrityError:
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise
    if not user.is_active:
        raise TokenRefusedError("The user is deactivated.")
    if not user.auth0_id and User.objects.filter(pk=user.pk, auth0_id="").update(auth0_id=subject):
        user.auth0_id = subject
    elif not user.auth0_id:
        user.refresh_from_db(fields=["auth0_id"])
    if user.auth0_id != subject:
        raise TokenRefusedError(
            "This email belongs to a Neena user linked to another identity of the issuer (auth0_id); an "
            "administrator can clear the user's auth0_id to link this one."
        )
    return user


@transaction.atomic
def user_create_if_not_exists(*, caller: User, email: str, full_name: str = "", auth0_id: str = "") -> User:
    """The documented ``create_if_not_exists``: only for the caller's own email; fills in blank profile fields."""
    if email.strip().lower() != caller.email.lower():
        raise ForbiddenError("You can only create the user with your own email.", code="email_mismatch")
    changed = []
    if full_name and not caller.full_name:
        caller.full_name = full_name
        changed.append("full_name")
    if auth0_id and not caller.auth0_id:
        caller.auth0_id = auth0_id
        changed.append("auth0_id")
    if changed:
        caller.save(update_fields=changed)
    return caller


def organization_check(
    *, name: str, approval_policy: str, approval_timeout: timedelta | None, approval_timeout_action: str
) -> None:
    """The rules of an organization's name and approval policy; raises InputValidationError listing every problem.

    The timeout, when set, is positive (zero or less would time every run out the moment it parks) and at most
    APPROVAL_TIMEOUT_MAX.
    """
    problems = []
    if not name.strip():
        problems.append(ErrorItem(["body", "name"], "An organization needs a name.", "blank"))
    if approval_policy not in Organization.ApprovalPolicy.values:
        problems.append(
            ErrorItem(["body", "approval_policy"], f"Unknown policy '{approval_policy}'.", "invalid_choice")
        )
    if approval_timeout_action not in Organization.ApprovalTimeoutAction.values:
        problems.append(
            ErrorItem(
                ["body", "approval_timeout_action"], f"Unknown action '{approval_timeout_action}'.", "invalid_choice"
            )
        )
    if approval_timeout is not None and not timedelta(0) < approval_timeout <= APPROVAL_TIMEOUT_MAX:
        problems.append(
            ErrorItem(
                ["body", "approval_timeout"],
                f"The approval timeout must be more than zero and at most {APPROVAL_TIMEOUT_MAX.days} days; leave it "
                "empty to wait for ever.",
                "out_of_range",
            )
        )
    if problems:
        raise InputValidationError(problems)


@transaction.atomic
def organization_create(
    *,
    user: User,
    name: str,
    approval_policy: str = Organization.ApprovalPolicy.SIDE_EFFECTS,
    approval_timeout: timedelta | None = None,
    approval_timeout_action: str = Organization.ApprovalTimeoutAction.CANCEL,
    forbid_self_approval: bool = False,
    creator_is_owner: bool = True,
) -> Organization:
    """Creates a (shared) organization after ``organization_check``, with ``user`` as its first owner; other members
    are added with ``membership_add``. The admin's superusers create tenants for others (``creator_is_owner`` False)
    and name the members on the same page."""
    organization_check(
        name=name,
        approval_policy=approval_policy,
        approval_timeout=approval_timeout,
        approval_timeout_action=approval_timeout_action,
    )
    organization = Organization.objects.create(
        name=name,
        approval_policy=approval_policy,
        approval_timeout=approval_timeout,
        approval_timeout_action=approval_timeout_action,
        forbid_self_approval=forbid_self_approval,
        created_by_email=user.email,
        modified_by_email=user.email,
    )
    if creator_is_owner:
        Membership.objects.create(
            user=user,
            organization=organization,
            role=Role.OWNER,
            created_by_email=user.email,
            modified_by_email=user.email,
        )
    audit_event_record(
        organization_id=organization.id,
        actor=user,
        action="organization.created",
        object_type="organization",
        object_id=organization.id,
        after=audit_snapshot(organization, POLICY_FIELDS),
    )
    return organization


@transaction.atomic
def organization_update(
    *,
    user: User,
    organization: Organization,
    name: str,
    approval_policy: str,
    approval_timeout: timedelta | None,
    approval_timeout_action: str,
    forbid_self_approval: bool,
) -> Organization:
    """Replaces the organization's name and approval policy after ``organization_check``. Runs already waiting keep
    waiting; the sweeper applies the new timeout to them from its next pass.

    Needs the admin role in the organization; a superuser (the operators, in the admin) sets any tenant's policy."""
    if not user.is_superuser:
        role_require(user=user, organization_id=organization.id, role=Role.ADMIN)
    organization_check(
        name=name,
        approval_policy=approval_policy,
        approval_timeout=approval_timeout,
        approval_timeout_action=approval_timeout_action,
    )
    before = audit_snapshot(organization, POLICY_FIELDS)
    organization.name = name
    organization.approval_policy = approval_policy
    organization.approval_timeout = approval_timeout
    organization.approval_timeout_action = approval_timeout_action
    organization.forbid_self_approval = forbid_self_approval
    organization.modified_by_email = user.email
    organization.save()
    after = audit_snapshot(organization, POLICY_FIELDS)
    if after != before:
        audit_event_record(
            organization_id=organization.id,
            actor=user,
            action="organization.policy_changed",
            object_type="organization",
            object_id=organization.id,
            before=before,
            after=after,
        )
    return organization


@transaction.atomic
def organization_delete(*, user: User, organization: Organization) -> None:
    """Deletes a shared organization with everything in it (flows, runs, credentials, webhook operations, members).

    Needs the owner role. A personal organization cannot be deleted (it is where its user's objects go by default),
    nor one with runs still going (their workers would find nothing): 409. Stored credentials are deleted without
    being revoked at the provider; revoke them first (``DELETE /integration_credentials/``) where that matters.
    """
    role_require(user=user, organization_id=organization.id, role=Role.OWNER)
    if organization.is_personal:
        raise ConflictError("A personal organization cannot be deleted.", code="personal_organization")
    if FlowRun.objects.filter(organization=organization).exclude(status__in=FlowRun.TERMINAL).exists():
        raise ConflictError("The organization has runs that have not ended; cancel them first.", code="runs_not_ended")
    # Runs first: they protect their flow, version and request (which the organization's cascade would delete).
    FlowRun.objects.filter(organization=organization).delete()
    organization.delete()


def _member_manager_check(*, user: User, organization: Organization, role: str) -> None:
    """The actor may change the organization's members: ``role`` in it, or a superuser (the admin's operators, who
    name any tenant's members on its admin page; through the API they need the role like anyone)."""
    if not user.is_superuser:
        role_require(user=user, organization_id=organization.id, role=role)


def _role_check(role: str) -> None:
    if role not in Role.values:
        raise InputValidationError.single(
            ["body", "role"], f"The role must be one of: {', '.join(Role.values)}.", "invalid_choice"
        )


def _membership_locked(*, organization: Organization, email: str) -> Membership:
    """The member with this email (case-insensitive), locked with the organization's other owners' rows; 404 when
    there is none."""
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(organization=organization, user__email__iexact=email.strip())
        .first()
    )
    if membership is None:
        raise NotFoundError("No member of the organization has this email.", code="member_not_found")
    return membership


def _last_owner_check(*, membership: Membership) -> None:
    """Refuses (409 ``last_owner``) to take the owner role from the organization's only owner. The owners' rows are
    locked first, so two owners demoting each other at once cannot both succeed."""
    if membership.role != Role.OWNER:
        return
    owners = list(
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.OWNER)
        .values_list("id", flat=True)
    )
    if owners == [membership.id]:
        raise ConflictError(
            "The organization's last owner can neither leave nor be demoted; make another member owner first.",
            code="last_owner",
        )


@transaction.atomic
def membership_add(*, user: User, organization: Organization, email: str, role: str) -> Membership:
    """Adds the user with this email to the organization with ``role``, provisioning the user (with their personal
    organization) when there is none yet.

    Needs the admin role; adding an owner needs the owner role. 409 ``already_member`` when they are one (change the
    role with ``membership_role_change``).
    """
    _role_check(role)
    _member_manager_check(user=user, organization=organization, role=Role.OWNER if role == Role.OWNER else Role.ADMIN)
    if organization.is_personal:
        raise ConflictError("A personal organization has only its owner.", code="personal_organization")
    member = user_get_or_create(email=email.strip())
    if Membership.objects.filter(organization=organization, user=member).exists():
        raise ConflictError("The user is already a member; change their role instead.", code="already_member")
    membership = Membership.objects.create(
        user=member, organization=organization, role=role, created_by_email=user.email, modified_by_email=user.email
    )
    audit_membership_record(actor=user, membership=membership, before_role=None, after_role=role)
    return membership


@transaction.atomic
def membership_role_change(*, user: User, organization: Organization, email: str, role: str) -> Membership:
    """Gives the member with this email ``role``.

    Needs the admin role; making or unmaking an owner needs the owner role; the last owner cannot be demoted (409).
    """
    _role_check(role)
    membership = _membership_locked(organization=organization, email=email)
    touches_owner = Role.OWNER in (role, membership.role)
    _member_manager_check(user=user, organization=organization, role=Role.OWNER if touches_owner else Role.ADMIN)
    if role != Role.OWNER:
        _last_owner_check(membership=membership)
    before_role = membership.role
    if role == before_role:
        return membership
    membership.role = role
    membership.modified_by_email = user.email
    membership.save(update_fields=["role", "modified_by_email", "modified_date"])
    audit_membership_record(actor=user, membership=membership, before_role=before_role, after_role=role)
    return membership


@transaction.atomic
def membership_remove(*, user: User, organization: Organization, email: str) -> Membership:
    """Removes the member with this email from the organization; returns the membership as it was.

    Anyone may leave (remove themselves); removing someone else needs the admin role, an owner the owner role. The
    last owner cannot leave nor be removed (409).
    """
    membership = _membership_locked(organization=organization, email=email)
    if membership.user_id != user.id:
        needed = Role.OWNER if membership.role == Role.OWNER else Role.ADMIN
        _member_manager_check(user=user, organization=organization, role=needed)
    _last_owner_check(membership=membership)
    audit_membership_record(actor=user, membership=membership, before_role=membership.role, after_role=None)
    membership.delete()
    return membership


def _validated_scopes(scopes: Iterable[str]) -> list[str]:
    requested = set(scopes)
    unknown = sorted(requested - set(settings.API_SCOPES))
    if unknown or not requested:
        raise InputValidationError.single(
            ["scopes"], f"Scopes must be some of: {', '.join(settings.API_SCOPES)}.", "invalid_scope"
        )
    return [scope for scope in settings.API_SCOPES if scope in requested]


@transaction.atomic
def api_key_create(*, user: User, scopes: Iterable[str]) -> str:
    """Issues a personal API key: a long-lived OAuth2 access token with no client application, returned once."""
    token = f"neena_{secrets.token_urlsafe(32)}"
    access_token = get_access_token_model()(
        user=user,
        application=None,
        scope=" ".join(_validated_scopes(scopes)),
        expires=timezone.now() + settings.NEENA_API_KEY_TTL,
    )
    # Stored as its SHA-256 checksum only (RFC 9700 token storage, see OAUTH2_PROVIDER): the database never holds it.
    set_token_value(access_token, token)
    access_token.save()
    return token
