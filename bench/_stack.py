"""A private local stack for a benchmark: fresh home, free ports, stopped afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ioccore import testing


@contextmanager
def private_stack(start: bool = True) -> Iterator[dict[str, str]]:
    with testing.private_stack(Path(tempfile.mkdtemp(prefix="ioc-bench-")), start=start) as env:
        yield env
