-- gps-agent health rows -> Kinesis -> Redshift: streaming ingestion of the
-- gateways' health ([kinesis] health_stream, docs/health.schema.json, v 1),
-- beside the positions of docs/redshift.sql, and the query "gateways needing a
-- visit".
--
-- Before running: run docs/redshift.sql's step 1 (the external schema kds),
-- give REDSHIFT_ROLE read access to the health stream too
-- (docs/iam-redshift-policy.json, HEALTH_STREAM), and if the stream is not
-- called "fleet-health", change its name below.
--
-- A health row is best effort: sent every health_interval (60 s by default)
-- and on each change of the receiver's state, never kept on the gateway's
-- flash. A missing row is a gateway that was off or out of coverage, or a row
-- replaced by the next before it could be sent (a gap in seq within a boot).
-- Rows put by `gps-agent check` carry check = true: the views below leave them
-- out. Counters (sentences, fixes, dropped, lost, bytes_*) count from the
-- agent's start (boot): compare rows of one boot only.
--
-- Time: ts is the agent's best time (ts_src gnss: GNSS time carried forward on
-- the gateway's monotonic clock; gateway: its clock, no fix since start).
-- approximate_arrival_timestamp (UTC TIMESTAMP) is when Kinesis took the row.

-- 1. The streaming materialized view: one row per health record of v 1.
--    JSON null (gnss_ts, clock_offset_s without a fix) and an absent key are
--    both NULL here (NULLIF of '' and 'null').
CREATE MATERIALIZED VIEW gps_health_raw AUTO REFRESH YES AS
SELECT
    refresh_time,
    approximate_arrival_timestamp,
    partition_key,                  -- = truck_id
    shard_id,
    sequence_number,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'truck_id', TRUE), '') AS VARCHAR(256)) AS truck_id,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'boot', TRUE), '') AS VARCHAR(16)) AS boot,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'seq', TRUE), '') AS BIGINT) AS seq,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'ts', TRUE), '') AS TIMESTAMPTZ) AS ts,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'ts_src', TRUE), '') AS VARCHAR(8)) AS ts_src,
    CAST(NULLIF(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'gnss_ts', TRUE), ''), 'null') AS TIMESTAMPTZ) AS gnss_ts,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'reason', TRUE), '') AS VARCHAR(16)) AS reason,
    COALESCE(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'check', TRUE), ''), 'false') = 'true' AS is_check,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'receiver', TRUE), '') AS VARCHAR(16)) AS receiver,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'receiver_error', TRUE), '') AS VARCHAR(1024)) AS receiver_error,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'sentences', TRUE), '') AS BIGINT) AS sentences,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'fixes', TRUE), '') AS BIGINT) AS fixes,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'pending', TRUE), '') AS BIGINT) AS pending,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'oldest_pending_s', TRUE), '') AS DOUBLE PRECISION) AS oldest_pending_s,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'dropped', TRUE), '') AS BIGINT) AS dropped,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'lost', TRUE), '') AS BIGINT) AS lost,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'filtered', TRUE), '') AS BIGINT) AS filtered,
    CAST(NULLIF(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'clock_offset_s', TRUE), ''), 'null') AS DOUBLE PRECISION) AS clock_offset_s,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'bytes_sent', TRUE), '') AS BIGINT) AS bytes_sent,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'bytes_received', TRUE), '') AS BIGINT) AS bytes_received,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'uptime_s', TRUE), '') AS DOUBLE PRECISION) AS uptime_s,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'agent_version', TRUE), '') AS VARCHAR(64)) AS agent_version,
    JSON_PARSE(kinesis_data) AS payload  -- the whole row as SUPER, for fields added later
FROM kds."fleet-health"
WHERE CAN_JSON_PARSE(kinesis_data)
  AND JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'v', TRUE) = '1';

-- 2. The daemon's rows (check rows left out), one copy each: a row is put once
--    and never resent, but (truck_id, boot, seq) names it should that change.
CREATE OR REPLACE VIEW gps_health AS
SELECT *
FROM (
    SELECT r.*,
           ROW_NUMBER() OVER (PARTITION BY truck_id, boot, seq
                              ORDER BY approximate_arrival_timestamp, sequence_number) AS copy_no
    FROM gps_health_raw r
    WHERE NOT is_check
) d
WHERE copy_no = 1;

-- 3. Each gateway's latest row: the latest to arrive (rows go out in order; a
--    row is never sent late, only replaced).
CREATE OR REPLACE VIEW gps_health_latest AS
SELECT h.*,
       DATEDIFF(second, approximate_arrival_timestamp, GETDATE()) AS s_since_row
FROM (
    SELECT g.*,
           ROW_NUMBER() OVER (PARTITION BY truck_id
                              ORDER BY approximate_arrival_timestamp DESC, boot, seq DESC) AS rn
    FROM gps_health g
) h
WHERE rn = 1;

-- 4. Gateways needing a visit. From each gateway's latest row, if it arrived in
--    the last 15 minutes (the agent runs and reaches Kinesis; a gateway that
--    sends nothing is parked, off or out of coverage, not necessarily broken):
--    * no_fix_1h: no fix for an hour while the agent runs: the last fix
--      (gnss_ts) is over an hour before ts, or there was none since an agent
--      start over an hour ago. Antenna cable, antenna, or a receiver that lost
--      its almanac under a metal roof.
--    * backlog_1d: the oldest fix still on the gateway is over a day old: the
--      link carries the live fixes but not the backlog (throttling, a data plan
--      cut to a trickle), or the buffer is stuck.
--    * receiver_unavailable: the receiver cannot be opened (unplugged, USB
--      adapter dead, gpsd down); receiver_error says why.
--    Also shown, not a reason on its own: a silent receiver (powered off or a
--    stopped modem engine: no_fix_1h catches it after an hour), clock_offset_s
--    beyond 2 s (NTP) and fixes dropped or lost in this boot.
SELECT truck_id,
       receiver,
       receiver_error,
       ts,
       gnss_ts,
       ROUND(oldest_pending_s / 3600.0, 1) AS oldest_pending_h,
       pending,
       dropped,
       lost,
       clock_offset_s,
       agent_version,
       (gnss_ts IS NULL AND uptime_s > 3600)
           OR DATEDIFF(second, gnss_ts, ts) > 3600 AS no_fix_1h,
       oldest_pending_s > 86400                 AS backlog_1d,
       receiver = 'unavailable'                 AS receiver_unavailable
FROM gps_health_latest
WHERE approximate_arrival_timestamp > DATEADD(minute, -15, GETDATE())
  AND (   (gnss_ts IS NULL AND uptime_s > 3600)
       OR DATEDIFF(second, gnss_ts, ts) > 3600
       OR oldest_pending_s > 86400
       OR receiver = 'unavailable')
ORDER BY receiver = 'unavailable' DESC, oldest_pending_s DESC, truck_id;

-- 5. Receiver changes of the last day, per gateway: the change rows (at most
--    one per 10 s per gateway; a flapping connector shows as many).
SELECT truck_id, COUNT(*) AS changes,
       SUM(CASE WHEN receiver = 'unavailable' THEN 1 ELSE 0 END) AS to_unavailable,
       SUM(CASE WHEN receiver = 'silent' THEN 1 ELSE 0 END)      AS to_silent,
       SUM(CASE WHEN receiver = 'no_fix' THEN 1 ELSE 0 END)      AS to_no_fix
FROM gps_health
WHERE reason = 'change'
  AND approximate_arrival_timestamp > DATEADD(day, -1, GETDATE())
GROUP BY truck_id
ORDER BY changes DESC;
