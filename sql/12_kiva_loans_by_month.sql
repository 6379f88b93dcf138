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
SELECT
  -- Truncate the TIMESTAMP, then take its DATE. The shorter DATE_TRUNC(DATE(ts), MONTH)
  -- transpiles to DuckDB's date_trunc on a DATE, which returns a TIMESTAMP, not a DATE.
  DATE(TIMESTAMP_TRUNC(posted_time, MONTH)) AS month,
  COUNT(*) AS loans,
  SUM(funded_amount) AS funded_amount,
  SUM(loan_amount) AS loan_amount,
  SAFE_DIVIDE(SUM(funded_amount), SUM(loan_amount)) AS funding_ratio
FROM {dataset}.kiva_loans
GROUP BY month;
