-- Kiva loans by sector: volume and funding ratio, plus each sector's share of all loans.
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
