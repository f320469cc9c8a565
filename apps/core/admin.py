"""What every app's admin shares: the read-only base for records, and the pieces that make an admin form another
interface onto the API's services (STYLE.md, "The admin is another interface").

- ``SelectionCheckedAdmin``: an action's selection holding something that is not an id is refused with a message,
  not a 500.
- ``ReadOnlyAdmin``: records of what happened (flow requests, results, trigger runs, task runs, the approval audit,
  sent notifications) and what a command owns (the catalogue). Viewable, never added, changed or deleted here.
- ``ServiceForm`` and ``ServiceAdmin``: a form that parses its fields with the API's input serializer and checks
  them with the service's own validator in ``clean()``, so what the API answers with a 422 is a form error here,
  not a saved row; the admin's ``save_model`` then calls the service itself.

Organization scoping (what a staff user may see) lives with the organizations, in ``apps.accounts.admin``: core
depends on no app.
"""

import abc
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms.models import ModelFormMetaclass
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from rest_framework import serializers

from apps.core.exceptions import ApplicationError, ErrorItem, InputValidationError, drf_errors_to_items
from apps.core.storable_text import json_problem

if TYPE_CHECKING:
    from apps.accounts.models import User

SerializerT = TypeVar("SerializerT", bound=serializers.Serializer)


class SelectionCheckedAdmin(admin.ModelAdmin):
    """Refuses an action's selection holding something that is not an id of the model (a tampered or stale form):
    Django would filter the list by it as posted and fail with a ValidationError, a 500."""

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                self.opts.pk.to_python(value)
            except ValidationError:
                self.message_user(request, "The selection holds an invalid id; nothing was done.", messages.ERROR)
                return None
        return super().response_action(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody adds, changes or deletes one here, superusers included.

    Every field is shown read-only, so the page is a record, not a form with its inputs disabled.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """The fields the page shows: the declared fieldsets or fields, else every field of the model."""
        if self.fieldsets:
            return flatten_fieldsets(self.fieldsets)
        if self.fields:
            return flatten_fieldsets([(None, {"fields": self.fields})])
        return [field.name for field in (*self.opts.concrete_fields, *self.opts.many_to_many)]


class CheckedJSONField(forms.JSONField):
    """A JSON text box with the API parser's limits: nesting at most NEENA_MAX_JSON_DEPTH deep (Python's parser would
    otherwise run out of stack on about a thousand levels), no text the database cannot store (NUL, lone surrogates).
    Shows its value indented, one item a line, to be readable and editable."""

    def to_python(self, value: Any) -> Any:
        try:
            parsed = super().to_python(value)
        except RecursionError:
            raise ValidationError(
                f"JSON may be nested at most {settings.NEENA_MAX_JSON_DEPTH} levels deep.", code="json_too_deep"
            ) from None
        problem = json_problem(parsed, max_depth=settings.NEENA_MAX_JSON_DEPTH)
        if problem is not None:
            where = "".join(f"[{part!r}]" for part in problem.path)
            raise ValidationError(f"{where}: {problem.msg}" if where else problem.msg, code=problem.type)
        return parsed

    def bound_data(self, data: Any, initial: Any) -> Any:
        """What the box shows again after a form error: the text as typed when it is not JSON this field reads."""
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


class SecretInput(forms.PasswordInput):
    """A password box that never sends a value back to the browser, not even after a form error."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={"autocomplete": "off", **(attrs or {})}, render_value=False)


class SecretTextarea(forms.Textarea):
    """A text box for secrets written as JSON: what was typed is never sent back to the browser, not even after a
    form error."""

    def format_value(self, value: Any) -> None:
        return None


class _ServiceFormMeta(ModelFormMetaclass, abc.ABCMeta):
    """Django's form metaclass with ABCMeta's: a ``ServiceForm`` missing one of the hooks cannot be instantiated."""


class ServiceForm(forms.ModelForm, metaclass=_ServiceFormMeta):
    """An admin form whose rules are the API's. ``clean()`` calls ``check()``, which parses the form's values with
    the API's input serializer and runs the service's validator; their ``InputValidationError`` becomes errors on the
    fields they name (``["body", <field>, ...]``), or on the form. ``save_through_service()`` then makes the write.

    ``user`` is the staff user, set by ``ServiceAdmin.get_form``.
    """

    user: "User"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                self.check(cleaned)
            except InputValidationError as error:
                self.add_service_errors(error.items)
        return cleaned

    @abc.abstractmethod
    def check(self, cleaned: dict[str, Any]) -> None:
        """Parses and validates as the API would; raises InputValidationError. Each form says how."""

    @abc.abstractmethod
    def save_through_service(self, *, instance: Model | None) -> Model:
        """Calls the service (``instance`` is the object changed, None when adding) and returns what it saved."""

    def parsed(self, serializer_class: type[SerializerT], data: dict[str, Any]) -> SerializerT:
        """``data`` through the API's input serializer: the valid serializer, or its errors as the API's 422 items."""
        serializer = serializer_class(data=data)
        if not serializer.is_valid():
            raise InputValidationError(list(drf_errors_to_items(serializer.errors, ["body"])))
        return serializer

    def add_service_errors(self, items: Sequence[ErrorItem]) -> None:
        for item in items:
            where = [part for part in item.loc if part != "body"] if item.loc[:1] == ["body"] else list(item.loc)
            field = where[0] if where and where[0] in self.fields else None
            inside = where[1:] if field is not None else where
            message = f"{'.'.join(map(str, inside))}: {item.msg}" if inside else item.msg
            self.add_error(str(field) if field is not None else None, ValidationError(message, code=item.type))


class ServiceAdmin(admin.ModelAdmin):
    """An admin whose add and change forms (a ``ServiceForm``) are checked and saved by the API's services.

    Django calls ``save_model`` inside the transaction of its change view, after the form was valid; the service saves
    (its own ``transaction.atomic`` nests), and the object it saved takes the place of the form's. Should the service
    still refuse there (a concurrent change between the check and the write), the change view's transaction rolls back
    and the page says why instead of answering 500. Inlines, where an admin has them, are saved by Django afterwards.
    """

    form = ServiceForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        return type(form_class.__name__, (form_class,), {"user": request.user})

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        # A ModelForm writes its values onto ``obj`` as it validates; the service must see the row as it is stored
        # (an update's rules read the current status, for one), so it is given a fresh copy.
        current = type(obj)._default_manager.get(pk=obj.pk) if change else None
        saved = form.save_through_service(instance=current)
        # The admin goes on with ``obj`` (the log entry, the redirect to its page): make it the saved row.
        obj.__dict__.update(saved.__dict__)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as error:
            self.message_user(request, f"Nothing was saved: {error.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
