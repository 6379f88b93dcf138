-- Kiva loans by country: how much was asked for, how much the crowd funded, and the ratio.
-- One row per country_code. Namibia's code 'NA' is a real value; a NULL code (not recorded)
-- is kept as its own NULL row instead of being folded into a label that could collide.
-- dashboard:
--   section: Kiva funding
--   position: 130
--   title: Top countries
--   name: kiva-by-country
--   kind: bars
--   label: [country_name, country_code]
--   y: funded_amount
--   back: loan_amount
--   data: {country: country_code, funded: funded_amount, requested: loan_amount, loans: loans}
--   tooltip: "{label}: funded {funded_amount} of {loan_amount} requested, {loans} loans"
--   legend: [funded, requested (USD)]
--   order: funded_amount DESC, country_code
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_loans_by_country AS
WITH totals AS (
  SELECT
    country_code,
    -- A code should have one name; MAX keeps the result deterministic if spellings differ.
    MAX(country_name) AS country_name,
    COUNT(*) AS loans,
    -- Summed in units of 2^64 USD: a plain sum of two amounts near FLOAT64's maximum
    -- overflows (BigQuery raises, DuckDB gives Infinity); the scaled sum cannot below 2^64
    -- rows, and a power of two scales exactly (amounts under 1e-288 aside: they lose digits),
    -- so the totals are the same numbers.
    SUM(funded_amount * POW(2, -64)) AS funded_scaled,
    SUM(loan_amount * POW(2, -64)) AS requested_scaled
  FROM {dataset}.kiva_loans
  GROUP BY country_code
)
SELECT
  country_code,
  country_name,
  loans,
  -- A total beyond FLOAT64 (about 1.8e308) has no value to store: NULL, not Infinity.
  IF(ABS(funded_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     funded_scaled * POW(2, 64), NULL) AS funded_amount,
  IF(ABS(requested_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     requested_scaled * POW(2, 64), NULL) AS loan_amount,
  -- Ratio of sums, not mean of per-loan ratios: big loans weigh what they weigh in dollars.
  SAFE_DIVIDE(funded_scaled, requested_scaled) AS funding_ratio
FROM totals;
