# The buckets (DESIGN.md decision 2: users write only to landing; everything Sluice writes
# goes to the pipeline bucket, so nothing Sluice writes can trigger on_upload again).
#
#   landing   raw zone: <dataset prefix>/<any path>.csv[.gz], immutable, versioned, kept
#   pipeline  claims/, quarantine/, staging/, temp/, table-slots/ (written by on_upload and Dataflow)
#   artifacts what a deploy writes: function source archives, the flex template spec;
#             no runtime identity can write it, so none can change the code it runs
#
# All three: uniform bucket-level access (IAM only, no object ACLs) and public access
# prevention enforced, in the region of the functions and Dataflow jobs.

resource "google_storage_bucket" "landing" {
  #checkov:skip=CKV_GCP_62:Usage logs are a legacy feature; who read or wrote which object is recorded by Cloud Audit Logs (enable Data Access logs for storage.googleapis.com to keep reads too).
  name                        = local.landing_bucket
  location                    = upper(var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.allow_destroy_data

  # A re-upload under the same name makes a new generation (a new event key, whose load
  # replaces the old rows); the old bytes stay recoverable as a noncurrent version.
  versioning {
    enabled = true
  }

  # Retention of raw files: kept (the system of record that `sluice replay` rebuilds the
  # warehouse from), moving to colder classes as they age; see infra/README.md.
  lifecycle_rule {
    condition {
      age                   = var.raw_nearline_after_days
      with_state            = "LIVE"
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.raw_coldline_after_days
      with_state            = "LIVE"
      matches_storage_class = ["NEARLINE"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.raw_delete_after_days > 0 ? [var.raw_delete_after_days] : []
    content {
      condition {
        age        = lifecycle_rule.value
        with_state = "LIVE"
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "pipeline" {
  #checkov:skip=CKV_GCP_62:Usage logs are a legacy feature; Cloud Audit Logs record access to this bucket.
  #checkov:skip=CKV_GCP_78:Versioning would keep every claim state change and every staged file; claims already move by compare-and-swap on the object generation, and nothing here is a system of record (raw files stay in landing).
  name                        = local.pipeline_bucket
  location                    = upper(var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.allow_destroy_data

  # staging/ (Parquet before a load) and temp/ (Dataflow): a successful run cleans its own;
  # this sweeps what a failed run left behind.
  lifecycle_rule {
    condition {
      age            = var.scratch_retention_days
      matches_prefix = ["staging/", "temp/"]
    }
    action {
      type = "Delete"
    }
  }

  # claims/: needed only while an event can still be redelivered (at most a day).
  lifecycle_rule {
    condition {
      age            = var.claim_retention_days
      matches_prefix = ["claims/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.quarantine_retention_days
      matches_prefix = ["quarantine/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Usage logs are a legacy feature; Cloud Audit Logs record who replaced a source archive or template spec.
  name                        = local.artifacts_bucket
  location                    = upper(var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.allow_destroy_data

  # A bad template spec can be rolled back to its previous generation.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}
