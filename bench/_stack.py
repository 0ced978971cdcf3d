"""What benchmarks share: a private local stack (fresh home, free ports, stopped afterwards); a process's
RSS and CPU time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ioccore import testing


@contextmanager
def private_stack(start: bool = True) -> Iterator[dict[str, str]]:
    with testing.private_stack(Path(tempfile.mkdtemp(prefix="ioc-bench-")), start=start) as env:
        yield env


def proc_stat(pid: int) -> tuple[float, float]:
    """(RSS bytes, user + system CPU seconds) of a process so far, from /proc (OSError once it is gone)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read().rsplit(")", 1)[1].split()
    return int(stat[21]) * os.sysconf("SC_PAGE_SIZE"), (int(stat[11]) + int(stat[12])) / os.sysconf(
        "SC_CLK_TCK"
    )
