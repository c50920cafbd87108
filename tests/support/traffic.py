"""A client that keeps calling /predict while something changes underneath (a promotion, a rollout, a fault)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Traffic:
    """`with Traffic(url) as traffic:` calls POST /predict in a thread (keep-alive, as real clients do) until the
    block ends, recording the version of each answer and every failure."""

    url: str
    pause_seconds: float = 0.0
    versions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"{self.url}/predict", json={"text": "an absolute delight of a film"})
                    if response.status_code == 200:
                        self.versions.append(response.json()["model_version"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                if self.pause_seconds:
                    time.sleep(self.pause_seconds)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
