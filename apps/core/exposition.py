"""What ``GET /metrics`` answers: the Prometheus text exposition of this host's processes and of the current state.

Two kinds of values go out:

- counters and histograms the processes recorded (``apps.core.metrics``): with ``PROMETHEUS_MULTIPROC_DIR`` set,
  summed over every process that wrote to that directory (gunicorn's workers, Celery's pool processes); without it,
  this process's own (tests, a single process);
- gauges read at scrape time by the collectors named in NEENA_METRICS_COLLECTORS (runs by status, runs awaiting
  approval, queue depths): the database and the broker already know them, so nothing has to be kept in sync, and
  they cost a few cheap queries per scrape, never per request or per step.
"""

import logging
import os
from collections.abc import Iterator

import redis
from django.conf import settings
from django.utils.module_loading import import_string
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
# kombu's Redis transport keeps a queue's messages of priority 0 under the queue's name and the others under the
# name, a separator and the priority step (its default steps are 0, 3, 6 and 9).
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


class QueueDepthCollector(Collector):
    """``neena_celery_queue_depth{queue}``: messages waiting in each Celery queue, from the broker (LLEN).

    A broker that does not answer leaves the gauge out of the scrape (and logs why) rather than failing it: the
    other values are still worth having, and an absent series is what Prometheus alerts on.
    """

    def collect(self) -> Iterator[Metric]:
        queues = sorted({settings.NEENA_ORCHESTRATION_QUEUE, settings.NEENA_INTEGRATIONS_QUEUE})
        timeout = settings.NEENA_BROKER_PING_TIMEOUT
        try:
            client = redis.Redis.from_url(
                settings.CELERY_BROKER_URL, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            try:
                pipeline = client.pipeline(transaction=False)
                for queue in queues:
                    for step in _PRIORITY_STEPS:
                        pipeline.llen(f"{queue}{_PRIORITY_SEPARATOR}{step}" if step else queue)
                lengths = pipeline.execute()
            finally:
                client.close()
        except (redis.RedisError, OSError, ValueError) as error:
            logger.warning("Queue depths left out of the scrape: the broker did not answer (%s).", error)
            return
        family = GaugeMetricFamily("neena_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        per_queue = len(_PRIORITY_STEPS)
        for position, queue in enumerate(queues):
            family.add_metric([queue], sum(lengths[position * per_queue : (position + 1) * per_queue]))
        yield family


class _DefaultRegistry(Collector):
    """This process's own metrics (no multiprocess directory): the default registry, read through."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIRECTORY))


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: the processes' recorded values, then each configured state collector."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    for path in settings.NEENA_METRICS_COLLECTORS:
        registry.register(import_string(path)())
    return registry


def metrics_exposition() -> tuple[bytes, str]:
    """The scrape's body and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST
