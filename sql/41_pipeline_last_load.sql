-- Freshness per dataset: the last successful load (and its file), the last rejection, and
-- how many files were loaded, rejected or superseded.
-- The freshness alert compares last_loaded_at with the contract's max_hours_without_file
-- at check time; the age is not stored here so that cooking stays deterministic. A
-- dataset that never appears in the ingestion log has no row: the alert treats a contract
-- without a row as never loaded.
-- dashboard:
--   - section: Pipeline health
--     position: 210
--     title: Open alerts
--     kind: alerts
--   - section: Pipeline health
--     position: 220
--     title: Last load per dataset
--     name: last-load
--     kind: table
--     wide: true
--     columns:
--       - dataset
--       - last_loaded_at: last_loaded
--       - last_rows_loaded: rows
--       - files_loaded
--       - files_rejected
--       - last_rejected_at: last_rejected
--       - last_loaded_uri: file
--     order: dataset
CREATE OR REPLACE TABLE {cooked_dataset}.pipeline_last_load AS
WITH loaded AS (
  SELECT
    dataset,
    finished_at,
    source_uri,
    rows_loaded,
    -- Latest first; the uri breaks a tie so the answer does not depend on scan order.
    ROW_NUMBER() OVER (PARTITION BY dataset ORDER BY finished_at DESC, source_uri DESC)
      AS recency
  FROM {dataset}.ingestion_log
  WHERE status = 'loaded'
),
per_dataset AS (
  SELECT
    dataset,
    COUNTIF(status = 'loaded') AS files_loaded,
    COUNTIF(status = 'rejected') AS files_rejected,
    -- Overtaken by a newer generation or snapshot: done, not failed.
    COUNTIF(status = 'superseded') AS files_superseded,
    MAX(IF(status = 'rejected', finished_at, NULL)) AS last_rejected_at
  FROM {dataset}.ingestion_log
  GROUP BY dataset
)
SELECT
  per_dataset.dataset,
  loaded.finished_at AS last_loaded_at,
  loaded.source_uri AS last_loaded_uri,
  loaded.rows_loaded AS last_rows_loaded,
  per_dataset.files_loaded,
  per_dataset.files_rejected,
  per_dataset.files_superseded,
  per_dataset.last_rejected_at
FROM per_dataset
LEFT JOIN loaded ON loaded.dataset = per_dataset.dataset AND loaded.recency = 1;
