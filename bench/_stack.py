"""A private local stack for a benchmark: fresh home, free ports, stopped afterwards."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ioccore.settings import get_settings
from ioccore.testing import local_stack_env


@contextmanager
def private_stack(start: bool = True) -> Iterator[dict[str, str]]:
    from ioccore import stack

    home = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    env = local_stack_env(home)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        if start:
            stack.up()
        yield env
    finally:
        stack.down()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
