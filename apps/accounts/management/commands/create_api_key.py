"""``python manage.py create_api_key --email E [--scopes "read write approve"]``: prints only the new token."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from apps.accounts.services import api_key_create, user_get_or_create
from apps.core.exceptions import InputValidationError


class Command(BaseCommand):
    help = "Create a personal API key (creating the user and a personal organization if needed); prints the token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument(
            "--scopes", default="read write approve", help='Space-separated, default "read write approve".'
        )
        parser.add_argument("--full-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            validate_email(options["email"])
        except ValidationError as error:
            raise CommandError(f"Not an email address: {options['email']!r}.") from error
        user = user_get_or_create(email=options["email"], full_name=options["full_name"])
        try:
            token = api_key_create(user=user, scopes=options["scopes"].split())
        except InputValidationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(token)
