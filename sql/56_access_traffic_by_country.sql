-- Where access-log traffic comes from: requests, their share, bytes and unique visitors per
-- country of the client address (country_code, enriched at load from the registries'
-- allocations). NULL country_code is its own row: private or reserved addresses, and rows
-- loaded before the contract had the column; 'NA' is Namibia. Unique visitors are GoAccess's
-- (distinct client_ip, user_agent, day), summed over days.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 75
--   title: Visitors' countries
--   name: web-traffic-by-country
--   kind: bars
--   label: country_code
--   y: requests
--   data: {web-country: country_code, requests: requests, visitors: unique_visitors}
--   tooltip: "{label}: {requests} requests ({share_of_requests:pct}), {unique_visitors} visitors"
--   order: requests DESC, country_code
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.access_traffic_by_country AS
WITH visits AS (
  -- One row per country and visitor, so visitors are a count of rows (see
  -- access_requests_per_day).
  SELECT
    country_code,
    client_ip,
    user_agent,
    DATE(`timestamp`) AS day,
    COUNT(*) AS requests,
    -- Summed wide, as in access_requests_per_hour.
    SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent
  FROM {dataset}.access_logs
  GROUP BY country_code, client_ip, user_agent, day
)
SELECT
  country_code,
  -- CAST: DuckDB sums BIGINT counts as HUGEINT; INT64 on both warehouses.
  CAST(SUM(requests) AS INT64) AS requests,
  SAFE_DIVIDE(SUM(requests), SUM(SUM(requests)) OVER ()) AS share_of_requests,
  SUM(bytes_sent) AS bytes_sent,
  COUNT(*) AS unique_visitors
FROM visits
GROUP BY country_code;
