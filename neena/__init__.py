"""Neena: an open platform for agent automation."""

from neena.celery import app as celery_app

__all__ = ("celery_app",)
