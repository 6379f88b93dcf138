-- The 100 most active lenders, by the number of distinct loans they lent to.
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_top_lenders AS
WITH pairs AS (
  SELECT DISTINCT lenders_row.loan_id, TRIM(name) AS lender
  FROM {dataset}.kiva_lenders AS lenders_row, UNNEST(SPLIT(lenders_row.lenders, ',')) AS name
  WHERE TRIM(name) != ''
),
ranked AS (
  SELECT
    lender,
    COUNT(*) AS loans,
    -- Ties broken by name so the top 100 is the same on every run and on both warehouses.
    ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, lender) AS lender_rank
  FROM pairs
  GROUP BY lender
)
-- A plain WHERE, not QUALIFY: BigQuery has refused QUALIFY without WHERE/GROUP BY/HAVING.
SELECT lender_rank, lender, loans
FROM ranked
WHERE lender_rank <= 100;
