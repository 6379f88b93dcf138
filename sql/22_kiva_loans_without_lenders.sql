-- Loans with no known lender: no row in kiva_lenders, or only empty lenders values.
-- The real lenders file has ~32 k fewer loans than the loans file; this lists them so the
-- gap can be explained (fundraising, expired, or a missing upload).
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_loans_without_lenders AS
WITH listed AS (
  SELECT DISTINCT loan_id FROM {dataset}.kiva_lenders
),
named AS (
  -- The same split as kiva_lenders_per_loan, so a loan is "without lenders" here exactly
  -- when it would sit in that table's 0 bucket (or be absent from it).
  SELECT DISTINCT lenders_row.loan_id
  FROM {dataset}.kiva_lenders AS lenders_row, UNNEST(SPLIT(lenders_row.lenders, ',')) AS name
  WHERE TRIM(name) != ''
)
SELECT
  loans.loan_id,
  loans.status,
  loans.sector_name,
  loans.country_code,
  loans.posted_time,
  loans.funded_amount,
  loans.num_lenders_total,
  IF(listed.loan_id IS NULL, 'no lenders row', 'empty lenders') AS reason
FROM {dataset}.kiva_loans AS loans
LEFT JOIN listed ON listed.loan_id = loans.loan_id
LEFT JOIN named ON named.loan_id = loans.loan_id
WHERE named.loan_id IS NULL;
