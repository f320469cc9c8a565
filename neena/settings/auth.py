"""Authentication settings: Neena's OAuth2 authorization server, JWTs from an external OIDC issuer, the login
lockout (django-axes), personal API keys and the login page.
"""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from neena.settings._env import at_least_one, env

# --- OAuth2 authorization server ---------------------------------------------------------------------------------

API_SCOPES = {
    "read": "Read every resource of your organizations",
    "write": "Create, change and delete resources",
    "approve": "Approve and reject flow runs",
}
OAUTH2_PROVIDER = {
    "SCOPES": API_SCOPES,
    "DEFAULT_SCOPES": ["read", "write"],
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "apps.accounts.oauth2.NeenaOAuth2Validator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("NEENA_ACCESS_TOKEN_TTL_SECONDS", default=3600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env.int("NEENA_REFRESH_TOKEN_TTL_SECONDS", default=30 * 24 * 3600),
    # RFC 9700 (OAuth 2.0 Security Best Current Practice), adopted everywhere so tests run what production runs:
    # no implicit or password grant (Neena offers authorization code + PKCE and client credentials), PKCE with
    # S256 only, tokens only in headers (never in a URL, where logs keep them), the `iss` response parameter, tokens
    # stored as SHA-256 checksums instead of plaintext, and a replayed refresh token revokes its whole family.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    # Client applications' redirect URIs: https only in production; development also allows http (localhost).
    "ALLOWED_REDIRECT_URI_SCHEMES": env.list("NEENA_OAUTH2_REDIRECT_URI_SCHEMES", default=["http", "https"]),
}

# --- External OIDC issuer ----------------------------------------------------------------------------------------

# JWT bearer tokens from an OIDC issuer (Auth0 or any), verified against its published keys (apps/accounts/oidc.py).
# Empty issuer: off, and a JWT is refused like any unknown token. The issuer is compared exactly with the tokens'
# `iss` (Auth0's ends with a slash); the audience is the API identifier the tokens must name in `aud`.
NEENA_OIDC_ISSUER = env.str("NEENA_OIDC_ISSUER", default="")
NEENA_OIDC_AUDIENCE = env.str("NEENA_OIDC_AUDIENCE", default="")
# Where the issuer publishes its keys; empty: read from <issuer>/.well-known/openid-configuration (`jwks_uri`).
NEENA_OIDC_JWKS_URL = env.str("NEENA_OIDC_JWKS_URL", default="")
# The claim holding the user's email (Auth0 access tokens carry it only in a namespaced claim an Action adds).
NEENA_OIDC_EMAIL_CLAIM = env.str("NEENA_OIDC_EMAIL_CLAIM", default="email")
# How long the discovery document and the keys are kept (in each process and in Django's cache) before they are
# read again; a token naming a key not among them reads them again at once, at most once per REFETCH seconds.
NEENA_OIDC_JWKS_CACHE_SECONDS = at_least_one("NEENA_OIDC_JWKS_CACHE_SECONDS", 600)
NEENA_OIDC_JWKS_REFETCH_SECONDS = at_least_one("NEENA_OIDC_JWKS_REFETCH_SECONDS", 60)
# Clock skew allowed on `exp`, `nbf` and `iat`.
NEENA_OIDC_LEEWAY_SECONDS = env.int("NEENA_OIDC_LEEWAY_SECONDS", default=30)
# How long one request to the issuer (discovery, keys) may take.
NEENA_OIDC_TIMEOUT_SECONDS = env.float("NEENA_OIDC_TIMEOUT_SECONDS", default=5.0)
if NEENA_OIDC_ISSUER and not NEENA_OIDC_AUDIENCE:
    raise ImproperlyConfigured(
        "NEENA_OIDC_ISSUER is set but NEENA_OIDC_AUDIENCE is empty: tokens the issuer made for any other API would "
        "be accepted. Set NEENA_OIDC_AUDIENCE to this API's identifier (see the README)."
    )
if NEENA_OIDC_JWKS_REFETCH_SECONDS > NEENA_OIDC_JWKS_CACHE_SECONDS:
    raise ImproperlyConfigured(
        "NEENA_OIDC_JWKS_REFETCH_SECONDS must be at most NEENA_OIDC_JWKS_CACHE_SECONDS: the keys could otherwise "
        "be due for reading again while reading them is not yet allowed."
    )
if NEENA_OIDC_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured(f"NEENA_OIDC_TIMEOUT_SECONDS must be more than 0, not {NEENA_OIDC_TIMEOUT_SECONDS}.")
if NEENA_OIDC_LEEWAY_SECONDS < 0:
    raise ImproperlyConfigured(f"NEENA_OIDC_LEEWAY_SECONDS must be 0 or more, not {NEENA_OIDC_LEEWAY_SECONDS}.")

# --- Login lockout ---------------------------------------------------------------------------------------------

# After this many failed logins of one email from one address (the admin's and the OAuth2 server's login pages, by
# django-axes), or failed client authentications of one client id from one address (/o/token/, /o/revoke_token/),
# that pair is refused with 429 for NEENA_LOGIN_LOCKOUT_MINUTES (apps/accounts/lockout.py).
NEENA_LOGIN_FAILURE_LIMIT = env.int("NEENA_LOGIN_FAILURE_LIMIT", default=5)
NEENA_LOGIN_LOCKOUT_MINUTES = env.int("NEENA_LOGIN_LOCKOUT_MINUTES", default=15)
# django-axes checks every authenticate() first and refuses a locked-out pair before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = NEENA_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=NEENA_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Django's login form posts the email as "username"; compared lower-cased, like the user model does.
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "apps.accounts.lockout.login_username"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.login_lockout_response"
AXES_RESET_ON_SUCCESS = True

# Personal API keys made by `create_api_key` are long-lived access tokens.
NEENA_API_KEY_TTL = timedelta(days=env.int("NEENA_API_KEY_TTL_DAYS", default=3650))
# Where the OAuth2 authorization page sends people who are not logged in (any user, not only staff).
LOGIN_URL = "/accounts/login/"
