"""Finished runs rendered once: the JSON of a completed, failed or cancelled run, cached under its id and
``modified_date``.

A finished run and its task runs no longer change, except through something that saves the run again (a retry, an
edit in the admin), which moves its ``modified_date`` and so its key. A page of runs is assembled from the cached
JSON of its finished runs and the fresh rendering of the others, whose task runs alone are read; the answer is the
same, byte for byte (tests/runs/test_rendering.py). The cache is each process's own (cachetools' LRU: a dictionary
lookup per run, no pickling), at most NEENA_RENDER_CACHE_ENTRIES runs; the least recently served go first.
"""

import datetime
import threading
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from cachetools import LRUCache
from django.conf import settings
from django.db.models import prefetch_related_objects

from apps.core.renderers import ORJSONRenderer, RenderedJSON
from apps.runs.models import FlowRun
from apps.runs.selectors import task_runs_prefetch
from apps.runs.serializers import FlowRunSerializer

# What a page of runs is read with (``values_list(*RENDER_KEY_FIELDS, named=True)``): enough to find each rendering.
RENDER_KEY_FIELDS = ("id", "status", "modified_date")

_rendered: LRUCache[tuple[UUID, Any], bytes] = LRUCache(maxsize=settings.NEENA_RENDER_CACHE_ENTRIES)
# cachetools' caches are not thread-safe, and the development server serves requests in threads.
_lock = threading.Lock()


class ListedRun(Protocol):
    id: UUID
    status: str
    modified_date: datetime.datetime


def _key(flow_run: ListedRun) -> tuple[UUID, Any]:
    return flow_run.id, flow_run.modified_date


def flow_runs_rendered(flow_runs: Sequence[ListedRun]) -> list[Any]:
    """The runs as ``FlowRunSerializer`` renders them, in order: a ``RenderedJSON`` for each finished run (from the
    cache, or rendered now and cached), the serializer's data for the others.

    ``flow_runs`` need only their ``id``, ``status`` and ``modified_date`` (``RENDER_KEY_FIELDS``; rows are cheaper
    to read than models): the runs to render are read whole, with their task runs, in two more queries.
    """
    keys = {flow_run.id: _key(flow_run) for flow_run in flow_runs if flow_run.status in FlowRun.TERMINAL}
    with _lock:
        cached = {key: _rendered[key] for key in keys.values() if key in _rendered}
    fresh_ids = [flow_run.id for flow_run in flow_runs if keys.get(flow_run.id) not in cached]
    fresh = list(FlowRun.objects.filter(id__in=fresh_ids)) if fresh_ids else []
    prefetch_related_objects(fresh, task_runs_prefetch())
    data = dict(zip((flow_run.id for flow_run in fresh), FlowRunSerializer(fresh, many=True).data, strict=True))
    renderer = ORJSONRenderer()
    finished = {keys[run_id]: renderer.render(data[run_id]) for run_id in data.keys() & keys.keys()}
    with _lock:
        _rendered.update(finished)
    cached.update(finished)
    return [
        RenderedJSON(cached[keys[flow_run.id]]) if flow_run.id in keys else data[flow_run.id] for flow_run in flow_runs
    ]


def rendered_runs_forget() -> None:
    """Empties this process's cache (for tests)."""
    with _lock:
        _rendered.clear()
