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
SELECT
  country_code,
  -- A code should have one name; MAX keeps the result deterministic if spellings differ.
  MAX(country_name) AS country_name,
  COUNT(*) AS loans,
  SUM(funded_amount) AS funded_amount,
  SUM(loan_amount) AS loan_amount,
  -- Ratio of sums, not mean of per-loan ratios: big loans weigh what they weigh in dollars.
  SAFE_DIVIDE(SUM(funded_amount), SUM(loan_amount)) AS funding_ratio
FROM {dataset}.kiva_loans
GROUP BY country_code;
