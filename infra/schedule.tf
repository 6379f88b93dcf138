# The cook and flush schedules, read from sluice/schedule.json: the same file sluice/settings.py reads
# for the local stack's loop, so the laptop and Cloud Scheduler cook on one schedule.
#
# Cloud Scheduler takes cron, the file holds seconds. A cron fires at exactly that interval
# only when the interval divides the hour (60-3540 s) or the day (whole hours); anything else
# would drift at each hour or day boundary, so scheduler.tf refuses it (cook_cron_exact).
# This file holds locals only: tests/infra/ evaluates it with `terraform console`.

locals {
  schedule              = jsondecode(file("${path.module}/../sluice/schedule.json"))
  cook_interval_seconds = local.schedule.cook_interval_seconds
  cook_interval_minutes = local.cook_interval_seconds / 60
  cook_interval_hours   = local.cook_interval_seconds / 3600

  cook_cron = (
    local.cook_interval_seconds < 3600 ? "*/${local.cook_interval_minutes} * * * *" :
    local.cook_interval_seconds < 86400 ? "0 */${local.cook_interval_hours} * * *" :
    "0 0 * * *"
  )

  flush_interval_seconds = local.schedule.flush_interval_seconds
  flush_interval_minutes = local.flush_interval_seconds / 60
  flush_cron             = "*/${local.flush_interval_minutes} * * * *"
  flush_cron_exact = (
    local.flush_interval_seconds >= 60 && local.flush_interval_seconds < 3600 &&
    local.flush_interval_seconds % 60 == 0 && 60 % max(local.flush_interval_minutes, 1) == 0
  )

  # max(..., 1): Terraform evaluates both sides of || and &&, and 60 % 0 is an error.
  cook_cron_exact = (
    local.cook_interval_seconds == 0 ||
    (local.cook_interval_seconds >= 60 && local.cook_interval_seconds < 3600 &&
    local.cook_interval_seconds % 60 == 0 && 60 % max(local.cook_interval_minutes, 1) == 0) ||
    (local.cook_interval_seconds >= 3600 && local.cook_interval_seconds <= 86400 &&
    local.cook_interval_seconds % 3600 == 0 && 24 % max(local.cook_interval_hours, 1) == 0)
  )
}
