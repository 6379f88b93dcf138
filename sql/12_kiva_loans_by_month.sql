-- Kiva loans by the month they were posted (UTC), for trend charts.
-- dashboard:
--   section: Kiva funding
--   position: 110
--   title: Funded vs requested by month posted
--   name: kiva-by-month
--   kind: line
--   wide: true
--   width: 1280
--   x: month
--   x_format: month
--   series: [{name: funded, column: funded_amount}, {name: requested, column: loan_amount}]
--   data: {month: month}
--   legend: [funded, requested (USD)]
--   not_null: [month]
--   order: month
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_loans_by_month AS
WITH totals AS (
  SELECT
    -- Truncate the TIMESTAMP, then take its DATE. The shorter DATE_TRUNC(DATE(ts), MONTH)
    -- transpiles to DuckDB's date_trunc on a DATE, which returns a TIMESTAMP, not a DATE.
    DATE(TIMESTAMP_TRUNC(posted_time, MONTH)) AS month,
    COUNT(*) AS loans,
    -- In units of 2^64 USD, so that no sum overflows: see kiva_loans_by_country.
    SUM(funded_amount * POW(2, -64)) AS funded_scaled,
    SUM(loan_amount * POW(2, -64)) AS requested_scaled
  FROM {dataset}.kiva_loans
  GROUP BY month
)
SELECT
  month,
  loans,
  IF(ABS(funded_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     funded_scaled * POW(2, 64), NULL) AS funded_amount,
  IF(ABS(requested_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     requested_scaled * POW(2, 64), NULL) AS loan_amount,
  SAFE_DIVIDE(funded_scaled, requested_scaled) AS funding_ratio
FROM totals;
