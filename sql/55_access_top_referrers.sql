-- The 100 referrers that sent the most requests, as logged (full URL, not only the site).
-- Requests without a referrer ('-': typed addresses, bookmarks, most bots) are excluded,
-- not labelled: a label would be a string some real referrer could also be. They are the
-- day's requests minus the referred ones. share_of_referred is the referrer's part of the
-- requests that had one. Ties go to the referrer that sorts first.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 90
--   title: Top referrers
--   name: web-top-referrers
--   kind: table
--   columns: [referrer, requests, unique_visitors: visitors]
--   order: referrer_rank
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.access_top_referrers AS
WITH visits AS (
  -- One row per referrer and visitor (client_ip, user_agent, day, as GoAccess counts them).
  SELECT referrer, client_ip, user_agent, DATE(`timestamp`) AS day, COUNT(*) AS requests
  FROM {dataset}.access_logs
  WHERE referrer IS NOT NULL
  GROUP BY referrer, client_ip, user_agent, day
),
referrers AS (
  SELECT
    referrer,
    -- CAST: DuckDB sums BIGINT counts as HUGEINT; INT64 on both warehouses.
    CAST(SUM(requests) AS INT64) AS requests,
    COUNT(*) AS unique_visitors
  FROM visits
  GROUP BY referrer
),
ranked AS (
  SELECT
    referrer,
    requests,
    SAFE_DIVIDE(requests, SUM(requests) OVER ()) AS share_of_referred,
    unique_visitors,
    ROW_NUMBER() OVER (ORDER BY requests DESC, referrer) AS referrer_rank
  FROM referrers
)
SELECT referrer_rank, referrer, requests, share_of_referred, unique_visitors
FROM ranked
WHERE referrer_rank <= 100;
