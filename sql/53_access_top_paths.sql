-- The 100 most requested paths of the access logs, with their bytes and share of requests.
-- Ties go to the path that sorts first (byte order), so the cut-off is the same on every run.
-- The path is the target before its '?', as logged: /a?x=1 and /a?y=2 are one path. The
-- NULL path row is every request line that was not METHOD TARGET PROTOCOL (TLS handshakes,
-- scanners' junk) taken together; it ranks after any path with as many requests.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 70
--   title: Top paths
--   name: web-top-paths
--   kind: table
--   wide: true
--   columns: [path_rank: rank, path, requests, bytes_sent: bytes]
--   order: path_rank
--   limit: 15
CREATE OR REPLACE TABLE {cooked_dataset}.access_top_paths AS
WITH paths AS (
  SELECT
    path,
    COUNT(*) AS requests,
    -- Summed wide, as in access_requests_per_hour.
    SUM(CAST(bytes_sent AS BIGNUMERIC)) AS bytes_sent
  FROM {dataset}.access_logs
  GROUP BY path
),
ranked AS (
  SELECT
    path,
    requests,
    SAFE_DIVIDE(requests, SUM(requests) OVER ()) AS share_of_requests,
    bytes_sent,
    -- `path IS NULL` before `path`: the NULL path ranks last among equals on both warehouses
    -- (by default BigQuery sorts NULL first, DuckDB last).
    ROW_NUMBER() OVER (ORDER BY requests DESC, path IS NULL, path) AS path_rank
  FROM paths
)
SELECT path_rank, path, requests, share_of_requests, bytes_sent
FROM ranked
WHERE path_rank <= 100;
