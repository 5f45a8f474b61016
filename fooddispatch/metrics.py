"""Prometheus metrics on a registry owned by the app (no process globals), so two
apps in one test process never share counters. `Metrics` is also the `kernel.tasks.TaskMetrics`
every background task reports to (`background_task_failures_total{task}`,
`background_task_restarts_total{task}`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _CallbackGauges(Collector):
    """Gauges read at scrape time from callbacks registered by the components."""

    def __init__(self) -> None:
        self.callbacks: dict[str, tuple[str, Callable[[], float]]] = {}
        self.labeled: dict[str, tuple[str, str, Callable[[], Mapping[str, float]]]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (doc, fn) in self.callbacks.items():
            yield GaugeMetricFamily(name, doc, value=float(fn()))
        for name, (doc, label, read) in self.labeled.items():
            family = GaugeMetricFamily(name, doc, labels=[label])
            for value_of, value in sorted(read().items()):
                family.add_metric([value_of], float(value))
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency by route template",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.task_failures = Counter("background_task_failures", "Failed steps of recurring background jobs",
                                     ["task"], registry=self.registry)
        self.task_restarts = Counter("background_task_restarts", "Background tasks restarted after they died",
                                     ["task"], registry=self.registry)
        self._gauges = _CallbackGauges()
        self.registry.register(self._gauges)

    def gauge(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._gauges.callbacks[name] = (doc, read)

    def labeled_gauge(self, name: str, doc: str, label: str, read: Callable[[], Mapping[str, float]]) -> None:
        """One gauge per value of `label`, read at scrape time: `read()` maps label values to values."""
        self._gauges.labeled[name] = (doc, label, read)

    def failed(self, task: str) -> None:
        self.task_failures.labels(task).inc()

    def restarted(self, task: str) -> None:
        self.task_restarts.labels(task).inc()

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, labels: tuple[str, ...] = (), buckets=LATENCY_BUCKETS) -> Histogram:
        return Histogram(name, doc, list(labels), buckets=buckets, registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
