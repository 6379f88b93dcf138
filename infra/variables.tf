# Inputs. Only project_id and region are required; every other default matches the code's
# own defaults (sluice/settings.py), which tests/infra/ checks.

variable "project_id" {
  description = "Google Cloud project to deploy into (it must exist, with billing enabled)."
  type        = string
}

variable "region" {
  description = "Region of the buckets, functions, Eventarc trigger, Dataflow jobs and Artifact Registry (e.g. europe-west1). The landing bucket and its trigger must share it."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name (buckets add the project id in front, to be globally unique)."
  type        = string
  default     = "sluice"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: expected 3-20 characters of [a-z0-9-], starting with a letter and ending with a letter or digit (service account ids allow 30 characters and the longest suffix is -scheduler)."
  }
}

variable "bq_location" {
  description = "BigQuery location of the datasets and jobs; null means the region, which keeps the staged files in the pipeline bucket and the datasets in one place (load jobs need that)."
  type        = string
  default     = null
}

variable "warehouse_dataset" {
  description = "Dataset of processed tables, dead letters and the ingestion log (SLUICE_WAREHOUSE_DATASET)."
  type        = string
  default     = "sluice"
}

variable "cooked_warehouse_dataset" {
  description = "Dataset of the cooked summary tables (SLUICE_COOKED_WAREHOUSE_DATASET)."
  type        = string
  default     = "sluice_cooked"
}

variable "test_warehouse_dataset" {
  description = "Scratch dataset for trial loads and integration tests against real BigQuery (point SLUICE_WAREHOUSE_DATASET at it); its tables expire."
  type        = string
  default     = "sluice_test"
}

variable "test_table_expiration_days" {
  description = "Days a table in the test dataset lives."
  type        = number
  default     = 7
}

variable "dataflow_max_workers" {
  description = "Upper bound of Dataflow workers per ingestion job (SLUICE_DATAFLOW_MAX_WORKERS)."
  type        = number
  default     = 10
}

variable "upload_max_instances" {
  description = "Most on_upload instances at once (each validates one file at a time)."
  type        = number
  default     = 10
}

variable "raw_nearline_after_days" {
  description = "Landing (raw) objects move to NEARLINE after this many days."
  type        = number
  default     = 30
}

variable "raw_coldline_after_days" {
  description = "Landing (raw) objects move to COLDLINE after this many days."
  type        = number
  default     = 365
}

variable "raw_delete_after_days" {
  description = "Delete landing (raw) objects this many days after upload; 0 keeps them forever (the default: raw files are the system of record that `sluice replay` rebuilds tables from)."
  type        = number
  default     = 0
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted landing object's old generation is kept."
  type        = number
  default     = 30
}

variable "scratch_retention_days" {
  description = "Days objects under staging/ and temp/ of the pipeline bucket live (a successful load removes its own staging at once; this only sweeps abandoned attempts)."
  type        = number
  default     = 7
}

variable "claim_retention_days" {
  description = "Days claim objects live; must exceed SLUICE_MAX_EVENT_AGE_SECONDS (1 day), after which no redelivery can need a claim."
  type        = number
  default     = 30

  validation {
    condition     = var.claim_retention_days >= 2
    error_message = "claim_retention_days: expected at least 2 days (events up to a day old are still acted on), found less."
  }
}

variable "quarantine_retention_days" {
  description = "Days a rejected file's quarantined copy and its reason.json live."
  type        = number
  default     = 90
}

variable "landing_writers" {
  description = "Principals that may upload into the landing bucket (e.g. [\"user:ana@example.com\", \"group:loaders@example.com\"]); project owners and editors can already."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.landing_writers : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "landing_writers: expected named principals, found allUsers or allAuthenticatedUsers (the landing bucket is never public)."
  }
}

variable "dashboard_viewers" {
  description = "Principals who may open the dashboard (e.g. [\"group:analysts@example.com\"]); it is never public."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.dashboard_viewers : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "dashboard_viewers: expected named principals, found allUsers or allAuthenticatedUsers (the dashboard is never public)."
  }
}

variable "alert_email" {
  description = "Email address notified when the missing-data or dead-letter alert fires; empty: the alert policy exists without a notification channel."
  type        = string
  default     = ""
}

variable "allow_destroy_data" {
  description = "Let `terraform destroy` delete buckets and datasets that still hold data. Leave false except to tear a project down."
  type        = bool
  default     = false
}

variable "grant_legacy_pubsub_token_creator" {
  description = "Grant the Pub/Sub service agent roles/iam.serviceAccountTokenCreator, which Eventarc needs only in projects whose Pub/Sub service agent dates from before 8 April 2021."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Extra labels for every resource."
  type        = map(string)
  default     = {}
}

# Derived names, in one place so the README and outputs agree with the resources.
locals {
  labels           = merge({ app = "sluice", managed-by = "terraform" }, var.labels)
  bq_location      = coalesce(var.bq_location, var.region)
  landing_bucket   = "${var.project_id}-${var.name_prefix}-landing"
  pipeline_bucket  = "${var.project_id}-${var.name_prefix}-pipeline"
  artifacts_bucket = "${var.project_id}-${var.name_prefix}-artifacts"
  staging_dataset  = "${var.warehouse_dataset}_staging"
  template_path    = "gs://${local.artifacts_bucket}/templates/sluice-pipeline.json"
  image_repository = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.pipeline.repository_id}"
}
