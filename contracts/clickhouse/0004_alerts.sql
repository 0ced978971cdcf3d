-- PLACEHOLDER from the gateway branch, shaped after the integrator's contracts (alerts section), so that the
-- gateway's migration 0006 has no gap and its queries can be tested. The alerts branch owns this file:
-- at merge, take the alerts branch's version.
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
    value           Float64,
    threshold       Float64,
    title_vi        String,
    sop_vi          String,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id;

CREATE TABLE IF NOT EXISTS alert_events
(
    alert_id  String,
    version   UInt64,
    type      String,
    time      DateTime,
    actor     String,
    reason    String,
    state     String,
    severity  String,
    note      String,
    assignee  String
)
ENGINE = ReplacingMergeTree()
ORDER BY (alert_id, version);
