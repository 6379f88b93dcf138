# Artifact Registry: the flex template image (beam/Dockerfile, built by beam/build_template.sh
# with Cloud Build). The same image runs the flex-template launcher and the Dataflow workers.
# Every build gets its own tag (time + commit), so tags are immutable: a template spec keeps
# pointing at exactly the image it was built with.

resource "google_artifact_registry_repository" "pipeline" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption keys; CMEK needs a Cloud KMS key ring this module does not own.
  location      = var.region
  repository_id = "${var.name_prefix}-pipeline"
  description   = "Sluice flex template image: Beam pipeline, launcher and worker SDK container."
  format        = "DOCKER"

  docker_config {
    immutable_tags = true
  }

  # Keep the ten newest images (a template spec built last week must still launch); delete
  # the rest after 30 days. KEEP wins over DELETE when both match.
  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.apis]
}
