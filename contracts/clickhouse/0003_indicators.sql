-- Indicator values and the stream state behind them (services/indicators).
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.

-- Cumulative aggregation state of each series (indicator × cadence × unit × period) in each Kafka partition
-- of ioc.events, as of `next_offset` (every record below it is included). One flush of one partition is one
-- INSERT into one partition of this table, so it lands whole or not at all; it carries a checkpoint row
-- (indicator = '') with the partition's watermark. A worker restores a partition from here and skips what
-- the checkpoint covers: redelivery changes nothing, a kill -9 loses nothing.
CREATE TABLE IF NOT EXISTS indicator_partials
(
    version_set String,
    partition   UInt16,
    indicator   String,
    cadence     String,
    unit        String,
    period      String,
    next_offset UInt64,
    kind        String,
    state       String,
    written_at  DateTime
)
ENGINE = ReplacingMergeTree(next_offset)
PARTITION BY (version_set, partition)
ORDER BY (version_set, partition, indicator, cadence, unit, period);

-- The value of each series: the partitions' states merged. Keyed by the series; `version` (the sum of the
-- partitions' offsets behind the value) only grows, so the newest value wins and a rewrite changes nothing.
-- Read with argMax(value, version) (or FINAL; the key starts with version_set because an old server's FINAL
-- merges across partitions).
CREATE TABLE IF NOT EXISTS indicator_values
(
    version_set  String,
    indicator    String,
    field        String,
    cadence      String,
    level        String,
    unit         String,
    period       String,
    period_start Date,
    value        Float64,
    n            UInt64,
    version      UInt64,
    updated_at   DateTime
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY (version_set, toYear(period_start))
ORDER BY (version_set, indicator, cadence, unit, period);

-- Versions of the indicator values: one per (catalog, boundary set) built. Reads use the newest `active` one.
CREATE TABLE IF NOT EXISTS indicator_versions
(
    version_set   String,
    boundary_set  String,
    catalog_hash  String,
    status        String,
    note          String,
    updated_at    DateTime,
    revision      UInt64
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY version_set;
