-- Where traffic comes from: requests, bytes, distinct clients and failures per country.
-- A NULL country_code (geo lookup failed) stays its own NULL row; 'NA' is Namibia.
-- dashboard:
--   section: Server traffic
--   position: 30
--   title: Traffic by country
--   name: traffic-by-country
--   kind: bars
--   label: country_code
--   y: requests
--   data: {country: country_code, requests: requests}
--   order: requests DESC, country_code
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.server_traffic_by_country AS
SELECT
  country_code,
  COUNT(*) AS requests,
  SAFE_DIVIDE(COUNT(*), SUM(COUNT(*)) OVER ()) AS share_of_requests,
  -- Summed wide, as in server_requests_per_hour: an INT64 sum overflows at two requests of
  -- the largest INT64 byte count.
  SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent,
  COUNT(DISTINCT client_ip) AS unique_clients,
  COUNTIF(status >= 500 AND status < 600) AS server_errors
FROM {dataset}.server_logs
GROUP BY country_code;
