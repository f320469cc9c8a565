"""Settings of what Neena's work reaches: the catalogue, the connectors' services and OAuth2 clients, inbound
webhooks, and the planner and preparer (rules, or an OpenAI-compatible model).
"""

from neena.settings._env import at_least_one, env

# --- Catalogue ----------------------------------------------------------------------------------------------------

# Written as created_by_email / modified_by_email on catalogue rows, which no user owns.
NEENA_SYSTEM_EMAIL = env.str("NEENA_SYSTEM_EMAIL", default="system@neena.local")

# --- Integrations ---------------------------------------------------------------------------------------------

# Each connector's API base URL (tests point them at fake services on 127.0.0.1). Zendesk and Jira live on a
# per-account host: when their setting is empty the credential's config gives it (subdomain, site).
NEENA_SLACK_BASE_URL = env.str("NEENA_SLACK_BASE_URL", default="https://slack.com/api")
NEENA_TRELLO_BASE_URL = env.str("NEENA_TRELLO_BASE_URL", default="https://api.trello.com/1")
NEENA_ZENDESK_BASE_URL = env.str("NEENA_ZENDESK_BASE_URL", default="")
NEENA_GMAIL_BASE_URL = env.str("NEENA_GMAIL_BASE_URL", default="https://gmail.googleapis.com/gmail/v1")
NEENA_GITHUB_BASE_URL = env.str("NEENA_GITHUB_BASE_URL", default="https://api.github.com")
NEENA_JIRA_BASE_URL = env.str("NEENA_JIRA_BASE_URL", default="")
NEENA_PERPLEXITY_BASE_URL = env.str("NEENA_PERPLEXITY_BASE_URL", default="https://api.perplexity.ai")
# Addresses users give (http task URLs, an llm credential's base_url, an smtp host, a Zendesk subdomain, a Jira site)
# may only reach public addresses unless their host is listed here (apps/integrations/egress.py). The base URL settings
# above are the operator's and need no entry.
NEENA_HTTP_ALLOWLIST = env.list("NEENA_HTTP_ALLOWLIST", default=[])
# Where OAuth2 providers send the user back with a code; the client then posts it to .../oauth2/code.
NEENA_OAUTH2_REDIRECT_URI = env.str("NEENA_OAUTH2_REDIRECT_URI", default="http://127.0.0.1:8000/oauth2/callback")
# How long an authorize URL's state stays valid.
NEENA_OAUTH2_STATE_TTL_SECONDS = env.int("NEENA_OAUTH2_STATE_TTL_SECONDS", default=600)
# OAuth2 client registration per integration; the provider URLs default to the connector's declaration.
NEENA_OAUTH2_CLIENTS = {
    short_name: {
        "client_id": env.str(f"NEENA_{short_name.upper()}_CLIENT_ID", default=""),
        "client_secret": env.str(f"NEENA_{short_name.upper()}_CLIENT_SECRET", default=""),
        "authorize_url": env.str(f"NEENA_{short_name.upper()}_AUTHORIZE_URL", default=""),
        "token_url": env.str(f"NEENA_{short_name.upper()}_TOKEN_URL", default=""),
        "revoke_url": env.str(f"NEENA_{short_name.upper()}_REVOKE_URL", default=""),
    }
    for short_name in ("slack", "gmail", "github")
}
# Refresh an OAuth2 access token this long before it expires.
NEENA_OAUTH2_REFRESH_MARGIN_SECONDS = env.int("NEENA_OAUTH2_REFRESH_MARGIN_SECONDS", default=120)

# --- MCP servers ----------------------------------------------------------------------------------------------

# The executables a stdio MCP server may run, comma-separated, each matched exactly as registered (a bare name is
# looked up on the worker's PATH). Empty by default: no user can make Neena start a program the operator did not
# allow. Allowing a launcher (uvx, npx) allows every package it can fetch; prefer the servers' own executables.
NEENA_MCP_STDIO_COMMANDS = env.list("NEENA_MCP_STDIO_COMMANDS", default=[])
# How long listing tools (register, sync) may take, and the most a tool call may take (a step's time limit), seconds.
NEENA_MCP_TIMEOUT_SECONDS = at_least_one("NEENA_MCP_TIMEOUT_SECONDS", 30)
# How often a tool call that did not reach the server (or a read-only or idempotent tool's) is retried.
NEENA_MCP_MAX_RETRIES = env.int("NEENA_MCP_MAX_RETRIES", default=2)
# The most MCP servers one organization may register.
NEENA_MCP_MAX_SERVERS = at_least_one("NEENA_MCP_MAX_SERVERS", 20)

# --- Webhooks ---------------------------------------------------------------------------------------------------

# The address integrations reach this deployment at; inbound webhook URLs are built from it.
NEENA_PUBLIC_BASE_URL = env.str("NEENA_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Inbound webhook bodies larger than this answer 413.
NEENA_WEBHOOK_MAX_BODY_BYTES = env.int("NEENA_WEBHOOK_MAX_BODY_BYTES", default=262_144)
# An operation whose trigger runs fail this many times in a row for reasons of its own (not of one event's content) is
# set to failed (updating it reactivates it).
NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES = env.int("NEENA_WEBHOOK_MAX_CONSECUTIVE_FAILURES", default=5)
# The replay window of signed timestamps (Standard Webhooks, Slack, Zendesk): further from now answers 401
# stale_delivery. Standard Webhooks' own window (the standardwebhooks package's) is a fixed 300 s: larger values do
# not widen it.
NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS = env.int("NEENA_WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS", default=300)

# --- Planning and preparation ----------------------------------------------------------------------------------

# "rules" (offline, deterministic) or "llm" (an OpenAI-compatible model, falling back to rules when unreachable).
NEENA_PLANNER = env.str("NEENA_PLANNER", default="rules")
NEENA_PREPARER = env.str("NEENA_PREPARER", default="rules")
NEENA_LLM_BASE_URL = env.str("NEENA_LLM_BASE_URL", default="")
NEENA_LLM_MODEL = env.str("NEENA_LLM_MODEL", default="")
NEENA_LLM_API_KEY = env.str("NEENA_LLM_API_KEY", default="")
NEENA_LLM_TIMEOUT_SECONDS = env.float("NEENA_LLM_TIMEOUT_SECONDS", default=30.0)
NEENA_LLM_MAX_RETRIES = env.int("NEENA_LLM_MAX_RETRIES", default=2)
