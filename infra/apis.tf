# The Google APIs the deployment uses. Left enabled on destroy: other workloads in the project
# may use them, and disabling an API can delete data of other resources.
locals {
  services = toset([
    "artifactregistry.googleapis.com",     # the flex template image
    "bigquery.googleapis.com",             # the warehouse
    "cloudbuild.googleapis.com",           # builds the functions (and the template image)
    "cloudfunctions.googleapis.com",       # on_upload, cook
    "cloudresourcemanager.googleapis.com", # project IAM bindings
    "cloudscheduler.googleapis.com",       # the cook schedule
    "compute.googleapis.com",              # Dataflow workers are Compute Engine VMs
    "dataflow.googleapis.com",             # the pipeline
    "eventarc.googleapis.com",             # object finalize -> on_upload
    "iam.googleapis.com",                  # service accounts, custom role
    "logging.googleapis.com",              # log-based metric
    "monitoring.googleapis.com",           # alert policy
    "pubsub.googleapis.com",               # Eventarc's transport for Cloud Storage events
    "run.googleapis.com",                  # 2nd-gen functions run on Cloud Run
    "storage.googleapis.com",              # buckets
  ])
}

resource "google_project_service" "apis" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
