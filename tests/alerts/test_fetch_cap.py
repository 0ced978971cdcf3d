"""ioccore.streams.cap_fetch_wait: Faust's hard-coded 1.5 s fetch wait is capped for a latency-bound worker."""

import asyncio

import aiokafka

from ioccore.streams import cap_fetch_wait


def test_consumers_made_after_the_cap_wait_at_most_that_long():
    original = aiokafka.AIOKafkaConsumer

    async def wait_of(**kw) -> int:
        return aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **kw)._fetch_max_wait_ms

    try:
        cap_fetch_wait(50)
        assert asyncio.run(wait_of(fetch_max_wait_ms=1500)) == 50
        cap_fetch_wait(20)  # a second cap replaces the first, it does not stack subclasses
        assert aiokafka.AIOKafkaConsumer.__mro__[1] is original
        assert asyncio.run(wait_of()) == 20
    finally:
        aiokafka.AIOKafkaConsumer = original
