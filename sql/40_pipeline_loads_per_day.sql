-- Pipeline health per dataset and UTC day (of finished_at): files loaded and rejected,
-- rows in, loaded and dead-lettered, and the dead-letter rate. The ingestion log keeps one
-- row per source generation (a reload replaces it), so a re-run is not counted twice.
-- dashboard:
--   section: Pipeline health
--   position: 230
--   title: Loads per dataset and day
--   name: loads
--   kind: table
--   wide: true
--   columns: [day, dataset, files_loaded, files_rejected, rows_in, rows_loaded, rows_dead,
--     dead_letter_rate]
--   order: day DESC, dataset
--   limit: 90
CREATE OR REPLACE TABLE {cooked_dataset}.pipeline_loads_per_day AS
SELECT
  dataset,
  DATE(finished_at) AS day,
  COUNTIF(status = 'loaded') AS files_loaded,
  COUNTIF(status = 'rejected') AS files_rejected,
  COUNTIF(status = 'superseded') AS files_superseded,
  -- IFNULL: a day with only rejected files has no rows, which is 0, not unknown.
  IFNULL(CAST(SUM(rows_in) AS INT64), 0) AS rows_in,
  IFNULL(CAST(SUM(rows_loaded) AS INT64), 0) AS rows_loaded,
  IFNULL(CAST(SUM(rows_dead) AS INT64), 0) AS rows_dead,
  -- Rate of rows, not mean of per-file rates: a 10-row file must not outweigh a 1 M-row one.
  SAFE_DIVIDE(SUM(rows_dead), SUM(rows_in)) AS dead_letter_rate
FROM {dataset}.ingestion_log
GROUP BY dataset, day;
