# Identities and their project-level roles. Grants on single buckets, datasets, the image
# repository and the functions are in iam_grants.tf and functions.tf.
#
# Who runs as what:
#   upload     on_upload, and the Eventarc trigger that invokes it
#   worker     the Dataflow flex-template launcher VM and the workers
#   cook       the cook function, whose sweep relaunches pipelines that died
#   dashboard  the dashboard function: reads the cooked tables and the alerts, writes nothing
#   scheduler  Cloud Scheduler's OIDC identity when it calls cook
#   build      Cloud Build building the functions' containers (deploy time only)
#
# No runtime identity holds a storage role at project level: bucket access is granted bucket
# by bucket, and the pipeline bucket is the only one any of them can write.

resource "google_service_account" "upload" {
  account_id   = "${var.name_prefix}-upload"
  display_name = "Sluice on_upload"
  description  = "Runs on_upload and is the Eventarc trigger's identity: reads landing, writes the pipeline bucket, launches the flex template as the worker account."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "worker" {
  account_id   = "${var.name_prefix}-worker"
  display_name = "Sluice Dataflow worker"
  description  = "Dataflow launcher and workers: read landing, stage in the pipeline bucket, load BigQuery."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "cook" {
  account_id   = "${var.name_prefix}-cook"
  display_name = "Sluice cook"
  description  = "Runs cook: relaunches pipelines that died as the worker account, reads processed tables, rebuilds cooked tables."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "dashboard" {
  account_id   = "${var.name_prefix}-dashboard"
  display_name = "Sluice dashboard"
  description  = "Runs the dashboard: reads the cooked tables and the alerts table; writes nothing, launches nothing."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Sluice scheduler"
  description  = "Cloud Scheduler signs its OIDC token as this account to call cook; it may invoke cook and nothing else."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "Sluice function builds"
  description  = "Cloud Build runs as this account when it builds the functions' containers from the source archive."

  depends_on = [google_project_service.apis]
}

# BigQueryWarehouse.ensure_tables calls create_dataset(exists_ok=True) and cook runs
# CREATE SCHEMA IF NOT EXISTS; BigQuery checks bigquery.datasets.create before it looks for
# the dataset, even when it exists. This role holds that one permission (the datasets
# themselves are created above, by Terraform).
resource "google_project_iam_custom_role" "dataset_ensurer" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_dataset_ensurer"
  title       = "Sluice dataset ensurer"
  description = "bigquery.datasets.create only: lets create_dataset(exists_ok=True) find an existing dataset."
  permissions = ["bigquery.datasets.create"]

  depends_on = [google_project_service.apis]
}

# --- on_upload ---------------------------------------------------------------------------

# flexTemplates.launch (dataflow.jobs.create). Dataflow Admin would add project-wide object
# create; bucket access is granted per bucket instead.
resource "google_project_iam_member" "upload_dataflow_developer" {
  #checkov:skip=CKV_GCP_49:Launching the flex template is on_upload's job. A launched job can run only as an account on_upload may act as, and it may act as exactly one: the worker account (iam_grants.tf, upload_acts_as_worker), never project-wide.
  project = var.project_id
  role    = "roles/dataflow.developer"
  member  = "serviceAccount:${google_service_account.upload.email}"
}

# Job creation reads machine types and networks (compute.machineTypes.get, the compute part
# of Dataflow Admin).
resource "google_project_iam_member" "upload_compute_viewer" {
  project = var.project_id
  role    = "roles/compute.viewer"
  member  = "serviceAccount:${google_service_account.upload.email}"
}

# A rejected file's ingestion-log row is a BigQuery query job; a fast-lane load runs load jobs
# and the replacing transaction.
resource "google_project_iam_member" "upload_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.upload.email}"
}

resource "google_project_iam_member" "upload_dataset_ensurer" {
  project = var.project_id
  role    = google_project_iam_custom_role.dataset_ensurer.name
  member  = "serviceAccount:${google_service_account.upload.email}"
}

# The Eventarc trigger runs as the upload account: it receives the events it delivers.
resource "google_project_iam_member" "upload_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.upload.email}"
}

# --- Dataflow worker ---------------------------------------------------------------------

resource "google_project_iam_member" "worker_dataflow_worker" {
  project = var.project_id
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Google's flex-template guide gives the launcher VM's account Viewer; compute.viewer is the
# part of it the launcher needs (machine types, networks), without the project-wide rest.
resource "google_project_iam_member" "worker_compute_viewer" {
  project = var.project_id
  role    = "roles/compute.viewer"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# Load jobs into <dataset>_staging and the replacing transaction are BigQuery jobs.
resource "google_project_iam_member" "worker_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_project_iam_member" "worker_dataset_ensurer" {
  project = var.project_id
  role    = google_project_iam_custom_role.dataset_ensurer.name
  member  = "serviceAccount:${google_service_account.worker.email}"
}

# --- dashboard ---------------------------------------------------------------------------

# Queries run as jobs in the project; what they may read is granted dataset by dataset
# (iam_grants.tf): the cooked tables, and the processed dataset for its alerts table.
resource "google_project_iam_member" "dashboard_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.dashboard.email}"
}

# --- cook ----------------------------------------------------------------------------------

resource "google_project_iam_member" "cook_bigquery_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_project_iam_member" "cook_dataset_ensurer" {
  project = var.project_id
  role    = google_project_iam_custom_role.dataset_ensurer.name
  member  = "serviceAccount:${google_service_account.cook.email}"
}

# cook's sweep (sluice/cook/sweep.py) asks Dataflow whether a launched job still runs
# (jobs.get, jobs.list) and relaunches one that died (flexTemplates.launch), as on_upload does.
resource "google_project_iam_member" "cook_dataflow_developer" {
  #checkov:skip=CKV_GCP_49:Relaunching a flex template whose job died is the sweep's job. A launched job can run only as an account cook may act as, and it may act as exactly one: the worker account (iam_grants.tf, cook_acts_as_worker), never project-wide.
  project = var.project_id
  role    = "roles/dataflow.developer"
  member  = "serviceAccount:${google_service_account.cook.email}"
}

resource "google_project_iam_member" "cook_compute_viewer" {
  project = var.project_id
  role    = "roles/compute.viewer"
  member  = "serviceAccount:${google_service_account.cook.email}"
}

# --- function builds ---------------------------------------------------------------------

# Google's role for the account that builds Cloud Run functions from source (fetch the
# source, write logs, push the image to the gcf-artifacts repository). Deploy time only:
# none of Sluice's code runs as this account.
resource "google_project_iam_member" "build_run_builder" {
  project = var.project_id
  role    = "roles/run.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# --- Google service agents ---------------------------------------------------------------

# A Cloud Storage trigger (2nd gen) publishes through Pub/Sub as the project's Cloud Storage
# service agent, which needs pubsub.publisher. The data source also creates the agent when
# the project has none yet.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "gcs_agent_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Only for projects whose Pub/Sub service agent was created before 8 April 2021: it must mint
# the tokens Eventarc's push subscription presents (newer agents have this built in).
resource "google_project_iam_member" "pubsub_agent_token_creator" {
  #checkov:skip=CKV_GCP_41:Granted only when grant_legacy_pubsub_token_creator is set, to Google's Pub/Sub service agent (not a user or workload account), as Eventarc requires for projects older than April 2021.
  count = var.grant_legacy_pubsub_token_creator ? 1 : 0

  project = var.project_id
  role    = "roles/iam.serviceAccountTokenCreator"
  member  = "serviceAccount:service-${data.google_project.this[0].number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Read only when needed: the project number names the Pub/Sub service agent.
data "google_project" "this" {
  count = var.grant_legacy_pubsub_token_creator ? 1 : 0

  project_id = var.project_id
}
