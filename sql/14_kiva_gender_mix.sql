-- Share of loans by the borrower group's gender mix. borrower_genders lists one entry per
-- borrower joined with ', ' (e.g. 'female, female, male'); entries are counted, not parsed
-- by position, so stray spaces or case do not matter.
CREATE OR REPLACE TABLE {cooked_dataset}.kiva_gender_mix AS
WITH counted AS (
  SELECT
    (SELECT COUNTIF(LOWER(TRIM(entry)) = 'female')
     FROM UNNEST(SPLIT(borrower_genders, ',')) AS entry) AS women,
    (SELECT COUNTIF(LOWER(TRIM(entry)) = 'male')
     FROM UNNEST(SPLIT(borrower_genders, ',')) AS entry) AS men
  FROM {dataset}.kiva_loans
),
classified AS (
  SELECT
    CASE
      -- A NULL list gives NULL counts; no recognisable entry at all is 'unknown' too.
      WHEN IFNULL(women, 0) + IFNULL(men, 0) = 0 THEN 'unknown'
      WHEN women > 0 AND men > 0 THEN 'mixed'
      WHEN women = 1 THEN 'single female'
      WHEN men = 1 THEN 'single male'
      WHEN women > 1 THEN 'several women'
      ELSE 'several men'
    END AS gender_mix
  FROM counted
)
SELECT
  gender_mix,
  COUNT(*) AS loans,
  SAFE_DIVIDE(COUNT(*), SUM(COUNT(*)) OVER ()) AS share_of_loans
FROM classified
GROUP BY gender_mix;
