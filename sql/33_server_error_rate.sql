-- Responses by status class per UTC day, each class's share of the day's requests.
-- 5xx is our failure rate; 4xx is the clients' (bots, broken links). A status outside
-- 100-599 is kept as 'other' rather than dropped, so the shares always add up to 1.
CREATE OR REPLACE TABLE {cooked_dataset}.server_error_rate AS
WITH classed AS (
  SELECT
    DATE(`timestamp`) AS day,
    IF(status BETWEEN 100 AND 599, CONCAT(CAST(DIV(status, 100) AS STRING), 'xx'), 'other')
      AS status_class
  FROM {dataset}.server_logs
)
SELECT
  day,
  status_class,
  COUNT(*) AS requests,
  SAFE_DIVIDE(COUNT(*), SUM(COUNT(*)) OVER (PARTITION BY day)) AS share_of_requests
FROM classed
GROUP BY day, status_class;
