"""ioccore.memory against this machine's glibc, each case in a fresh interpreter (malloc settings are
process-wide and a test process has threads of its own already)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from ioccore.settings import REPO_ROOT


def _run(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{REPO_ROOT / 'libs'}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


_HEAPS = """
    import ctypes, json, os, tempfile, threading
    from ioccore import memory

    def heaps():
        libc = memory._glibc()
        libc.fopen.restype = ctypes.c_void_p
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        path = tempfile.mktemp()
        fp = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        text = open(path).read()
        os.unlink(path)
        return text.count("<heap nr=")

    def work(keep):
        keep.append([bytearray(1024) for _ in range(2000)])

    ok = {one}
    if ok:
        ok = memory.one_heap()
    keep = []
    threads = [threading.Thread(target=work, args=(keep,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({{"ok": ok, "heaps": heaps()}}))
"""


def test_threads_allocate_in_one_heap_after_one_heap():
    shared = _run(_HEAPS.format(one=True))
    assert shared == {"ok": True, "heaps": 1}
    # without it, each thread that allocates gets a heap of its own
    assert _run(_HEAPS.format(one=False))["heaps"] > 1


def test_trim_heap_returns_the_freed_pages_inside_the_heap():
    got = _run(
        """
        import json
        from ioccore import memory

        def rss_mb():
            with open("/proc/self/status") as f:
                return next(int(x.split()[1]) for x in f if x.startswith("VmRSS")) / 1024

        blocks = [bytearray(4096) for _ in range(40_000)]  # ~160 MB in the heap, below mmap's threshold
        survivors = blocks[::64]  # one block in 64 stays: nothing at the heap's top is free
        del blocks
        freed = rss_mb()
        ok = memory.trim_heap()
        print(json.dumps({"ok": ok, "freed": freed, "trimmed": rss_mb(), "kept": len(survivors)}))
        """
    )
    assert got["ok"] is True
    # free() alone gives nothing back: the survivors pin the heap; trim_heap returns what lies between them
    assert got["freed"] - got["trimmed"] > 100, got
