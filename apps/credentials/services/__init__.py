"""Credential services: storing secrets (``credentials``), connecting through OAuth2 (``oauth2``) and handing a
step the secrets it needs (``access``)."""
