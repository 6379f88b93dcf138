-- Requests per UTC day: traffic volume, distinct clients and failures.
-- dashboard:
--   section: Server traffic
--   position: 20
--   title: 5xx error rate per day
--   name: error-rate-per-day
--   kind: columns
--   width: 620
--   x: day
--   x_format: day
--   y: server_error_rate
--   y_format: pct
--   data: {day: day, error-rate: server_error_rate, requests: requests}
--   tooltip: "{day}: {server_error_rate:pct} 5xx ({server_errors} of {requests})"
--   order: day
CREATE OR REPLACE TABLE {cooked_dataset}.server_requests_per_day AS
SELECT
  DATE(`timestamp`) AS day,
  COUNT(*) AS requests,
  -- Summed wide, as in server_requests_per_hour: an INT64 sum overflows at two requests of
  -- the largest INT64 byte count.
  SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent,
  -- Exact distinct count: BigQuery's COUNT(DISTINCT) is exact, unlike APPROX_COUNT_DISTINCT.
  COUNT(DISTINCT client_ip) AS unique_clients,
  COUNTIF(status >= 500 AND status < 600) AS server_errors,
  SAFE_DIVIDE(COUNTIF(status >= 500 AND status < 600), COUNT(*)) AS server_error_rate
FROM {dataset}.server_logs
GROUP BY day;
