"""ioccore.streams.take_batches: how a worker's records are grouped into flushes (pure asyncio logic; the
worker e2e tests run it on a real Faust stream)."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest

from ioccore.streams import take_batches


async def _items(
    sizes: list[int], *, every_s: float = 0.0, pulled: list[int] | None = None, fail: bool = False
):
    for i, n in enumerate(sizes):
        if every_s:
            await asyncio.sleep(every_s)
        if pulled is not None:
            pulled.append(i)
        yield (i, n)
    if fail:
        raise RuntimeError("broker gone")


def _batches(source, **kw) -> list[list[tuple[int, int]]]:
    async def run():
        out = []
        async for batch in take_batches(source, size_of=lambda it: it[1], **kw):
            out.append(batch)
        return out

    return asyncio.run(asyncio.wait_for(run(), 20))


def test_a_backlog_goes_batch_after_batch_bounded_by_count_and_bytes_without_waiting():
    sizes = [40, 30, 50, 200, 10, 10, 0, 5, 5, 5, 5, 5]
    # every_s far beyond the test's timeout: a batch that waited for it would fail the test
    got = _batches(_items(sizes), max_items=4, max_bytes=100, every_s=3600)
    assert [i for b in got for i, _ in b] == list(range(len(sizes)))  # every item once, in order
    for b in got:
        assert len(b) <= 4
        # over the byte bound only by its last item (an item bigger than the bound goes alone)
        assert sum(n for _, n in b[:-1]) < 100
    assert [len(b) for b in got] == [3, 1, 4, 4]  # full by bytes, by bytes (alone), by count, by count


def test_live_traffic_is_coalesced_into_one_batch_per_interval():
    async def run():
        taken = []
        async for batch in take_batches(
            _items([1] * 30, every_s=0.01),
            size_of=lambda it: it[1],
            max_items=1000,
            max_bytes=10**6,
            every_s=0.1,
        ):
            taken.append((asyncio.get_running_loop().time(), len(batch)))
        return taken

    taken = asyncio.run(run())
    assert sum(n for _, n in taken) == 30
    gaps = [b[0] - a[0] for a, b in pairwise(taken)]
    assert all(g >= 0.099 for g in gaps[:-1]), gaps  # the last may go early: the source ended
    assert max(n for _, n in taken) > 1  # items that came within an interval went together


def test_it_reads_at_most_one_batch_ahead_of_the_caller():
    pulled: list[int] = []

    async def run():
        seen = []
        async for batch in take_batches(
            _items([1] * 100, pulled=pulled),
            size_of=lambda it: it[1],
            max_items=10,
            max_bytes=10**6,
            every_s=0,
        ):
            await asyncio.sleep(0.01)  # the caller at work: the reader goes on meanwhile, but not without end
            seen.append((len(batch), len(pulled)))
        return seen

    seen = asyncio.run(run())
    assert sum(n for n, _ in seen) == 100
    taken = 0
    for n, pulled_then in seen:
        taken += n
        assert pulled_then <= taken + 10 + 1, seen  # this batch, one more batch, one item read past it


def test_a_failing_source_raises_after_its_items_are_taken():
    got = []

    async def run():
        async for batch in take_batches(
            _items([1, 1, 1], fail=True), size_of=lambda it: it[1], max_items=10, max_bytes=100, every_s=0
        ):
            got.extend(batch)

    with pytest.raises(RuntimeError, match="broker gone"):
        asyncio.run(run())
    assert [i for i, _ in got] == [0, 1, 2]
