-- Kiva loans by sector: volume and funding ratio, plus each sector's share of all loans.
-- dashboard:
--   section: Kiva funding
--   position: 120
--   title: By sector
--   name: kiva-by-sector
--   kind: bars
--   label: sector_name
--   y: funded_amount
--   back: loan_amount
--   data: {sector: sector_name, funded: funded_amount, requested: loan_amount, loans: loans}
--   tooltip: "{label}: funded {funded_amount} of {loan_amount} requested, {loans} loans"
--   legend: [funded, requested (USD)]
--   order: funded_amount DESC, sector_name
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_loans_by_sector AS
WITH totals AS (
  SELECT
    sector_name,
    COUNT(*) AS loans,
    -- In units of 2^64 USD, so that no sum overflows: see kiva_loans_by_country.
    SUM(funded_amount * POW(2, -64)) AS funded_scaled,
    SUM(loan_amount * POW(2, -64)) AS requested_scaled
  FROM {dataset}.kiva_loans
  GROUP BY sector_name
)
SELECT
  sector_name,
  loans,
  SAFE_DIVIDE(loans, SUM(loans) OVER ()) AS share_of_loans,
  IF(ABS(funded_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     funded_scaled * POW(2, 64), NULL) AS funded_amount,
  IF(ABS(requested_scaled) <= 1.7976931348623157e308 * POW(2, -64),
     requested_scaled * POW(2, 64), NULL) AS loan_amount,
  SAFE_DIVIDE(funded_scaled, requested_scaled) AS funding_ratio
FROM totals;
