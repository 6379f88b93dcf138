# The 2nd-gen Cloud Functions (main.py's entry points), built from one source archive.
#
# The archive is an allow-list: main.py, requirements.txt (the functions' runtime, no
# apache-beam, no duckdb), functions/, sluice/ and the data the code reads at run time
# (contracts/, sql/, sluice/schedule.json), less the laptop-only files of sluice/. Nothing
# else can slip in (beam/, local/, tests/, a stray .env or virtualenv);
# tests/infra/test_functions.py builds the same file list and imports every module of it
# alone, with only requirements.txt's packages importable.
locals {
  function_source_patterns = [
    "main.py",
    "requirements.txt",
    "functions/**/*.py",
    "sluice/**/*.py",
    "sluice/*.json",
    "sluice/**/*.j2",
    "contracts/*.yaml",
    "sql/*.sql",
  ]
  # Laptop-only code inside sluice/: the DuckDB adapter (the functions run on BigQuery;
  # SLUICE_WAREHOUSE=duckdb in the archive is a ConfigError, not an ImportError).
  function_source_excludes = [
    "sluice/warehouse/duckdb.py",
  ]
  function_source_files = setsubtract(
    toset(flatten([
      for pattern in local.function_source_patterns : fileset("${path.module}/..", pattern)
    ])),
    flatten([
      for pattern in local.function_source_excludes : fileset("${path.module}/..", pattern)
    ]),
  )
}

data "archive_file" "functions_source" {
  type        = "zip"
  output_path = "${path.module}/.build/functions-source.zip"

  dynamic "source" {
    for_each = local.function_source_files
    content {
      filename = source.value
      content  = file("${path.module}/../${source.value}")
    }
  }
}

# Named by content: a changed archive is a new object, which redeploys both functions.
resource "google_storage_bucket_object" "functions_source" {
  name         = "functions/source-${data.archive_file.functions_source.output_md5}.zip"
  bucket       = google_storage_bucket.artifacts.name
  source       = data.archive_file.functions_source.output_path
  content_type = "application/zip"
}

# IAM changes take a minute to reach every Google service; without the pause the first
# apply races them (the trigger's publisher role, the build account's builder role).
resource "time_sleep" "iam_propagation" {
  create_duration = "60s"

  depends_on = [
    google_project_iam_member.gcs_agent_pubsub_publisher,
    google_project_iam_member.pubsub_agent_token_creator,
    google_project_iam_member.upload_event_receiver,
    google_project_iam_member.build_run_builder,
    google_storage_bucket_iam_member.artifacts_build_reader,
  ]
}

# on_upload launches the flex template; cook's sweep (sluice/cook/sweep.py) relaunches a file
# whose pipeline died after its launch. Both launch the same way, from the same settings.
locals {
  launcher_environment = {
    SLUICE_HOME                     = "/tmp/sluice"
    SLUICE_WAREHOUSE                = "bigquery"
    SLUICE_BQ_PROJECT               = var.project_id
    SLUICE_BQ_LOCATION              = local.bq_location
    SLUICE_WAREHOUSE_DATASET        = google_bigquery_dataset.processed.dataset_id
    SLUICE_COOKED_WAREHOUSE_DATASET = google_bigquery_dataset.cooked.dataset_id
    SLUICE_LANDING_BUCKET           = google_storage_bucket.landing.name
    SLUICE_PIPELINE_BUCKET          = google_storage_bucket.pipeline.name
    SLUICE_LAUNCHER                 = "dataflow"
    SLUICE_GCP_PROJECT              = var.project_id
    SLUICE_DATAFLOW_REGION          = var.region
    SLUICE_DATAFLOW_TEMPLATE        = local.template_path
    SLUICE_DATAFLOW_SERVICE_ACCOUNT = google_service_account.worker.email
    SLUICE_DATAFLOW_MAX_WORKERS     = var.dataflow_max_workers
    SLUICE_DATAFLOW_TEMP_LOCATION   = "gs://${google_storage_bucket.pipeline.name}/temp"
  }
}

# landing bucket --(object finalize, Eventarc, at least once)--> on_upload
resource "google_cloudfunctions2_function" "on_upload" {
  name        = "${var.name_prefix}-on-upload"
  location    = var.region
  description = "Validates each file finalized in the landing bucket and launches the Dataflow flex template (or quarantines the file)."

  build_config {
    runtime         = "python311"
    entry_point     = "on_upload"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.artifacts.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    # Validation streams the file in bounded memory (SLUICE_CHUNK_BYTES per batch); 540 s is
    # the longest an event-driven function may run, enough to stream a 5 GiB file. The fast
    # lane (files up to SLUICE_FAST_LANE_MAX_BYTES, loaded here) also parses one chunk at a
    # time: its peak RSS stays far under 1 GiB and its time far under 540 s on one vCPU at
    # the default limit (README, Performance: "The fast lane"). Raising the limit far means
    # checking both again.
    available_memory                 = "1Gi"
    available_cpu                    = "1"
    timeout_seconds                  = 540
    max_instance_count               = var.upload_max_instances
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.upload.email

    environment_variables = local.launcher_environment
  }

  # Any non-2xx answer (503 while another delivery holds the claim, 500 for a transient
  # fault) makes Eventarc redeliver; main.on_upload returns 200 for everything a retry
  # cannot change.
  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.upload.email
    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.landing.name
    }
  }

  depends_on = [time_sleep.iam_propagation]
}

# The trigger's identity may invoke on_upload (Eventarc pushes with its OIDC token).
resource "google_cloud_run_service_iam_member" "on_upload_invoker" {
  location = google_cloudfunctions2_function.on_upload.location
  service  = google_cloudfunctions2_function.on_upload.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.upload.email}"
}

# Cloud Scheduler --(HTTP + OIDC)--> cook --> sweep of stuck claims, cooked tables
# The dashboard reads the warehouse with the same settings as cook.
locals {
  warehouse_reader_environment = {
    SLUICE_HOME                     = "/tmp/sluice"
    SLUICE_WAREHOUSE                = "bigquery"
    SLUICE_BQ_PROJECT               = var.project_id
    SLUICE_BQ_LOCATION              = local.bq_location
    SLUICE_WAREHOUSE_DATASET        = google_bigquery_dataset.processed.dataset_id
    SLUICE_COOKED_WAREHOUSE_DATASET = google_bigquery_dataset.cooked.dataset_id
  }
}

resource "google_cloudfunctions2_function" "cook" {
  name        = "${var.name_prefix}-cook"
  location    = var.region
  description = "Relaunches pipelines that died after launch, rebuilds every cooked table from sql/*.sql; called by Cloud Scheduler."

  build_config {
    runtime         = "python311"
    entry_point     = "cook"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.artifacts.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory = "512Mi"
    # Each summary is one BigQuery job; the whole run fits well inside the scheduler's
    # 30-minute attempt deadline.
    timeout_seconds = 900
    # One cook at a time: two overlapping runs would race CREATE OR REPLACE on each table.
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    # Cloud Scheduler in the same project counts as internal traffic.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.cook.email

    # The sweep relaunches a dead pipeline exactly as on_upload launched it.
    environment_variables = local.launcher_environment
  }

  depends_on = [time_sleep.iam_propagation]
}

# The scheduler's account may invoke cook, and no other service.
resource "google_cloud_run_service_iam_member" "cook_invoker" {
  location = google_cloudfunctions2_function.cook.location
  service  = google_cloudfunctions2_function.cook.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# The dashboard: one self-contained page of the cooked tables (main.dashboard). It runs as its
# own account, which may only read the cooked tables and the alerts. Not public: IAM allows only the named
# dashboard_viewers, who open it with `gcloud run services proxy` (an identity token).
resource "google_cloudfunctions2_function" "dashboard" {
  #checkov:skip=CKV_GCP_124:Ingress is open so named viewers reach the page through gcloud run services proxy; every request still needs an identity token with run.invoker, granted only to var.dashboard_viewers, which refuses allUsers and allAuthenticatedUsers.
  name        = "${var.name_prefix}-dashboard"
  location    = var.region
  description = "Renders the cooked tables and open alerts as one offline HTML page."

  build_config {
    runtime         = "python311"
    entry_point     = "dashboard"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.artifacts.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory                 = "512Mi"
    timeout_seconds                  = 120
    max_instance_count               = 2
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.dashboard.email
    max_instance_request_concurrency = 4

    environment_variables = local.warehouse_reader_environment
  }

  depends_on = [time_sleep.iam_propagation]
}

# Named viewers only (the variable refuses allUsers and allAuthenticatedUsers).
resource "google_cloud_run_service_iam_member" "dashboard_viewers" {
  for_each = toset(var.dashboard_viewers)
  location = google_cloudfunctions2_function.dashboard.location
  service  = google_cloudfunctions2_function.dashboard.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}
