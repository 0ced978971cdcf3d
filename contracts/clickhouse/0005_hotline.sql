-- Hotline 1022 and 115 (services/hotline): the calls' events, their current state, the daily figures the
-- service reports, and the hospitals' availability. Callers' numbers are never stored in clear: call_events
-- keeps each event's data with caller_number replaced by caller_hash (HMAC) and caller_masked.
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.

-- Every event of every call, once per (call_id, source, event_id); a redelivered batch changes nothing.
-- seq orders a call's events the way the service's fold does: time_ms (13 digits), lifecycle rank, source, id.
-- deadline_ms: the deadline carried by deadline_set / overdue events (0 otherwise).
CREATE TABLE IF NOT EXISTS call_events
(
    call_id     String,
    source      String,
    event_id    String,
    line        String,
    type        String,
    subject     String,
    time        DateTime,
    time_ms     UInt64,
    seq         String,
    deadline_ms UInt64,
    data        String,
    received_at DateTime,
    topic       String,
    partition   UInt16,
    offset      UInt64
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY line
ORDER BY (call_id, source, event_id);

-- The current state of each call (the fold of its events); version = number of distinct events folded, so it
-- only grows and the newest state wins. Read with FINAL. *_ms: epoch ms, 0 when unknown; received_at,
-- answered_at, deadline: the same to the second (1970-01-01 when unknown).
CREATE TABLE IF NOT EXISTS calls
(
    call_id               String,
    line                  String,
    state                 String,
    known                 UInt8,
    unit                  String,
    district              String,
    day                   Date,
    caller_hash           String,
    caller_masked         String,
    has_location          UInt8,
    received_at           DateTime,
    answered_at           DateTime,
    deadline              DateTime,
    received_ms           UInt64,
    answered_ms           UInt64,
    wait_s                Int32,
    agent                 String,
    field                 String,
    topic                 String,
    urgent                UInt8,
    suggested_focal_point String,
    suggested_hospital    String,
    suggested_km          Float64,
    focal_point           String,
    hospital              String,
    distance_km           Float64,
    forwarded_ms          UInt64,
    closed_ms             UInt64,
    outcome               String,
    callback_ms           UInt64,
    resolved              UInt8,
    resolved_ms           UInt64,
    satisfaction          UInt8,
    deadline_ms           UInt64,
    on_time               UInt8,
    overdue               UInt8,
    anomalies             String,
    events                UInt32,
    version               UInt64,
    updated_at            DateTime
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY line
ORDER BY call_id;

-- The daily figures the service emitted as vn.binhduong.hotline_1022 / emergency_115 .figure.reported:
-- the latest revision per (indicator, unit, period) is what the indicators service holds.
CREATE TABLE IF NOT EXISTS hotline_figures
(
    indicator  String,
    cadence    String,
    unit       String,
    period     String,
    value      Float64,
    revision   UInt64,
    event_id   String,
    time       DateTime,
    updated_at DateTime
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY substring(period, 1, 4)
ORDER BY (indicator, cadence, unit, period);

-- 115 facilities' availability events (vn.binhduong.hotline.facility.availability), once per event: a call is
-- routed by the availability at the time it was received (the newest event at or before it).
CREATE TABLE IF NOT EXISTS facility_availability
(
    hospital  String,
    available UInt8,
    time_ms   UInt64,
    event_id  String,
    reason    String
)
ENGINE = ReplacingMergeTree()
ORDER BY (hospital, time_ms, event_id);
