"""Settings of the benchmarks: the test settings, run against a throwaway database, with a bench-only URLconf.

``NEENA_BENCH_ROOT_URLCONF`` (read here and nowhere else) selects the URLconf: ``bench.api`` sets it to
``bench.hello_urls``, the product's URLs plus the hello-world ceiling, so that endpoint never exists outside a bench.
"""

from django.core.exceptions import ImproperlyConfigured

from neena.settings.test import *  # noqa: F403
from neena.settings.test import DATABASES, VAR_DIR, env

ROOT_URLCONF = env.str("NEENA_BENCH_ROOT_URLCONF", default="neena.urls")
DEBUG = False

# The benchmarks fill and empty their database as they please: never the development database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and str(DATABASES["default"]["NAME"]) == str(
    VAR_DIR / "neena.sqlite3"
):
    raise ImproperlyConfigured("The benchmarks need DATABASE_URL pointing to a throwaway database.")
