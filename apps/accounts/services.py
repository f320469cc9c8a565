"""Account rules: creating users with their personal organization, signing in with an OIDC issuer's token,
organizations and their approval policy (audited), issuing personal API keys."""

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, set_token_value

from apps.accounts.exceptions import TokenRefusedError
from apps.accounts.models import Membership, Organization, User
from apps.audit.services import audit_event_record, audit_snapshot
from apps.core.exceptions import ErrorItem, ForbiddenError, InputValidationError

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
) -> Organization:
    """Creates a (shared) organization after ``organization_check``; members are added to it afterwards."""
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
    waiting; the sweeper applies the new timeout to them from its next pass."""
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
