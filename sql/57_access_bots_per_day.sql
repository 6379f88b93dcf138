-- Bots vs humans per UTC day of access-log traffic, from is_bot (enriched at load from the
-- user agent: crawlers, command-line tools and HTTP libraries, agents no rule knows, and
-- requests without a user agent are bots). unclassified_requests are rows loaded before
-- the contract had is_bot (NULL): neither, so the shares of a day add up to 1 only with
-- them.
-- dashboard:
--   section: Web traffic (access logs)
--   position: 80
--   title: Humans and bots per day
--   name: web-bots-per-day
--   kind: line
--   width: 620
--   x: day
--   x_format: day
--   series: [{name: humans, column: human_requests}, {name: bots, column: bot_requests}]
--   data: {web-day: day}
--   legend: [human requests, bot requests]
--   order: day
CREATE OR REPLACE TABLE {cooked_dataset}.access_bots_per_day AS
SELECT
  DATE(`timestamp`) AS day,
  COUNT(*) AS requests,
  COUNTIF(NOT is_bot) AS human_requests,
  COUNTIF(is_bot) AS bot_requests,
  COUNTIF(is_bot IS NULL) AS unclassified_requests,
  SAFE_DIVIDE(COUNTIF(NOT is_bot), COUNT(*)) AS human_share,
  SAFE_DIVIDE(COUNTIF(is_bot), COUNT(*)) AS bot_share
FROM {dataset}.access_logs
GROUP BY day;
