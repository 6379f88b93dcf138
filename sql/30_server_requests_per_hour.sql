-- Requests per UTC hour: how much traffic we serve, hour by hour, and how much of it failed.
-- Only hours with at least one request appear (a gap is itself visible on a chart).
-- The column is called `timestamp`, a type name: back-quoted so no parser reads a literal.
-- dashboard:
--   section: Server traffic
--   position: 10
--   title: Requests per hour (UTC)
--   name: requests-per-hour
--   kind: columns
--   wide: true
--   x: hour
--   x_format: hour
--   y: requests
--   data: {hour: hour, requests: requests, server-errors: server_errors}
--   order: hour
--   peaks:
--     table: server_peak_hour
--     x: peak_hour
--     y: requests
--     note: "Peak: {peak_x} UTC, {peak_y} requests. Darker bars: each day's peak hour."
CREATE OR REPLACE TABLE {cooked_dataset}.server_requests_per_hour AS
SELECT
  TIMESTAMP_TRUNC(`timestamp`, HOUR) AS hour,
  COUNT(*) AS requests,
  -- Summed wide: two requests of the largest INT64 byte count overflow an INT64 sum, which
  -- fails the summary. BIGNUMERIC (DECIMAL(38, 5) on DuckDB) holds 10^14 of them, exactly.
  SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent,
  COUNTIF(status >= 500 AND status < 600) AS server_errors,
  SAFE_DIVIDE(COUNTIF(status >= 500 AND status < 600), COUNT(*)) AS server_error_rate,
  -- Averaged in units of 2^64 ms: a sum of FLOAT64 latencies near the type's maximum
  -- overflows (BigQuery raises, DuckDB gives Infinity), while the scaled sum cannot below
  -- 2^64 rows; a power of two scales exactly (latencies under 1e-288 aside), so the mean is
  -- the same number.
  AVG(latency_ms * POW(2, -64)) * POW(2, 64) AS mean_latency_ms
FROM {dataset}.server_logs
GROUP BY hour;
