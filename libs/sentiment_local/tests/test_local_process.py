"""ManagedProcess: what it leaves behind when a server cannot even be started."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentiment_local.process import ManagedProcess


def _open_handles(path: Path) -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                count += 1
        except OSError:
            continue  # closed while we listed
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_a_start_that_fails_closes_its_log(tmp_path: Path) -> None:
    """Issue 15, item 10: Popen raising (missing executable) must not leave the log file open."""
    log_path = tmp_path / "server.log"
    server = ManagedProcess("missing", [str(tmp_path / "no-such-server")], log_path)
    with pytest.raises(FileNotFoundError) as raised:
        server.start()
    # `raised` keeps the failed call's frame (and so its locals) alive: a handle not closed explicitly is still open.
    assert raised.value is not None
    assert _open_handles(log_path.resolve()) == 0
    assert server.process is None
