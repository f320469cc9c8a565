"""Production settings: no development fallbacks, HTTPS, secrets required.

`manage.py check --deploy` with these settings and their defaults reports nothing (tests/core/test_production_
settings.py runs it). Starting refuses an empty or example secret and names the setting: a deployment must never run
on the development key, or on a value copied from the README or docker-compose.yml.
"""

import base64
import binascii
import contextlib
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from apps.core.structured_logs import logging_config
from neena.settings.base import *  # noqa: F403
from neena.settings.base import (
    CORS_ALLOWED_ORIGINS,
    NEENA_LOG_LEVEL,
    NEENA_OIDC_ISSUER,
    NEENA_OIDC_JWKS_URL,
    OAUTH2_PROVIDER,
    env,
)

# Words that only example and placeholder values contain (docker-compose.yml's old defaults, the Dockerfile's
# build-time key, base.py's development key, "changeme" and friends).
EXAMPLE_SECRET_MARKERS = ("change-me", "changeme", "change_me", "example", "not-a-secret", "development-only", "dummy")


def _readable_forms(value: str) -> list[str]:
    """The value, and what it decodes to when it is base64 (a Fernet key made from a readable placeholder)."""
    forms = [value.lower()]
    with contextlib.suppress(binascii.Error, ValueError):
        forms.append(base64.urlsafe_b64decode(value.encode() + b"==").decode("utf-8", "ignore").lower())
    return forms


def refuse_example_secret(name: str, value: str) -> str:
    """Returns ``value`` when it can be a real secret; raises ImproperlyConfigured naming ``name`` otherwise."""
    if not value.strip():
        raise ImproperlyConfigured(f"{name} is empty: production needs a real secret (see the README).")
    for marker in EXAMPLE_SECRET_MARKERS:
        if any(marker in form for form in _readable_forms(value)):
            raise ImproperlyConfigured(
                f"{name} is an example value (it contains {marker!r}): generate a real secret (see the README)."
            )
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=False)
# No defaults: starting without them is a configuration error, reported at once with the setting's name.
SECRET_KEY = refuse_example_secret("DJANGO_SECRET_KEY", env.str("DJANGO_SECRET_KEY", default=""))
NEENA_ENCRYPTION_KEYS = [
    refuse_example_secret("NEENA_ENCRYPTION_KEYS", key) for key in env.list("NEENA_ENCRYPTION_KEYS", default=[]) or [""]
]
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
# Optional secrets: when one is given, it must be a real one too.
OPTIONAL_SECRETS = (
    "NEENA_LLM_API_KEY",
    "NEENA_SLACK_CLIENT_SECRET",
    "NEENA_GMAIL_CLIENT_SECRET",
    "NEENA_GITHUB_CLIENT_SECRET",
    "NEENA_METRICS_TOKEN",
)
for _name in OPTIONAL_SECRETS:
    if env.str(_name, default=""):
        refuse_example_secret(_name, env.str(_name))

# --- HTTPS ------------------------------------------------------------------------------------------------------
# Each is on by default; turn one off only where something else provides it (a proxy that redirects to HTTPS and
# sets HSTS itself), or to try the admin over plain http://localhost (DJANGO_SECURE_COOKIES=false).
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Health probes and the metrics scrape come over plain HTTP from inside the deployment (compose's healthchecks, a
# load balancer, Prometheus); they carry no cookies and no credentials worth protecting from a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SILENCED_SYSTEM_CHECKS = [
    # security.W021 (HSTS preload off): joining the browsers' preload list is a decision about the whole domain
    # that takes months to undo, so it is the operator's to take (DJANGO_SECURE_HSTS_PRELOAD=true), not a default.
    "security.W021",
]

# OAuth2 client applications must send people back to https:// addresses (RFC 9700 §2.1); allowing http again
# (native apps' loopback callbacks) is possible and makes `check --deploy` warn.
OAUTH2_PROVIDER = {
    **OAUTH2_PROVIDER,
    "ALLOWED_REDIRECT_URI_SCHEMES": env.list("NEENA_OAUTH2_REDIRECT_URI_SCHEMES", default=["https"]),
}

# The OIDC issuer's keys decide who may act as whom: read them over https only, where no one on the path can swap them.
for _name, _url in (("NEENA_OIDC_ISSUER", NEENA_OIDC_ISSUER), ("NEENA_OIDC_JWKS_URL", NEENA_OIDC_JWKS_URL)):
    if _url and not _url.startswith("https://"):
        raise ImproperlyConfigured(f"{_name} must be an https:// URL in production, not {_url!r}.")

# A browser origin allowed over plain http could be impersonated by anyone on the network path (their injected script
# then reads the API's answers): only https origins, and http ones on this machine's loopback (a development frontend
# talking to a production-like deployment) where no network lies between.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
for _origin in CORS_ALLOWED_ORIGINS:
    if not _origin.startswith("https://") and urlsplit(_origin).hostname not in LOOPBACK_HOSTS:
        raise ImproperlyConfigured(
            f"NEENA_CORS_ALLOWED_ORIGINS: {_origin!r} is not an https:// origin; in production only https origins "
            "(and http://localhost or http://127.0.0.1 ones, for development frontends) may call the API from a "
            "browser."
        )

# The image runs collectstatic; serve only the collected files.
SERVESTATIC_USE_FINDERS = False

# One JSON object per line, for the log collector; NEENA_LOG_FORMAT=console for a person reading a terminal.
NEENA_LOG_FORMAT = env.str("NEENA_LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=NEENA_LOG_FORMAT, level=NEENA_LOG_LEVEL)
