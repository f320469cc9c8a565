"""Users and organizations in the admin, and the organization scoping every tenant object's admin uses.

``OrganizationScopedAdmin`` is how the admin keeps tenants apart, as the API's selectors do: staff who are not
superusers see, pick and act on only the objects of the organizations they are members of; superusers see them all.
An object outside the user's organizations answers 404 like one that does not exist, so a guessed URL tells nothing.
"""

from typing import Any, cast
from uuid import UUID

from django.contrib import admin
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from apps.accounts.models import Membership, Organization, User
from apps.accounts.selectors import organization_ids_for_user
from apps.accounts.services import (
    membership_add,
    membership_remove,
    membership_role_change,
    organization_check,
    organization_create,
    organization_update,
)
from apps.core.admin import SelectionCheckedAdmin, ServiceAdmin, ServiceForm

# Where the organization ids of the request's user are kept once read: one query per request, however many objects
# a page checks.
_ORGANIZATION_IDS = "_neena_admin_organization_ids"


def member_organization_ids(request: HttpRequest) -> frozenset[UUID]:
    """The ids of the organizations the request's user is a member of (superusers included: this is membership)."""
    cached = request.__dict__.get(_ORGANIZATION_IDS)
    if cached is None:
        user = cast(User, request.user)
        cached = frozenset(organization_ids_for_user(user=user).values_list("organization_id", flat=True))
        request.__dict__[_ORGANIZATION_IDS] = cached
    return cast(frozenset[UUID], cached)


def sees_every_organization(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser)


class OrganizationListFilter(RelatedFieldListFilter):
    """The organization filter of a list: only the user's organizations are offered (every one for superusers), so the
    filter does not list the names of other tenants."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        if sees_every_organization(request):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": member_organization_ids(request)}
        )


class OrganizationScopedAdmin(SelectionCheckedAdmin):
    """The admin of a model that belongs to an organization, reached from the model by ``organization_path`` (a
    lookup: ``organization``, ``flow_run__organization``, or ``pk`` for organizations themselves).

    For staff who are not superusers: the list, the search, the filters, the actions and every object page read
    ``get_queryset``, which keeps their organizations' objects only; the object permission checks refuse any other
    object; a foreign-key choice lists only their organizations' objects; the organization filter only their
    organizations. An object that is not theirs answers 404, as an unknown id does.

    ``changes_need_membership``: adding and changing go through the API's services, which act only in organizations
    the user is a member of; so superusers too may change only those, and see the others' objects read-only.
    """

    organization_path = "organization"
    changes_need_membership = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if sees_every_organization(request):
            return queryset
        user = cast(User, request.user)
        return queryset.filter(**{f"{self.organization_path}__in": organization_ids_for_user(user=user)})

    def organization_id_of(self, obj: Model) -> UUID:
        """Follows ``organization_path`` from the object to its organization's id."""
        *hops, last = self.organization_path.split("__")
        target: Any = obj
        for hop in hops:
            target = getattr(target, hop)
        return cast(UUID, target.pk if last == "pk" else getattr(target, f"{last}_id"))

    def is_visible(self, request: HttpRequest, obj: Model | None) -> bool:
        if obj is None or sees_every_organization(request):
            return True
        return self.organization_id_of(obj) in member_organization_ids(request)

    def is_member_of(self, request: HttpRequest, obj: Model | None) -> bool:
        return obj is None or self.organization_id_of(obj) in member_organization_ids(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) and self.is_visible(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.changes_need_membership and not self.is_member_of(request, obj):
            return False
        return super().has_change_permission(request, obj) and self.is_visible(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self.is_visible(request, obj)

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [
            (item, OrganizationListFilter) if item == self.organization_path else item
            for item in super().get_list_filter(request)
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and formfield.queryset is not None and not sees_every_organization(request):
            formfield.queryset = scoped_choices(formfield.queryset, request)
        return formfield

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        """An object the user cannot see, or that does not exist, on its change, delete or history page: 404 (Django
        would redirect to the index with "does not exist", which a test cannot tell from a working page)."""
        raise Http404(f"No {opts.verbose_name} has the id \u201c{object_id}\u201d.")


def scoped_choices(queryset: QuerySet[Any], request: HttpRequest) -> QuerySet[Any]:
    """A foreign key's choices kept to the request user's organizations: organizations by id, objects that belong to
    an organization by it; anything else (the catalogue, users) as it is."""
    user = cast(User, request.user)
    if queryset.model is Organization:
        return queryset.filter(pk__in=organization_ids_for_user(user=user))
    field_names = {field.name for field in queryset.model._meta.get_fields()}
    if "organization" in field_names:
        return queryset.filter(organization__in=organization_ids_for_user(user=user))
    return queryset


def users_visible_to(request: HttpRequest) -> Q:
    """Users a staff member may see: themselves and the members of their organizations (superusers: everyone)."""
    if sees_every_organization(request):
        return Q()
    members = Membership.objects.filter(organization_id__in=member_organization_ids(request)).values("user_id")
    return Q(pk=request.user.pk) | Q(pk__in=members)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user" and formfield is not None and formfield.queryset is not None:
            formfield.queryset = formfield.queryset.filter(users_visible_to(request))
        return formfield


# Granting these makes a user a superuser, or gives them every permission: only a superuser may change them.
PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(SelectionCheckedAdmin, DjangoUserAdmin):
    """Users; staff who are not superusers see themselves and the members of their organizations, may not add users
    (a new user would belong to none of their organizations) and may not change anyone's privileges."""

    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name", "auth0_id"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "auth0_id"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "full_name", "password1", "password2"]})]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).filter(users_visible_to(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            readonly += PRIVILEGE_FIELDS
        return readonly

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        raise Http404(f"No user has the id \u201c{object_id}\u201d.")


POLICY_FIELDS = ["name", "approval_policy", "approval_timeout", "approval_timeout_action", "forbid_self_approval"]


class OrganizationForm(ServiceForm):
    """The organization's name and approval policy, checked and saved by ``organization_create`` /
    ``organization_update``."""

    class Meta:
        model = Organization
        fields = POLICY_FIELDS

    def policy(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        return {name: cleaned.get(name) for name in POLICY_FIELDS}

    def check(self, cleaned: dict[str, Any]) -> None:
        policy = self.policy(cleaned)
        policy.pop("forbid_self_approval")
        organization_check(**policy)

    def save_through_service(self, *, instance: Model | None) -> Model:
        policy = self.policy(self.cleaned_data)
        if instance is None:
            return organization_create(user=self.user, creator_is_owner=False, **policy)
        return organization_update(user=self.user, organization=cast(Organization, instance), **policy)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin, ServiceAdmin):
    """Organizations, their approval policy and their members. Staff who are not superusers see their own
    organizations only, and may not add one (it would have no members, themselves included)."""

    organization_path = "pk"
    # The policy's service takes the organization itself; superusers set policies for every tenant.
    changes_need_membership = False
    form = OrganizationForm
    list_display = ["name", "is_personal", "approval_policy", "created_date"]
    search_fields = ["name"]
    fieldsets = [
        (None, {"fields": ["name", "is_personal"]}),
        (
            "Approval policy",
            {"fields": ["approval_policy", "approval_timeout", "approval_timeout_action", "forbid_self_approval"]},
        ),
        ("Record", {"fields": ["created_date", "modified_date", "created_by_email", "modified_by_email"]}),
    ]
    readonly_fields = ["is_personal", "created_date", "modified_date", "created_by_email", "modified_by_email"]
    # Each row is saved by the membership services, after the organization's own service saved the organization.
    inlines = [MembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser) and super().has_add_permission(request)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The membership rows through ``membership_add``, ``membership_role_change`` and ``membership_remove``, so the
        admin keeps the API's rules (roles, the last owner). A refusal rolls the whole page back: the admin's change
        view is one transaction, and ``ServiceAdmin`` shows the message."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        user = cast(User, request.user)
        organization = cast(Organization, form.instance)
        # What Django's change message reads after a formset's own save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if not row.instance._state.adding:
                # As stored: the form has already written its (edited) fields onto the instance.
                stored = Membership.objects.select_related("user").get(pk=row.instance.pk)
                membership_remove(user=user, organization=organization, email=stored.user.email)
                formset.deleted_objects.append(stored)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            member, role = row.cleaned_data["user"], row.cleaned_data["role"]
            if row.instance._state.adding:
                formset.new_objects.append(
                    membership_add(user=user, organization=organization, email=member.email, role=role)
                )
                continue
            if "user" in row.changed_data:  # the row now names someone else: they replace the one it named
                previous = Membership.objects.select_related("user").get(pk=row.instance.pk).user
                membership_remove(user=user, organization=organization, email=previous.email)
                saved = membership_add(user=user, organization=organization, email=member.email, role=role)
            else:
                saved = membership_role_change(user=user, organization=organization, email=member.email, role=role)
            formset.changed_objects.append((saved, row.changed_data))
