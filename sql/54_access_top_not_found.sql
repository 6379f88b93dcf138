-- The 100 paths most often answered 404 Not Found: broken links, removed pages, scanners
-- probing for software we do not run. share_of_not_found is the path's part of all 404s;
-- last_seen_at tells a link fixed last week from one still broken. Ties go to the path
-- that sorts first. A request line that was not METHOD TARGET PROTOCOL has no path and is
-- answered 400, not 404; should one be logged as 404 it is the NULL row.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 85
--   title: Top 404 paths
--   name: web-top-not-found
--   kind: table
--   columns: [path, requests: 404s, last_seen_at: last seen]
--   order: path_rank
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.access_top_not_found AS
WITH paths AS (
  SELECT
    path,
    COUNT(*) AS requests,
    MAX(`timestamp`) AS last_seen_at
  FROM {dataset}.access_logs
  WHERE status = 404
  GROUP BY path
),
ranked AS (
  SELECT
    path,
    requests,
    SAFE_DIVIDE(requests, SUM(requests) OVER ()) AS share_of_not_found,
    last_seen_at,
    -- `path IS NULL` before `path`: the NULL path ranks last among equals on both warehouses
    -- (by default BigQuery sorts NULL first, DuckDB last).
    ROW_NUMBER() OVER (ORDER BY requests DESC, path IS NULL, path) AS path_rank
  FROM paths
)
SELECT path_rank, path, requests, share_of_not_found, last_seen_at
FROM ranked
WHERE path_rank <= 100;
