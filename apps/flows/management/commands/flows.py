"""``python manage.py flows export|import``: flows as code, a flow's version to and from a portable JSON file.

::

    manage.py flows export --id ID [--version N] [--output FILE|-]
    manage.py flows import FILE|- --user EMAIL [--organization ID] [--flow ID]

Both call the services the API's ``flows/export`` and ``flows/import`` call (``apps.flows.documents``); an import
acts as the user named, in their organizations, with the same validation. Every problem is printed with its place in
the document, and the command exits non-zero.
"""

import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.selectors import user_get_by_email
from apps.core.exceptions import ApplicationError, InputValidationError, drf_errors_to_items
from apps.core.parsers import checked_json
from apps.flows.documents import flow_document_text, flow_export, flow_import
from apps.flows.selectors import flow_list_for_user, flow_version_for_export
from apps.flows.serializers import FlowImportInputSerializer


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise CommandError(f"Not an id: {text!r}.") from None


def _problems(error: InputValidationError) -> str:
    """One line per problem, located in the document (without the API's leading ``body``)."""
    lines = []
    for item in error.items:
        loc = [str(part) for part in item.loc]
        where = ".".join(loc[1:] if loc[:1] == ["body"] else loc) or "document"
        lines.append(f"  {where}: {item.msg} ({item.type})")
    return "The document was not imported:\n" + "\n".join(lines)


class Command(BaseCommand):
    help = "Export a flow to a portable JSON file, or import one as a new flow or as a new version of a flow."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        export = commands.add_parser("export", help="Write a flow's version as a JSON document.")
        export.add_argument("--id", required=True, help="The flow's id.")
        export.add_argument("--version", type=int, help="A version number; the latest when left out.")
        export.add_argument("--output", default="-", help="A file to write, or - (the default) for standard output.")
        imported = commands.add_parser("import", help="Save a JSON document as a flow.")
        imported.add_argument("file", help="The document's file, or - for standard input.")
        imported.add_argument("--user", required=True, help="The email of the user the import acts as.")
        imported.add_argument("--organization", help="Where a new flow goes; the user's personal one by default.")
        imported.add_argument("--flow", help="Import as the next version of this flow (one the user can see).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["command"] == "export":
            self._export(options)
        else:
            self._import(options)

    def _export(self, options: dict[str, Any]) -> None:
        try:
            version = flow_version_for_export(flow_id=_uuid(options["id"]), number=options["version"])
        except ApplicationError as error:
            raise CommandError(error.message) from error
        text = flow_document_text(flow_export(version=version))
        if options["output"] == "-":
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8")
        except OSError as error:
            raise CommandError(f"Cannot write {options['output']}: {error.strerror}.") from error
        self.stderr.write(f"Exported version {version.number} of {version.flow.name!r} to {options['output']}.")

    def _read_document(self, name: str) -> Any:
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {name}: {error}.") from error
        try:
            return checked_json(json.loads(text))
        except (ValueError, RecursionError) as error:
            raise CommandError(f"{name} is not a JSON document: {error}.") from error
        except InputValidationError as error:
            raise CommandError(_problems(error)) from error

    def _import(self, options: dict[str, Any]) -> None:
        user = user_get_by_email(email=options["user"])
        if user is None:
            raise CommandError(f"No active user has the email {options['user']!r}.")
        flow = None
        if options["flow"]:
            flow = flow_list_for_user(user=user).filter(id=_uuid(options["flow"])).first()
            if flow is None:
                raise CommandError(f"Flow {options['flow']} not found among {user.email}'s flows.")
        data = self._read_document(options["file"])
        if options["organization"]:
            data = {**data, "organization": options["organization"]} if isinstance(data, dict) else data
        serializer = FlowImportInputSerializer(data=data)
        try:
            if not serializer.is_valid():
                raise InputValidationError(list(drf_errors_to_items(serializer.errors, ["body"])))
            saved = flow_import(
                user=user,
                document=serializer.to_document(),
                organization=serializer.validated_data["organization"],
                flow=flow,
            )
        except InputValidationError as error:
            raise CommandError(_problems(error)) from error
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Imported {saved.name!r} as version {saved.current_version.number} of flow {saved.id}.")
