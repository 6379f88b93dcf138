-- Latency per path: p50/p95/p99 and the mean, over all requests with a latency.
-- APPROX_QUANTILES keeps one bounded sketch per path: logs grow without limit and an
-- exact PERCENTILE_CONT would sort every path's full history. Its quantiles are
-- approximate on both warehouses (BigQuery returns a sampled value, DuckDB a t-digest
-- estimate), so compare them with tolerance, never for equality.
-- dashboard:
--   section: Server traffic
--   position: 40
--   title: Latency of the busiest paths (ms)
--   name: latency
--   kind: table
--   wide: true
--   columns: [path, requests, p50_latency_ms: p50, p95_latency_ms: p95, p99_latency_ms: p99]
--   order: requests DESC, path
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.server_latency_by_path AS
WITH sketches AS (
  SELECT
    path,
    COUNT(*) AS requests,
    COUNT(latency_ms) AS timed_requests,
    -- Averaged in units of 2^64 ms: a sum of FLOAT64 latencies near the type's maximum
    -- overflows (BigQuery raises, DuckDB gives Infinity), while the scaled sum cannot below
    -- 2^64 rows; a power of two scales exactly (latencies under 1e-288 aside), so the mean
    -- is the same number.
    AVG(latency_ms * POW(2, -64)) * POW(2, 64) AS mean_latency_ms,
    -- One sketch, three reads: 101 boundaries, so OFFSET(n) is the n-th percentile.
    APPROX_QUANTILES(latency_ms, 100) AS percentiles
  FROM {dataset}.server_logs
  GROUP BY path
)
SELECT
  path,
  requests,
  timed_requests,
  mean_latency_ms,
  -- SAFE_OFFSET: a path whose requests all lack a latency has no quantiles, not an error.
  percentiles[SAFE_OFFSET(50)] AS p50_latency_ms,
  percentiles[SAFE_OFFSET(95)] AS p95_latency_ms,
  percentiles[SAFE_OFFSET(99)] AS p99_latency_ms
FROM sketches;
