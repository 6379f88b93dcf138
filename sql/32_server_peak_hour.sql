-- The peak hour of each UTC day: the hour with the most requests and its share of the day.
-- The all-time peak is this table's top row by requests; one row per day also shows how
-- the peak moves. Built from server_requests_per_hour (cooked just before, see file order)
-- so the hourly counts are computed once.
CREATE OR REPLACE TABLE {cooked_dataset}.server_peak_hour AS
WITH ranked AS (
  SELECT
    DATE(hour) AS day,
    hour,
    requests,
    SAFE_DIVIDE(requests, SUM(requests) OVER (PARTITION BY DATE(hour))) AS share_of_day,
    -- The earliest hour wins a tie, so the answer is the same on every run.
    ROW_NUMBER() OVER (PARTITION BY DATE(hour) ORDER BY requests DESC, hour) AS hour_rank
  FROM {cooked_dataset}.server_requests_per_hour
)
SELECT day, hour AS peak_hour, requests, share_of_day
FROM ranked
WHERE hour_rank = 1;
