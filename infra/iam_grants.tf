# Grants on single resources: buckets, datasets, the image repository, the worker account.
# (Function invokers are in functions.tf, next to the functions.)
#
# Storage, in one table:            landing     pipeline     artifacts
#   upload (on_upload)              read        read/write*  read (template spec)
#   worker (Dataflow)               read        read/write*  read (template spec)
#   cook   (sweep, reconciliation)  read        read/write*  read (template spec)
#   build  (function builds)        -           -            read (source archive)
#   scheduler                       -           -            -
#   var.landing_writers (people)    read/write  -            -
# roles/storage.objectUser = get, list, create, delete (overwrite) objects; no IAM, no ACLs.
# * plus roles/storage.legacyBucketReader there: bucket metadata, for Dataflow's checks.

# --- landing: read by the door and the pipeline, written only by people --------------------

resource "google_storage_bucket_iam_member" "landing_upload_reader" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_storage_bucket_iam_member" "landing_worker_reader" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.worker.email}"
}

# The cook's reconciliation lists the landing prefixes and validates a file whose event was
# lost, as the door would (sluice/cook/reconcile.py).
resource "google_storage_bucket_iam_member" "landing_cook_reader" {
  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_storage_bucket_iam_member" "landing_writers" {
  for_each = toset(var.landing_writers)

  bucket = google_storage_bucket.landing.name
  role   = "roles/storage.objectUser"
  member = each.value
}

# --- pipeline: claims, quarantine, staging, temp -----------------------------------------

resource "google_storage_bucket_iam_member" "pipeline_upload_user" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_storage_bucket_iam_member" "pipeline_worker_user" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.worker.email}"
}

# cook's sweep lists and reads the claims and moves a stuck one on (compare-and-swap writes).
resource "google_storage_bucket_iam_member" "pipeline_cook_user" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.cook.email}"
}

# Bucket metadata (storage.buckets.get): Dataflow and the Beam SDK look up the bucket of the
# temp and staging locations before they use them; objectUser covers objects only.
resource "google_storage_bucket_iam_member" "pipeline_upload_bucket_reader" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.legacyBucketReader"
  member = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_storage_bucket_iam_member" "pipeline_worker_bucket_reader" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.legacyBucketReader"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "pipeline_cook_bucket_reader" {
  bucket = google_storage_bucket.pipeline.name
  role   = "roles/storage.legacyBucketReader"
  member = "serviceAccount:${google_service_account.cook.email}"
}

# --- artifacts: read-only for every runtime identity -------------------------------------

resource "google_storage_bucket_iam_member" "artifacts_upload_reader" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_storage_bucket_iam_member" "artifacts_worker_reader" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "artifacts_cook_reader" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_storage_bucket_iam_member" "artifacts_build_reader" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# --- BigQuery datasets -------------------------------------------------------------------
# dataEditor on a dataset: create tables in it (ensure_tables), read, insert, delete rows.

# on_upload writes a rejected file's ingestion-log row (and ensures the tables first), and
# loads a small file itself (the fast lane, sluice/ingest/fast_lane.py): the same replacing
# transaction as the pipeline's, through the staging dataset.
resource "google_bigquery_dataset_iam_member" "processed_upload_editor" {
  dataset_id = google_bigquery_dataset.processed.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.upload.email}"
}

# The pipeline's replacing transaction: delete a source's rows, insert the staged ones.
resource "google_bigquery_dataset_iam_member" "processed_worker_editor" {
  dataset_id = google_bigquery_dataset.processed.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_bigquery_dataset_iam_member" "staging_upload_editor" {
  dataset_id = google_bigquery_dataset.staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_bigquery_dataset_iam_member" "staging_worker_editor" {
  dataset_id = google_bigquery_dataset.staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

# Test files: on_upload logs their rejections and loads small ones, the pipeline loads the
# rest (never production).
resource "google_bigquery_dataset_iam_member" "test_upload_editor" {
  dataset_id = google_bigquery_dataset.test.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.upload.email}"
}

# cook's sweep reads a test file's log row, and logs it rejected when its pipeline keeps dying.
resource "google_bigquery_dataset_iam_member" "test_cook_editor" {
  dataset_id = google_bigquery_dataset.test.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_bigquery_dataset_iam_member" "test_worker_editor" {
  dataset_id = google_bigquery_dataset.test.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_bigquery_dataset_iam_member" "test_staging_upload_editor" {
  dataset_id = google_bigquery_dataset.test_staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_bigquery_dataset_iam_member" "test_staging_worker_editor" {
  dataset_id = google_bigquery_dataset.test_staging.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

# cook reads the processed tables, and first creates any that no file has made yet (empty),
# so that a summary of a dataset that has not arrived is an empty table, not an error.
resource "google_bigquery_dataset_iam_member" "processed_cook_editor" {
  dataset_id = google_bigquery_dataset.processed.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_bigquery_dataset_iam_member" "cooked_cook_editor" {
  dataset_id = google_bigquery_dataset.cooked.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.cook.email}"
}

# The dashboard only reads: the cooked tables, and the open alerts, which live in the
# processed dataset's alerts table (made by cook's first check, so not a Terraform table a
# grant could name).
resource "google_bigquery_dataset_iam_member" "cooked_dashboard_viewer" {
  dataset_id = google_bigquery_dataset.cooked.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.dashboard.email}"
}

resource "google_bigquery_dataset_iam_member" "processed_dashboard_viewer" {
  dataset_id = google_bigquery_dataset.processed.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.dashboard.email}"
}

# --- the flex template image -------------------------------------------------------------

resource "google_artifact_registry_repository_iam_member" "pipeline_worker_reader" {
  location   = google_artifact_registry_repository.pipeline.location
  repository = google_artifact_registry_repository.pipeline.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${google_service_account.worker.email}"
}

# --- on_upload launches jobs, and cook's sweep relaunches them, as the worker account -----

resource "google_service_account_iam_member" "upload_acts_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_service_account_iam_member" "cook_acts_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.cook.email}"
}
