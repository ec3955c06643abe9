"""Prometheus metrics of the control plane, served on a loopback port (SERVERSINC_METRICS).

Counters and histograms are updated when a deployment finishes; the queue depth and agent
liveness are read at scrape time, so they are never stale.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Outcome(Protocol):
    """What metrics read of a finished deployment (the recorder's FinishedDeployment has these)."""

    state: str
    failure_phase: str
    build_seconds: float
    build_skipped: bool
    deploy_seconds: float


class _LiveCollector:
    """Queue depth and agent liveness, computed when Prometheus scrapes."""

    def __init__(self, queue_depth, agents_up):
        self._queue_depth = queue_depth
        self._agents_up = agents_up

    def collect(self):
        depth = GaugeMetricFamily("serversinc_deployment_queue_depth", "Deployments waiting in the queue.")
        depth.add_metric([], self._queue_depth())
        yield depth
        up = GaugeMetricFamily("serversinc_agent_up", "1 when the server's agent answers.", labels=["server"])
        for server, is_up in self._agents_up():
            up.add_metric([server], 1.0 if is_up else 0.0)
        yield up


class CertificateRow(Protocol):
    """What metrics read of a domain's certificate (services.certificates.relay.metric_rows)."""

    app: str
    domain: str
    state: str
    not_after: float  # unix seconds, 0 when no certificate serves
    failing: bool     # the last ACME attempt failed


class _CertificateCollector:
    """Each domain's certificate expiry and last-attempt error, from the relayed read model at
    scrape time (never a call to an agent)."""

    def __init__(self, certificates):
        self._certificates = certificates

    def collect(self):
        expiry = GaugeMetricFamily("serversinc_certificate_expiry_timestamp_seconds",
                                   "When the certificate serving the domain expires (unix seconds).",
                                   labels=["app", "domain"])
        error = GaugeMetricFamily("serversinc_certificate_last_error",
                                  "1 when the domain's last certificate attempt failed.",
                                  labels=["app", "domain", "state"])
        for row in self._certificates():
            if row.not_after:
                expiry.add_metric([row.app, row.domain], row.not_after)
            error.add_metric([row.app, row.domain, row.state.lower()], 1.0 if row.failing else 0.0)
        yield expiry
        yield error


class Metrics:
    def __init__(self, queue_depth=lambda: 0, agents_up=lambda: [], certificates=lambda: []):
        self.registry = CollectorRegistry()
        self.deployments = Counter("serversinc_deployments", "Finished deployments by outcome.",
                                   ["state"], registry=self.registry)
        self.failures = Counter("serversinc_deployment_failures", "Failed deployments by the phase that failed.",
                                ["phase"], registry=self.registry)
        self.deploy_seconds = Histogram("serversinc_deploy_duration_seconds",
                                        "Start of the new container to the old one removed, successful deployments.",
                                        buckets=BUCKETS, registry=self.registry)
        self.build_seconds = Histogram("serversinc_build_duration_seconds", "Image builds that ran (not skipped).",
                                       buckets=BUCKETS, registry=self.registry)
        self.registry.register(_LiveCollector(queue_depth, agents_up))
        self.registry.register(_CertificateCollector(certificates))
        self._server = None

    def deployment_finished(self, f: Outcome) -> None:
        self.deployments.labels(state=f.state.lower()).inc()
        if f.state == "FAILED":
            self.failures.labels(phase=(f.failure_phase or "unknown").lower()).inc()
        if f.state == "SUCCEEDED":
            self.deploy_seconds.observe(f.deploy_seconds)
        if f.build_seconds and not f.build_skipped:
            self.build_seconds.observe(f.build_seconds)

    def serve(self, address: str) -> int:
        """Starts the /metrics HTTP server; returns its port (address "host:0" picks a free one)."""
        host, _, port = address.rpartition(":")
        self._server, _ = start_http_server(int(port), addr=host or "127.0.0.1", registry=self.registry)
        return self._server.server_port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
