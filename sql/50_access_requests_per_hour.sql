-- Access-log requests per UTC hour: the traffic a web server answered, its bytes and errors.
-- Every logged request counts, including request lines that were not METHOD TARGET
-- PROTOCOL (TLS handshakes on port 80, scanners' junk: NULL method and path, usually a 400).
-- Only hours with at least one request appear. `timestamp` is back-quoted: a type name.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 50
--   title: Requests per hour (UTC)
--   name: web-requests-per-hour
--   kind: columns
--   wide: true
--   x: hour
--   x_format: hour
--   y: requests
--   data: {web-hour: hour, requests: requests, errors: errors}
--   tooltip: "{label} UTC: {requests} requests, {errors} errors (4xx/5xx)"
--   order: hour
--   peaks:
--     table: access_peak_hour
--     x: peak_hour
--     y: requests
--     note: "Peak: {peak_x} UTC, {peak_y} requests. Darker bars: each day's peak hour."
CREATE OR REPLACE TABLE {cooked_dataset}.access_requests_per_hour AS
SELECT
  TIMESTAMP_TRUNC(`timestamp`, HOUR) AS hour,
  COUNT(*) AS requests,
  -- Summed wide: two responses of the largest INT64 size overflow an INT64 sum. A response
  -- without a body ('-') is NULL and adds nothing; an hour of only those has NULL bytes.
  SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent,
  COUNTIF(status BETWEEN 400 AND 599) AS errors,
  COUNTIF(status BETWEEN 500 AND 599) AS server_errors
FROM {dataset}.access_logs
GROUP BY hour;
