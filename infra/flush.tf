# Cloud Scheduler --(HTTP + OIDC, every minute)--> flush --> one Dataflow job per batch due
# (sluice/ingest/batches.py). It launches what on_upload queued, so it runs as on_upload's
# account, with on_upload's settings.
resource "google_cloudfunctions2_function" "flush" {
  name        = "${var.name_prefix}-flush"
  location    = var.region
  description = "Launches one Dataflow job per batch of queued files that is full or old enough, and finishes batches a crash or the job quota left open; called by Cloud Scheduler."

  build_config {
    runtime         = "python311"
    entry_point     = "flush"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.artifacts.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    # A listing per dataset queue and a few small objects per batch: light work.
    available_memory = "256Mi"
    timeout_seconds  = 300
    # One scheduled flush at a time (on_upload's and the cook's may overlap it: every step
    # is idempotent, and a batch's claims decide who launches it).
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.upload.email

    environment_variables = local.launcher_environment
  }

  depends_on = [time_sleep.iam_propagation]
}

# The scheduler's account may invoke flush.
resource "google_cloud_run_service_iam_member" "flush_invoker" {
  location = google_cloudfunctions2_function.flush.location
  service  = google_cloudfunctions2_function.flush.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Cloud Scheduler --(POST + OIDC token as the scheduler account)--> flush, every minute by
# default (flush_interval_seconds in sluice/schedule.json): a batch that has not filled waits
# at most SLUICE_BATCH_MAX_AGE_SECONDS plus one interval.
resource "google_cloud_scheduler_job" "flush" {
  name        = "${var.name_prefix}-flush"
  region      = var.region
  description = "Calls the flush function every ${local.flush_interval_seconds} s (sluice/schedule.json)."
  schedule    = local.flush_cron
  time_zone   = "Etc/UTC"

  attempt_deadline = "320s"

  # The next tick retries anyway: a failed flush leaves its batches open for it.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.flush.service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.flush.service_config[0].uri
    }
  }

  lifecycle {
    precondition {
      condition     = local.flush_cron_exact
      error_message = "sluice/schedule.json: expected flush_interval_seconds of 60-3540 dividing an hour, found ${local.flush_interval_seconds}."
    }
  }

  depends_on = [google_cloud_run_service_iam_member.flush_invoker]
}
