-- PLACEHOLDER from the gateway branch, shaped after the integrator's contracts (hotline section), so that the
-- gateway's migration 0006 has no gap and its queries can be tested. The hotline branch owns this file:
-- at merge, take the hotline branch's version.
CREATE TABLE IF NOT EXISTS calls
(
    call_id       String,
    line          String,
    state         String,
    caller_masked String,
    unit          String,
    district      String,
    field         String,
    topic         String,
    focal_point   String,
    hospital      String,
    received_at   DateTime,
    answered_at   DateTime,
    wait_s        Float64,
    deadline      DateTime,
    overdue       UInt8,
    version       UInt64,
    updated_at    DateTime
)
ENGINE = ReplacingMergeTree(version)
ORDER BY call_id;

CREATE TABLE IF NOT EXISTS call_events
(
    call_id String,
    version UInt64,
    type    String,
    time    DateTime,
    state   String,
    unit    String
)
ENGINE = ReplacingMergeTree()
ORDER BY (call_id, version);
