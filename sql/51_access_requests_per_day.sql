-- Access-log requests per UTC day: volume, bytes, unique visitors, responses by status class
-- and the error rate. One table answers "how much traffic" and "how much of it failed".
-- A unique visitor is counted as GoAccess counts one: a distinct (client_ip, user_agent,
-- day), a missing user agent ('-', NULL) being one value like any other. Status classes:
-- 2xx..5xx, and 'other' for anything outside 200-599 (1xx included: a finished access-log
-- line is never an interim response). error_rate is 4xx and 5xx over all requests; request
-- lines that were not METHOD TARGET PROTOCOL count as traffic, as errors through their
-- status (usually 400), and in invalid_requests.
-- dashboard:
--   - section: Web traffic (access logs)
--     position: 55
--     title: Requests and unique visitors per day
--     name: web-traffic-per-day
--     kind: line
--     width: 620
--     x: day
--     x_format: day
--     series: [{name: requests, column: requests}, {name: visitors, column: unique_visitors}]
--     data: {web-day: day}
--     legend: [requests, unique visitors]
--     order: day
--   - section: Web traffic (access logs)
--     position: 60
--     title: Error rate per day (4xx and 5xx)
--     name: web-error-rate-per-day
--     kind: columns
--     width: 620
--     x: day
--     x_format: day
--     y: error_rate
--     y_format: pct
--     data: {web-day: day, web-error-rate: error_rate, requests: requests}
--     tooltip: "{day}: {error_rate:pct} ({requests_4xx} 4xx, {requests_5xx} 5xx of {requests})"
--     order: day
--   - section: Web traffic (access logs)
--     position: 65
--     title: Responses per day by status class
--     name: web-status-classes
--     kind: line
--     wide: true
--     width: 1280
--     x: day
--     x_format: day
--     series:
--       - {name: 2xx, column: requests_2xx}
--       - {name: 3xx, column: requests_3xx}
--       - {name: 4xx, column: requests_4xx}
--       - {name: 5xx, column: requests_5xx}
--       - {name: other, column: requests_other}
--     data: {web-day: day}
--     legend: [2xx, 3xx, 4xx, 5xx, other]
--     order: day
CREATE OR REPLACE TABLE {cooked_dataset}.access_requests_per_day AS
WITH visits AS (
  -- One row per visitor and day, so the day's distinct visitors are a count of rows, and
  -- the NULL user agent is a group of its own (COUNT(DISTINCT) has no NULL-safe tuple form
  -- on both warehouses).
  SELECT
    DATE(`timestamp`) AS day,
    client_ip,
    user_agent,
    COUNT(*) AS requests,
    -- Summed wide, as in access_requests_per_hour.
    SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent,
    COUNTIF(status BETWEEN 200 AND 299) AS requests_2xx,
    COUNTIF(status BETWEEN 300 AND 399) AS requests_3xx,
    COUNTIF(status BETWEEN 400 AND 499) AS requests_4xx,
    COUNTIF(status BETWEEN 500 AND 599) AS requests_5xx,
    COUNTIF(method IS NULL) AS invalid_requests
  FROM {dataset}.access_logs
  GROUP BY day, client_ip, user_agent
)
SELECT
  day,
  -- CAST: DuckDB sums BIGINT counts as HUGEINT; INT64 on both warehouses.
  CAST(SUM(requests) AS INT64) AS requests,
  SUM(bytes_sent) AS bytes_sent,
  COUNT(*) AS unique_visitors,
  CAST(SUM(requests_2xx) AS INT64) AS requests_2xx,
  CAST(SUM(requests_3xx) AS INT64) AS requests_3xx,
  CAST(SUM(requests_4xx) AS INT64) AS requests_4xx,
  CAST(SUM(requests_5xx) AS INT64) AS requests_5xx,
  CAST(SUM(requests - requests_2xx - requests_3xx - requests_4xx - requests_5xx) AS INT64)
    AS requests_other,
  CAST(SUM(invalid_requests) AS INT64) AS invalid_requests,
  SAFE_DIVIDE(SUM(requests_4xx + requests_5xx), SUM(requests)) AS error_rate
FROM visits
GROUP BY day;
