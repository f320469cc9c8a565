"""The serializer bases every app shares: ``StrictInputSerializer`` for request bodies, ``AttributeModelSerializer``
for output.

Input: DRF drops the body fields a serializer does not declare, so a typo (``paramters``) is silently a request
without the field. ``StrictInputSerializer`` answers 422 ``unknown_field`` naming each one instead, at any depth
(items of a list of serializers are serializers too). A body may still carry the fields of the resource's own
output shape, which clients of this API send back as they read them (``id`` and the audit fields in a PUT,
``task_runs`` of a run): those are ignored where the input does not take them.

Output: serializers that read model attributes directly, the same fields, types and values, without DRF's per-field
machinery on every row.

DRF's ``Serializer.to_representation`` sends each field of each row through ``Field.get_attribute`` (a Mapping
check, a callable check, the PK-only wrapper of related fields) and ``Field.to_representation`` (a date-time asks
for the current time zone each time). A page of 100 runs with 5 task runs each is about 7,500 such round trips, a
quarter of the endpoint's time. ``AttributeModelSerializer`` is declared like any ModelSerializer, so its fields
(and drf-spectacular's schema) come from the one ``Meta.fields`` list; it only changes how a row becomes a dict:
once per serializer instance, each readable field is turned into a function from the row to exactly what DRF would
have produced. Field kinds not listed here keep DRF's own path, so nothing can drift: tests/runs/test_api_output.py
compares both paths on the same rows.
"""

import datetime
import difflib
from collections.abc import Callable, Collection, Mapping
from functools import cached_property
from operator import attrgetter
from typing import Any, ClassVar, TypeGuard, TypeVar, cast

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import ISO_8601, serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

UNKNOWN_FIELD = "unknown_field"

Representer = Callable[[Any], Any]
FieldKind = TypeVar("FieldKind", bound=serializers.Field)


def _is_exactly(field: serializers.Field, kind: type[FieldKind]) -> TypeGuard[FieldKind]:
    """``field`` is a ``kind`` itself: a subclass may change what it outputs, so it keeps DRF's path."""
    return type(field) is kind


def _generic(field: serializers.Field) -> Representer:
    """DRF's own path for one field, as in ``Serializer.to_representation``; raises SkipField like it."""

    def represent(instance: Any) -> Any:
        attribute = field.get_attribute(instance)
        check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check_for_none is None else field.to_representation(attribute)

    return represent


def _converted(attname: str, convert: Callable[[Any], Any]) -> Representer:
    """``convert(value)`` of the attribute, None staying None (DRF skips ``to_representation`` for None)."""

    def represent(instance: Any) -> Any:
        value = getattr(instance, attname)
        return None if value is None else convert(value)

    return represent


def _datetime(field: serializers.DateTimeField, attname: str) -> Representer:
    """``DateTimeField.to_representation`` with the field's time zone looked up once instead of on every value.

    Aware datetimes (all of them, with USE_TZ) take the short path; anything else goes to the field itself.
    """
    time_zone = cast(datetime.tzinfo | None, field.timezone if hasattr(field, "timezone") else field.default_timezone())
    to_representation = field.to_representation

    def represent(instance: Any) -> Any:
        value = getattr(instance, attname)
        if value is None:
            return None
        if time_zone is None or type(value) is not datetime.datetime or value.utcoffset() is None:
            return to_representation(value)
        try:
            text = value.astimezone(time_zone).isoformat()
        except OverflowError:
            return to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return represent


def _representer(field: serializers.Field, model: type[models.Model]) -> Representer:
    """The function giving ``field``'s output for one row: a direct read for a concrete column of ``model`` served
    by a plain DRF field, DRF's own path for everything else (nested serializers, methods, dotted sources, ...)."""
    if len(field.source_attrs) != 1:
        return _generic(field)
    try:
        model_field = model._meta.get_field(field.source_attrs[0])
    except FieldDoesNotExist:
        return _generic(field)
    if not isinstance(model_field, models.Field) or not model_field.concrete or model_field.many_to_many:
        return _generic(field)
    attname = model_field.attname
    if model_field.is_relation:
        if _is_exactly(field, serializers.PrimaryKeyRelatedField) and field.pk_field is None:
            # The key itself, as DRF's PK-only optimisation answers (a UUID, which the renderer writes as text).
            return attrgetter(attname)
        return _generic(field)
    if _is_exactly(field, serializers.JSONField) and not field.binary:
        return attrgetter(attname)
    if _is_exactly(field, serializers.UUIDField) and field.uuid_format == "hex_verbose":
        return _converted(attname, str)
    if type(field) in (serializers.CharField, serializers.IntegerField, serializers.ChoiceField):
        return _converted(attname, field.to_representation)
    if _is_exactly(field, serializers.DateTimeField):
        output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
        if isinstance(output_format, str) and output_format.lower() == ISO_8601:
            return _datetime(field, attname)
    return _generic(field)


# A ModelSerializer whose output is built from the model's attributes, for read endpoints listing many rows. Declare
# it exactly like a ModelSerializer; input (``to_internal_value``, ``save``) is untouched. Rows that are not instances
# of ``Meta.model`` (a dict, say) take DRF's generic path. (A comment, not a docstring: drf-spectacular would make a
# docstring the description of every schema component built from a subclass that has none of its own.)
class AttributeModelSerializer(serializers.ModelSerializer):
    @cached_property
    def _representers(self) -> list[tuple[str, Representer]]:
        model = self.Meta.model
        return [(cast(str, field.field_name), _representer(field, model)) for field in self._readable_fields]

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if not isinstance(instance, self.Meta.model):
            return super().to_representation(instance)
        output = {}
        for name, represent in self._representers:
            try:
                output[name] = represent(instance)
            except SkipField:
                continue
        return output


def _unknown_field_error(name: str, known: Collection[str]) -> ErrorDetail:
    suggestion = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean '{suggestion[0]}'?" if suggestion else "."
    return ErrorDetail(f"Unknown field '{name}'{hint}", code=UNKNOWN_FIELD)


class StrictInputSerializer(serializers.Serializer):
    """A request body (or an object inside one) that refuses the fields it does not know, each a 422 item at its own
    location with type ``unknown_field``, listed with every other problem of the body.

    ``ignored_fields`` are the fields of the resource's output shape (what reading it answers): accepted and
    ignored, so a client may send back an object as it read it.
    """

    ignored_fields: ClassVar[Collection[str]] = ()

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[ErrorDetail]] = {}
        if isinstance(data, Mapping):
            accepted = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {
                name: [_unknown_field_error(name, accepted)]
                for name in data
                if name not in self.fields and name not in self.ignored_fields
            }
        try:
            value = super().to_internal_value(data)
        except ValidationError as error:
            if unknown and isinstance(error.detail, dict):
                raise ValidationError({**error.detail, **unknown}) from None
            raise
        if unknown:
            raise ValidationError(unknown)
        return value


class NoBodySerializer(StrictInputSerializer):
    """The body of an endpoint that takes none (execute, retry, ...): nothing, or ``{}``; every field is unknown."""
