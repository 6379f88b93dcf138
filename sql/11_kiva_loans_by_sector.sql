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
SELECT
  sector_name,
  COUNT(*) AS loans,
  SAFE_DIVIDE(COUNT(*), SUM(COUNT(*)) OVER ()) AS share_of_loans,
  SUM(funded_amount) AS funded_amount,
  SUM(loan_amount) AS loan_amount,
  SAFE_DIVIDE(SUM(funded_amount), SUM(loan_amount)) AS funding_ratio
FROM {dataset}.kiva_loans
GROUP BY sector_name;
