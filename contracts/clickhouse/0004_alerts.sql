-- Alerts (services/alerts): the event store of the alert lifecycle and the current state folded from it.
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.

-- One row per lifecycle event (raised, reopened, acknowledged, assigned, commented, escalated, silenced,
-- resolved), append-only. The worker rebuilds its state from here at start (payload is the event's data as
-- JSON, folded by services/alerts/lifecycle.py). A rewrite of the same (alert_id, version) changes nothing:
-- read with FINAL (a redelivered event has the same `at`, so lands in the same partition).
CREATE TABLE IF NOT EXISTS alert_events
(
    alert_id    String,
    version     UInt32,
    transition  String,
    at          DateTime,
    rule        String,
    indicator   String,
    field       String,
    cadence     String,
    period      String,
    unit        String,
    level       String,
    district    String,
    severity    String,
    state       String,
    actor       String,
    reason      String,
    value       Nullable(Float64),
    threshold   Nullable(Float64),
    command_id  String,
    payload     String,
    recorded_at DateTime
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (alert_id, version);

-- The current state of each alert: the fold of its events, one row per event written, the highest version
-- wins. Read with FINAL (no partitioning, so FINAL merges every version of an alert on 18.16 as well).
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id        String,
    rule            String,
    indicator       String,
    field           String,
    cadence         String,
    period          String,
    unit            String,
    level           String,
    district        String,
    severity        String,
    state           String,
    opened_at       DateTime,
    updated_at      DateTime,
    acknowledged_by String,
    assignee        String,
    escalated       UInt8,
    silenced        UInt8,
    value           Nullable(Float64),
    threshold       Nullable(Float64),
    title_vi        String,
    sop_vi          String,
    version         UInt32
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;
