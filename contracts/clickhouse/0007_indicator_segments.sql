-- The values of exact-quantile states (services/indicators/state.py Quantile), stored in segments instead of
-- whole in indicator_partials on every flush: a flush writes a row with what it added (merged with the newest
-- segments, or the whole array once those outgrow it), and the series' row in indicator_partials names the
-- rows that make its state (a manifest of next_offset and count). A row no manifest names (superseded by a
-- merge, or written by a flush whose indicator_partials INSERT never landed) is never read.
-- Of two rows at one offset the one holding more values (`through`) supersedes the other.
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.
CREATE TABLE IF NOT EXISTS indicator_segments
(
    version_set String,
    partition   UInt16,
    indicator   String,
    cadence     String,
    unit        String,
    period      String,
    next_offset UInt64,
    through     UInt64,
    points      String,
    written_at  DateTime
)
ENGINE = ReplacingMergeTree(through)
PARTITION BY (version_set, partition)
ORDER BY (version_set, partition, indicator, cadence, unit, period, next_offset);
