"""Start, probe and stop a server as a local background process, with its output in a log file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


class ServerError(RuntimeError):
    """A server that did not start or answer; the message names its log file and shows its last lines."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def executable(name: str) -> str:
    """Find a program next to this Python (the venv), in the project's .tools/bin, or on PATH."""
    candidates = [Path(sys.executable).parent / name]
    for parent in Path(__file__).resolve().parents:
        candidates.append(parent / ".tools" / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServerError(f"'{name}' not found in the venv, .tools/bin or PATH; run `make tools install`")
    return found


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class ManagedProcess:
    """One server process: its own session (so stop() reaches its children) and a log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, **self.env}
        # The venv's bin first: servers exec helpers (uvicorn, gunicorn, alembic) by name.
        environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
        # The child holds its own copy of the handle: ours closes here whether Popen starts it or raises.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerError(f"{self.name} was not started")
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll `ready` until it is true; fail at once (with the log) if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                code = self.process.returncode if self.process else None
                raise ServerError(
                    f"{self.name} exited with code {code} before it was {what}; log: {self.log_path}\n"
                    f"{tail(self.log_path)}"
                )
            if ready():
                return
            time.sleep(0.25)
        # Do not leave a half-started server behind: the caller gets the error, not an orphan.
        self.stop()
        raise ServerError(
            f"{self.name} was not {what} after {timeout:.0f}s; log: {self.log_path}\n{tail(self.log_path)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_process_group(self.process.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)


def stop_process_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `timeout` seconds."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run a short command; on failure raise with its output."""
    result = subprocess.run(
        list(argv), env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise ServerError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout
