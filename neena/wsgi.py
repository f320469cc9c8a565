"""WSGI entry point (gunicorn neena.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neena.settings.base")
application = get_wsgi_application()
