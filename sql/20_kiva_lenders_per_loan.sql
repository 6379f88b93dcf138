-- Distribution of lenders per loan: how many loans had 0, 1, 2, ... distinct lenders.
-- Counts are of distinct (loan, lender) pairs, so a loan listed twice (two uploads of the
-- lenders file under different names) is not double counted. A loan whose lenders value
-- is empty lands in the 0 bucket; loans missing from kiva_lenders entirely are listed by
-- kiva_loans_without_lenders instead.
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_lenders_per_loan AS
WITH pairs AS (
  -- Split on ',' and trim rather than on ', ' so 'a,b' and 'a, b' read the same.
  SELECT DISTINCT lenders_row.loan_id, TRIM(name) AS lender
  FROM {dataset}.kiva_lenders AS lenders_row, UNNEST(SPLIT(lenders_row.lenders, ',')) AS name
  WHERE TRIM(name) != ''
),
per_loan AS (
  SELECT listed.loan_id, COUNT(pairs.lender) AS lenders
  FROM (SELECT DISTINCT loan_id FROM {dataset}.kiva_lenders) AS listed
  LEFT JOIN pairs ON pairs.loan_id = listed.loan_id
  GROUP BY listed.loan_id
),
buckets AS (
  SELECT lenders, COUNT(*) AS loans
  FROM per_loan
  GROUP BY lenders
)
SELECT
  lenders,
  loans,
  SAFE_DIVIDE(loans, SUM(loans) OVER ()) AS share_of_loans,
  -- Running share answers "what fraction of loans had at most N lenders" (the median is
  -- the first bucket reaching 0.5) without another query.
  SAFE_DIVIDE(
    SUM(loans) OVER (ORDER BY lenders ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
    SUM(loans) OVER ()
  ) AS cumulative_share
FROM buckets;
