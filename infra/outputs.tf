# What a user needs after `terraform apply`: where to drop files, how to build the template,
# how to cook now. `terraform output -raw <name>` prints one without quotes.

output "landing_bucket" {
  description = "Drop CSV files here, under incoming/<dataset>/ (the contract's landing_prefix)."
  value       = google_storage_bucket.landing.name
}

output "pipeline_bucket" {
  description = "Everything Sluice writes: claims/, quarantine/, staging/, temp/, table-slots/."
  value       = google_storage_bucket.pipeline.name
}

output "artifacts_bucket" {
  description = "Function source archives and the flex template spec."
  value       = google_storage_bucket.artifacts.name
}

output "datasets" {
  description = "BigQuery datasets: processed (tables created by the code), load staging, cooked summaries, test scratch."
  value = {
    processed = google_bigquery_dataset.processed.dataset_id
    staging   = google_bigquery_dataset.staging.dataset_id
    cooked    = google_bigquery_dataset.cooked.dataset_id
    test      = google_bigquery_dataset.test.dataset_id
  }
}

output "on_upload_url" {
  description = "on_upload's URL (internal ingress: only its Eventarc trigger calls it)."
  value       = google_cloudfunctions2_function.on_upload.service_config[0].uri
}

output "dashboard_open_command" {
  description = "Open the dashboard on localhost:8080 as yourself (you must be in dashboard_viewers)."
  value       = "gcloud run services proxy ${google_cloudfunctions2_function.dashboard.service_config[0].service} --project ${var.project_id} --region ${var.region} --port 8080"
}

output "cook_url" {
  description = "cook's URL (internal ingress: Cloud Scheduler calls it with an OIDC token)."
  value       = google_cloudfunctions2_function.cook.service_config[0].uri
}

output "cook_schedule" {
  description = "Cloud Scheduler cron of the cook job, from sluice/schedule.json (null: no job)."
  value       = one(google_cloud_scheduler_job.cook[*].schedule)
}

output "template_path" {
  description = "Where the flex template spec must be (SLUICE_DATAFLOW_TEMPLATE of on_upload)."
  value       = local.template_path
}

output "image_repository" {
  description = "Artifact Registry path for the flex template image."
  value       = local.image_repository
}

output "service_accounts" {
  description = "The identities Sluice runs as."
  value = {
    upload    = google_service_account.upload.email
    worker    = google_service_account.worker.email
    cook      = google_service_account.cook.email
    scheduler = google_service_account.scheduler.email
    build     = google_service_account.build.email
  }
}

output "build_template_command" {
  description = "Step 2 after apply: build the flex template image and spec (Cloud Build; needs only gcloud)."
  value       = "beam/build_template.sh --project ${var.project_id} --region ${var.region} --repository ${google_artifact_registry_repository.pipeline.repository_id} --template-path ${local.template_path}"
}

output "drop_first_file" {
  description = "Step 3: drop a sample file into the landing bucket (from the repository root)."
  value       = "gcloud storage cp data/samples/kiva_loans.csv gs://${google_storage_bucket.landing.name}/incoming/kiva_loans/kiva_loans.csv"
}

output "drop_first_file_gsutil" {
  description = "The same with gsutil."
  value       = "gsutil cp data/samples/kiva_loans.csv gs://${google_storage_bucket.landing.name}/incoming/kiva_loans/kiva_loans.csv"
}

output "cook_now" {
  description = "Run the cook job now instead of waiting for the schedule."
  value       = "gcloud scheduler jobs run ${var.name_prefix}-cook --location=${var.region} --project=${var.project_id}"
}
