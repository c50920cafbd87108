"""`sentiment-inference`: run the API under uvicorn on HOST:PORT with WORKERS processes."""

from __future__ import annotations

import uvicorn

# Importing the app pulls in scikit-learn, scipy and pandas: seconds on a small, busy machine. uvicorn's
# supervisor kills a worker that does not answer its health ping in time, and with spawned workers the ping
# thread only starts after this module is re-imported; so keep this module light and the timeout generous.
WORKER_HEALTHCHECK_SECONDS = 60


def main() -> None:
    from sentiment_inference.http_protocol import HttpLimits, guarded_protocol
    from sentiment_inference.logging_config import configure_logging, log_config
    from sentiment_inference.settings import Settings

    settings = Settings()
    configure_logging(settings)
    # Each worker process builds its own app (factory) and runs its own poller. Prometheus metrics are per
    # process, so where a scraper must see every request prefer replicas of WORKERS=1 to more workers.
    uvicorn.run(
        "sentiment_inference.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=log_config(settings),
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        # Give in-flight requests a moment on SIGTERM (rolling updates), then exit.
        timeout_graceful_shutdown=10,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        server_header=False,
        # Header size/count limits, header and body read timeouts, a connection cap (see http_protocol.py).
        http=guarded_protocol(
            HttpLimits(
                max_header_bytes=settings.http_max_header_bytes,
                max_headers=settings.http_max_headers,
                header_timeout_seconds=settings.http_header_timeout_seconds,
                body_timeout_seconds=settings.http_body_timeout_seconds,
                max_connections=settings.http_max_connections,
            )
        ),
        timeout_keep_alive=settings.http_keepalive_timeout_seconds,  # type: ignore[arg-type]  # a float works
    )


if __name__ == "__main__":
    main()
