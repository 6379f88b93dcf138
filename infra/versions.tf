# Terraform and provider versions. `terraform init` downloads the providers; nothing in this
# directory needs anything else installed (the function source archive is built by the
# archive provider, the flex template image by beam/build_template.sh).
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 8.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7" # 2.5+: glob patterns in archive_file excludes
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.12"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  # Every labelable resource carries these, so billing and audit can tell Sluice apart.
  default_labels = local.labels
}
