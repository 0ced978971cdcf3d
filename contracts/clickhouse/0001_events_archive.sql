-- The raw event archive: every valid event exactly once (deduplicated by source and id).
-- Source of truth for replay and reconciliation. Read it with FINAL (or argMax) to see each event once.
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.
CREATE TABLE IF NOT EXISTS events_archive
(
    source      String,
    id          String,
    type        String,
    subject     String,
    time        DateTime,
    time_ms     UInt16,
    received_at DateTime,
    topic       String,
    partition   UInt16,
    offset      UInt64,
    data        String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(time)
ORDER BY (type, source, id);
