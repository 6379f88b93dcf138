# Cloud Scheduler --(POST + OIDC token as the scheduler account)--> cook
# The schedule comes from sluice/schedule.json (schedule.tf); 0 there means no job at all, as
# it means no loop in the local stack.

resource "google_cloud_scheduler_job" "cook" {
  count = local.cook_interval_seconds > 0 ? 1 : 0

  name        = "${var.name_prefix}-cook"
  region      = var.region
  description = "Calls the cook function every ${local.cook_interval_seconds} s (sluice/schedule.json)."
  schedule    = local.cook_cron
  time_zone   = "Etc/UTC"

  # The longest an HTTP target may take; cook's own timeout is 900 s.
  attempt_deadline = "1800s"

  # cook answers 503 for faults a retry can cure and 500 for ones a person must fix; either
  # way a couple of spaced retries cost little, and the next scheduled run comes anyway.
  retry_config {
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.cook.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.cook.service_config[0].uri
    }
  }

  lifecycle {
    precondition {
      condition     = local.cook_cron_exact
      error_message = "sluice/schedule.json: expected cook_interval_seconds of 60-3540 dividing an hour, or whole hours dividing a day (up to 86400), found ${local.cook_interval_seconds}."
    }
  }

  depends_on = [google_cloud_run_service_iam_member.cook_invoker]
}
