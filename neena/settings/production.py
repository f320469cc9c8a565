"""Production settings: no development fallbacks, secure cookies, secrets required."""

from apps.core.structured_logs import logging_config
from neena.settings.base import *  # noqa: F403
from neena.settings.base import NEENA_LOG_LEVEL, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# No default: starting without them is a configuration error, reported at once by django-environ.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
NEENA_ENCRYPTION_KEYS = env.list("NEENA_ENCRYPTION_KEYS")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# The image runs collectstatic; serve only the collected files.
WHITENOISE_USE_FINDERS = False

# One JSON object per line, for the log collector; NEENA_LOG_FORMAT=console for a person reading a terminal.
NEENA_LOG_FORMAT = env.str("NEENA_LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=NEENA_LOG_FORMAT, level=NEENA_LOG_LEVEL)
