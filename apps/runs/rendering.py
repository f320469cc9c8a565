"""Finished runs rendered once: the JSON of a completed, failed or cancelled run whose steps have all ended, cached
under its id and ``modified_date``.

Such a run no longer changes, except through something that saves the run again (a retry), which moves its
``modified_date`` and so its key. (A run cancelled while a step was running is not finished until that step ends:
it is rendered afresh until then.) A page of runs is assembled from the cached
JSON of its finished runs and the fresh rendering of the others, whose task runs alone are read; the answer is the
same, byte for byte (tests/runs/test_rendering.py). The cache is each process's own (cachetools' LRU: a dictionary
lookup per run, no pickling), holding at most NEENA_RENDER_CACHE_BYTES of JSON; the least recently served go first,
and a run larger than that is rendered every time.
"""

import threading
from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

from cachetools import LRUCache
from django.conf import settings
from django.db.models import CharField, QuerySet, prefetch_related_objects
from django.db.models.functions import Cast

from apps.core.renderers import ORJSONRenderer, RenderedJSON
from apps.runs.models import FlowRun, TaskRun
from apps.runs.selectors import flow_runs_with_task_run_totals, listed_task_runs_prefetch
from apps.runs.serializers import ListedFlowRunSerializer

_rendered: LRUCache[tuple[UUID, str], bytes] = LRUCache(maxsize=settings.NEENA_RENDER_CACHE_BYTES, getsizeof=len)
# cachetools' caches are not thread-safe, and the development server serves requests in threads.
_lock = threading.Lock()


class ListedRun(Protocol):
    id: UUID
    status: str
    version: str


def flow_runs_listed(flow_runs: QuerySet[FlowRun]) -> QuerySet[FlowRun, Any]:
    """What a page of runs is read with: rows of each run's id, status and ``modified_date`` (as the database writes
    it: only compared, never parsed), enough to find each rendering."""
    return flow_runs.annotate(version=Cast("modified_date", CharField())).values_list(
        "id", "status", "version", named=True
    )


def _key(flow_run: ListedRun) -> tuple[UUID, str]:
    return flow_run.id, flow_run.version


def flow_runs_rendered(flow_runs: Sequence[ListedRun]) -> list[Any]:
    """The runs as ``ListedFlowRunSerializer`` renders them, in order: a ``RenderedJSON`` for each finished run (from
    the cache, or rendered now and cached), the serializer's data for the others (a run cancelled with a step still
    running is not finished).

    ``flow_runs`` are the rows of ``flow_runs_listed`` (cheaper to read than models): the runs to render are read
    whole, with their task-run totals and their first task runs, in two more queries. Only the embedded task runs
    decide whether a run is finished: a step past NEENA_LIST_TASK_RUNS_LIMIT is not shown, so its changes cannot
    change the rendering (and the total never changes once the run exists).
    """
    keys = {flow_run.id: _key(flow_run) for flow_run in flow_runs if flow_run.status in FlowRun.TERMINAL}
    with _lock:
        cached = {key: _rendered[key] for key in keys.values() if key in _rendered}
    fresh_ids = [flow_run.id for flow_run in flow_runs if keys.get(flow_run.id) not in cached]
    fresh = (
        list(flow_runs_with_task_run_totals(FlowRun.objects.filter(id__in=fresh_ids).select_related("flow_version")))
        if fresh_ids
        else []
    )
    prefetch_related_objects(fresh, listed_task_runs_prefetch())
    rendered = ListedFlowRunSerializer(fresh, many=True).data
    data = dict(zip((flow_run.id for flow_run in fresh), rendered, strict=True))
    renderer = ORJSONRenderer()
    finished = {
        keys[run_id]: renderer.render(data[run_id])
        for run_id in data.keys() & keys.keys()
        if all(task_run["status"] in TaskRun.TERMINAL for task_run in data[run_id]["task_runs"])
    }
    with _lock:
        for key, content in finished.items():
            if len(content) <= _rendered.maxsize:
                _rendered[key] = content
    cached.update(finished)
    return [
        RenderedJSON(cached[keys[flow_run.id]]) if keys.get(flow_run.id) in cached else data[flow_run.id]
        for flow_run in flow_runs
    ]


def rendered_runs_forget() -> None:
    """Empties this process's cache (for tests)."""
    with _lock:
        _rendered.clear()
