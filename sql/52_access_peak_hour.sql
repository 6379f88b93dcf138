-- The peak hour of each UTC day of access-log traffic: the hour with the most requests and
-- its share of the day. Built from access_requests_per_hour (cooked first: it reads that
-- table) so the hourly counts are computed once; the all-time peak is the top row.
CREATE OR REPLACE TABLE {cooked_dataset}.access_peak_hour AS
WITH ranked AS (
  SELECT
    DATE(hour) AS day,
    hour,
    requests,
    SAFE_DIVIDE(requests, SUM(requests) OVER (PARTITION BY DATE(hour))) AS share_of_day,
    -- The earliest hour wins a tie, so the answer is the same on every run.
    ROW_NUMBER() OVER (PARTITION BY DATE(hour) ORDER BY requests DESC, hour) AS hour_rank
  FROM {cooked_dataset}.access_requests_per_hour
)
SELECT day, hour AS peak_hour, requests, share_of_day
FROM ranked
WHERE hour_rank = 1;
