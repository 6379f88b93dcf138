# BigQuery datasets. Tables are NOT declared here: the code creates them on first use
# (BigQueryWarehouse.ensure_tables, called by every load, by on_upload's rejection record and
# by cook) from the contracts in contracts/*.yaml, with the contract's partitioning and
# clustering, and adds the columns a newer contract version brings. One definition of each
# table (the contract) means Terraform and the code can never disagree about a schema; see
# infra/README.md for the whole argument.
#
# Tables the code creates in the processed dataset, per contract:
#   <contract.table>              processed rows, partitioned + clustered per the contract
#   <contract.dead_letter_table>  dead letters, partitioned by ingested_at, clustered by source_uri
#   ingestion_log                 one row per file, partitioned by started_at,
#                                 clustered by dataset, source_uri

resource "google_bigquery_dataset" "processed" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption keys; customer-managed keys (CMEK) are an organisation's choice that needs a Cloud KMS key ring this module does not own.
  dataset_id                 = var.warehouse_dataset
  friendly_name              = "Sluice processed data"
  description                = "Processed tables (raw files with their contract applied), dead letters and the ingestion log. Tables are created by the code from contracts/."
  location                   = local.bq_location
  delete_contents_on_destroy = var.allow_destroy_data

  depends_on = [google_project_service.apis]
}

# BigQueryWarehouse stages each load in <dataset>_staging before its replacing transaction;
# tables there expire after a day, so an abandoned attempt cleans itself up. The expiry equals
# sluice.warehouse.bigquery.STAGING_EXPIRATION_MS (a test checks).
resource "google_bigquery_dataset" "staging" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption keys, as for the processed dataset.
  dataset_id                  = local.staging_dataset
  friendly_name               = "Sluice load staging"
  description                 = "Load jobs land here before one transaction swaps a file's rows into the processed dataset."
  location                    = local.bq_location
  default_table_expiration_ms = 86400000
  delete_contents_on_destroy  = true

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_dataset" "cooked" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption keys, as for the processed dataset.
  dataset_id                 = var.cooked_warehouse_dataset
  friendly_name              = "Sluice cooked summaries"
  description                = "Summary tables rebuilt by the cook function from sql/*.sql (CREATE OR REPLACE)."
  location                   = local.bq_location
  delete_contents_on_destroy = var.allow_destroy_data

  depends_on = [google_project_service.apis]
}

# Test files (a `_test/` segment under a landing prefix) load here, never into production:
# on_upload logs their rejections and the pipeline loads their rows (sluice.testmark). Its
# tables expire; summaries never read it.
resource "google_bigquery_dataset" "test" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption keys, as for the processed dataset.
  dataset_id                  = var.test_warehouse_dataset
  friendly_name               = "Sluice test scratch"
  description                 = "Trial loads and integration tests against real BigQuery; tables expire."
  location                    = local.bq_location
  default_table_expiration_ms = var.test_table_expiration_days * 86400000
  delete_contents_on_destroy  = true

  depends_on = [google_project_service.apis]
}

# Load staging of test files, as sluice_staging is for production ones.
resource "google_bigquery_dataset" "test_staging" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption keys, as for the processed dataset.
  dataset_id                  = "${var.test_warehouse_dataset}_staging"
  friendly_name               = "Sluice test load staging"
  description                 = "Load jobs of test files land here before their transaction."
  location                    = local.bq_location
  default_table_expiration_ms = 86400000
  delete_contents_on_destroy  = true

  depends_on = [google_project_service.apis]
}
