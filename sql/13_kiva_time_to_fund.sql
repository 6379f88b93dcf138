-- Time to fund per sector: from posting to the moment the loan was fully raised.
-- Only loans with both times and raised_time >= posted_time count: the snapshot has loans
-- never raised (no raised_time) and a few contradictory times that would pull the mean down.
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_time_to_fund AS
WITH durations AS (
  SELECT
    sector_name,
    -- MICROSECOND, not SECOND: DuckDB's date_diff counts unit boundaries crossed while
    -- BigQuery counts whole elapsed units, so they only agree at the storage precision.
    TIMESTAMP_DIFF(raised_time, posted_time, MICROSECOND) / 3600000000.0 AS hours
  FROM {dataset}.kiva_loans
  WHERE posted_time IS NOT NULL
    AND raised_time IS NOT NULL
    AND raised_time >= posted_time
),
-- PERCENTILE_CONT is exact and interpolates the same way in BigQuery and DuckDB; with 15
-- sectors its per-partition sort is cheap. BigQuery only has it as an analytic function,
-- hence DISTINCT over the window instead of a GROUP BY.
medians AS (
  SELECT DISTINCT
    sector_name,
    PERCENTILE_CONT(hours, 0.5) OVER (PARTITION BY sector_name) AS median_hours
  FROM durations
),
totals AS (
  SELECT sector_name, COUNT(*) AS loans, AVG(hours) AS mean_hours
  FROM durations
  GROUP BY sector_name
)
SELECT
  totals.sector_name,
  totals.loans,
  medians.median_hours,
  totals.mean_hours,
  medians.median_hours / 24 AS median_days,
  totals.mean_hours / 24 AS mean_days
FROM totals
JOIN medians ON medians.sector_name = totals.sector_name;
