-- The gateway's audit trail: every operator action and every denied attempt, one row each.
-- Written directly by the gateway (not from a stream); a retried write of the same request changes nothing
-- (ReplacingMergeTree keyed by request and action). Read with FINAL to see each row once.
-- Runs on ClickHouse 18.16 and on current ClickHouse: no DateTime64, no LowCardinality, no TTL.
CREATE TABLE IF NOT EXISTS audit_log
(
    time        DateTime,
    request_id  String,
    actor       String,
    role        String,
    district    String,
    commune     String,
    source      String,
    action      String,
    resource    String,
    unit        String,
    outcome     String,
    reason      String,
    detail      String
)
ENGINE = ReplacingMergeTree(time)
PARTITION BY toYYYYMM(time)
ORDER BY (request_id, action);
