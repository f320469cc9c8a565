"""Users, organizations and memberships: who may see and change what."""

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from apps.core.models import BaseModel


class UserManager(BaseUserManager["User"]):
    """Creates bare users; ``services.user_create`` is what gives a user its personal organization."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> "User":
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person or service account, logging in by email; ``auth0_id`` links an external identity (OIDC subject)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=255, blank=True, default="")
    auth0_id = models.CharField(max_length=255, blank=True, default="")
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class Organization(BaseModel):
    """A tenant. Every owned object belongs to exactly one; a user sees the objects of the organizations they are a
    member of, and nothing else."""

    class ApprovalPolicy(models.TextChoices):
        SIDE_EFFECTS = "side_effects", "Before each side-effecting step"
        ALWAYS = "always", "Before the first step of every run"
        NEVER = "never", "Never"

    class ApprovalTimeoutAction(models.TextChoices):
        CANCEL = "cancel", "Cancel the run"
        CONTINUE = "continue", "Continue as if approved"

    name = models.CharField(max_length=255)
    is_personal = models.BooleanField(default=False, help_text="Made for one user when the user was created.")
    approval_policy = models.CharField(
        max_length=16, choices=ApprovalPolicy.choices, default=ApprovalPolicy.SIDE_EFFECTS
    )
    approval_timeout = models.DurationField(
        null=True, blank=True, help_text="How long a run may wait for approval; empty waits for ever."
    )
    approval_timeout_action = models.CharField(
        max_length=16, choices=ApprovalTimeoutAction.choices, default=ApprovalTimeoutAction.CANCEL
    )
    forbid_self_approval = models.BooleanField(
        default=False, help_text="The user who triggered a run may not approve it."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(BaseModel):
    """A user's role in an organization. The roles are ranked, each granting what the ones below it grant; what each
    allows is the table in ``apps/accounts/roles.py`` (and the README's "Roles")."""

    class Role(models.TextChoices):
        # Listed from the lowest to the highest: apps/accounts/roles.py ranks them in this order.
        VIEWER = "viewer", "Viewer"
        MEMBER = "member", "Member"
        APPROVER = "approver", "Approver"
        ADMIN = "admin", "Admin"
        OWNER = "owner", "Owner"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"
