"""The service's HTTP endpoint: `/metrics` for Prometheus, `/healthz` for orchestrators."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from factflow.runtime.metrics import Metrics

__all__ = ["serve_metrics"]


def serve_metrics(
    metrics: Metrics, port: int, *, host: str = "0.0.0.0", stale_after: float = 60.0
) -> ThreadingHTTPServer:
    """Serve `/metrics` and `/healthz` on a daemon thread; `shutdown()` the result to stop.

    `/healthz` answers 200 while the consumer loop has gone round within `stale_after` seconds
    and its transport is connected, 503 otherwise.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                metrics.refresh_lag()
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif self.path in ("/healthz", "/health"):
                healthy = metrics.healthy(stale_after)
                body = {
                    "status": "ok" if healthy else "unavailable",
                    "transport_connected": metrics.connected,
                }
                self._send(200 if healthy else 503, "application/json", json.dumps(body).encode())
            else:
                self._send(404, "text/plain", b"try /metrics or /healthz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="factflow-metrics", daemon=True).start()
    return server
