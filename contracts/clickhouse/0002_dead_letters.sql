-- Records that could not be accepted, with the original bytes and the reason. Nothing is lost:
-- an operator can read the reason, fix the producer and re-send the record.
-- One row per (topic, partition, offset, position in a batch record); redelivery changes nothing.
CREATE TABLE IF NOT EXISTS dead_letters
(
    received_at DateTime,
    topic       String,
    partition   UInt16,
    offset      UInt64,
    position    UInt32,
    key         String,
    raw         String,
    reason      String,
    source      String,
    type        String
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, partition, offset, position);
