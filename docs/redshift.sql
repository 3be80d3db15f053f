-- gps-agent -> Kinesis -> Redshift: streaming ingestion of fix records, schema v2 and v1.
--
-- Before running: replace ACCOUNT and REDSHIFT_ROLE (the role carrying
-- docs/iam-redshift-policy.json) and, if the stream is not called
-- "fleet-positions", the stream name. Run the statements top to bottom
-- (psql, Query editor v2, ...). See docs/downstream.md for the contract.
--
-- Time: approximate_arrival_timestamp and refresh_time are TIMESTAMP (without
-- time zone) in UTC; ts and rx are TIMESTAMPTZ. `ts AT TIME ZONE 'UTC'` turns a
-- TIMESTAMPTZ into a UTC TIMESTAMP so the two can be compared with DATEDIFF.
-- GETDATE() is in the session time zone, UTC unless you changed it.

-- 1. The stream as an external schema. Streaming ingestion from Kinesis uses
--    the IAM role for its Kinesis calls; no AUTHENTICATION clause.
--    Add REGION 'eu-west-1' (before IAM_ROLE) if the stream is in another
--    Region than the cluster or workgroup.
CREATE EXTERNAL SCHEMA IF NOT EXISTS kds
FROM KINESIS
IAM_ROLE 'arn:aws:iam::ACCOUNT:role/REDSHIFT_ROLE';

-- 2. The streaming materialized view: one row per Kinesis record.
--
--    * The first refresh starts at the stream's TRIM_HORIZON (the oldest record
--      it still retains); AUTO REFRESH YES keeps it refreshing (manual is the
--      default).
--    * Rows that are not JSON are skipped (CAN_JSON_PARSE), and so are records
--      of another schema version than 1 and 2: a retyped field is a new "v"
--      and gets its own view, so it can never break this one's casts.
--    * Both versions land in the same columns, so trucks can move from v1 to
--      v2 one by one (docs/downstream.md). They share every field name and
--      ts's format; only rx differs: a timestamp in v1, milliseconds after ts
--      in v2 (BIGINT: a gateway whose clock is days or years off must not
--      break the cast), which becomes the same TIMESTAMPTZ as v1's rx.
--    * A cast error inside a streaming view blocks ingestion until the view is
--      dropped and re-created. The casts below are safe for anything that
--      follows docs/record.schema.json; let nothing but gps-agent write to this
--      stream.
--    * Fields the receiver did not report are absent from the record. NULLIF
--      makes an absent key NULL whether JSON_EXTRACT_PATH_TEXT returns NULL or
--      '' for it.
--    * AWS recommends JSON_PARSE into SUPER over JSON_EXTRACT_PATH_TEXT, which
--      re-parses the record for each column. We keep both: payload (SUPER) for
--      fields added later, typed columns for the dashboards. At ~190 B per
--      record and 1 record per truck per second the re-parse costs little.
--    * Kinesis stream names are case sensitive: for a name with capitals, set
--      enable_case_sensitive_identifier to true first.
CREATE MATERIALIZED VIEW gps_fixes_raw AUTO REFRESH YES AS
SELECT
    refresh_time,                   -- start of the refresh that loaded the row (UTC)
    approximate_arrival_timestamp,  -- when Kinesis accepted the record (UTC)
    partition_key,                  -- = truck_id
    shard_id,
    sequence_number,                -- Kinesis order within the shard: NOT fix order
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'v', TRUE), '') AS SMALLINT) AS v,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'truck_id', TRUE), '') AS VARCHAR(256)) AS truck_id,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'seq', TRUE), '') AS BIGINT) AS seq,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'ts', TRUE), '') AS TIMESTAMPTZ) AS ts,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'lat', TRUE), '') AS DOUBLE PRECISION) AS lat,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'lon', TRUE), '') AS DOUBLE PRECISION) AS lon,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'speed_kmh', TRUE), '') AS DOUBLE PRECISION) AS speed_kmh,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'course_deg', TRUE), '') AS DOUBLE PRECISION) AS course_deg,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'alt_m', TRUE), '') AS DOUBLE PRECISION) AS alt_m,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'fix', TRUE), '') AS SMALLINT) AS fix,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'sats', TRUE), '') AS SMALLINT) AS sats,
    CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'hdop', TRUE), '') AS DOUBLE PRECISION) AS hdop,
    CASE WHEN JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'v', TRUE) = '2'  -- v2: rx is milliseconds after ts
         THEN CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'ts', TRUE), '') AS TIMESTAMPTZ)
              + CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'rx', TRUE), '') AS BIGINT) * INTERVAL '1 millisecond'
         ELSE CAST(NULLIF(JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'rx', TRUE), '') AS TIMESTAMPTZ)  -- v1: rx is a timestamp
    END AS rx,
    JSON_PARSE(kinesis_data) AS payload  -- the whole record as SUPER
FROM kds."fleet-positions"
WHERE CAN_JSON_PARSE(kinesis_data)
  AND JSON_EXTRACT_PATH_TEXT(FROM_VARBYTE(kinesis_data, 'utf-8'), 'v', TRUE) IN ('1', '2');

-- 3. Deduplicated fixes. Delivery is at least once: a record whose PutRecords
--    reply was lost is sent again, byte for byte. (truck_id, seq) identifies a
--    fix, so keep one copy of each: the first that arrived.
CREATE OR REPLACE VIEW gps_fixes AS
SELECT truck_id, seq, ts, lat, lon, speed_kmh, course_deg, alt_m, fix, sats, hdop, rx,
       approximate_arrival_timestamp, refresh_time, shard_id, sequence_number, payload
FROM (
    SELECT r.*,
           ROW_NUMBER() OVER (PARTITION BY truck_id, seq
                              ORDER BY approximate_arrival_timestamp, sequence_number) AS copy_no
    FROM gps_fixes_raw r
) d
WHERE copy_no = 1;

-- 4. Latest position per truck: the highest seq, not the latest arrival. After
--    an outage the agent sends the newest fix first and then backfills
--    oldest-first, so the last row to arrive is often an old fix. Duplicates
--    are identical, so the raw view is enough here.
CREATE OR REPLACE VIEW gps_latest_position AS
SELECT truck_id, seq, ts, lat, lon, speed_kmh, course_deg, alt_m, fix, sats, hdop,
       approximate_arrival_timestamp,
       DATEDIFF(second, ts AT TIME ZONE 'UTC', GETDATE()) AS age_s
FROM (
    SELECT f.*,
           ROW_NUMBER() OVER (PARTITION BY truck_id ORDER BY seq DESC) AS rn
    FROM gps_fixes_raw f
) l
WHERE rn = 1;

-- 5. Sequence gaps per truck: seq numbers never seen between two received fixes.
--
--    A gap is one of:
--    * Reserved, never used: after an unclean stop (power cut, kill -9, crash)
--      the agent skips the rest of its reserved block of numbers (at most
--      65,536 by default) and logs it:
--        "unclean stop: skipping seqs that may have been handed out" gap_from=.. gap_to=..
--      A gap inside such a range is not a lost fix, except for the fixes of the
--      last commit interval (<= 1 s by default) before the power cut: the
--      documented loss window. They are the first numbers of the range
--      (gap_from is the first seq that was not on disk), so a lost fix is
--      never outside a logged range.
--    * Still backfilling: after an outage the newest fixes arrive first and the
--      backlog follows oldest-first, so a fresh gap may close by itself. Look
--      again once the truck has been online for a while.
--    * Dropped by the agent, and logged: "buffer full: dropped oldest records"
--      (backlog over its byte or age bound, 7 days by default) or "deleted
--      undecodable records" (corrupt buffer). These fixes are lost.
--    * Anything else, a gap with no such log line, is a lost fix: report it.
CREATE OR REPLACE VIEW gps_seq_gaps AS
SELECT truck_id,
       prev_seq + 1                  AS first_missing_seq,
       seq - 1                       AS last_missing_seq,
       seq - prev_seq - 1            AS missing_count,
       prev_ts                       AS ts_before_gap,
       ts                            AS ts_after_gap,
       approximate_arrival_timestamp AS arrival_after_gap
FROM (
    SELECT truck_id, seq, ts, approximate_arrival_timestamp,
           LAG(seq) OVER (PARTITION BY truck_id ORDER BY seq) AS prev_seq,
           LAG(ts)  OVER (PARTITION BY truck_id ORDER BY seq) AS prev_ts
    FROM gps_fixes
) s
WHERE seq - prev_seq > 1;

-- Gaps of the last day, newest first. Compare each range with the agent's log
-- (journalctl -u gps-agent on the gateway) before calling fixes lost.
SELECT *
FROM gps_seq_gaps
WHERE ts_after_gap > DATEADD(day, -1, GETDATE())
ORDER BY ts_after_gap DESC;

-- 6. Freshness over the last hour, per truck.
--    ts                            GNSS time of the fix (satellite clock, exact)
--    approximate_arrival_timestamp Kinesis accepted it (AWS clock)
--    refresh_time                  the Redshift refresh that loaded it started
--    arrival - ts   = position-to-stream latency: ~1 s when the link is up;
--                     minutes to days for backfilled fixes after an outage.
--    refresh - arrival = Redshift's ingestion lag (can be slightly negative:
--                     refresh_time is when the refresh started).
--    rx (gateway clock) - ts shows a receiver delay or a gateway clock offset.
SELECT truck_id,
       COUNT(*) AS fixes,
       PERCENTILE_CONT(0.5)  WITHIN GROUP (ORDER BY DATEDIFF(millisecond, ts AT TIME ZONE 'UTC', approximate_arrival_timestamp)) AS p50_ts_to_arrival_ms,
       PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY DATEDIFF(millisecond, ts AT TIME ZONE 'UTC', approximate_arrival_timestamp)) AS p95_ts_to_arrival_ms,
       MAX(DATEDIFF(millisecond, approximate_arrival_timestamp, refresh_time)) AS max_arrival_to_refresh_ms,
       MAX(approximate_arrival_timestamp) AS last_arrival,
       DATEDIFF(second, MAX(approximate_arrival_timestamp), GETDATE()) AS s_since_last_arrival
FROM gps_fixes_raw
WHERE approximate_arrival_timestamp > DATEADD(hour, -1, GETDATE())
GROUP BY truck_id
ORDER BY p95_ts_to_arrival_ms DESC;
