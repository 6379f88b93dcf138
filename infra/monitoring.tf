# Alerting on the data itself: a file expected by a contract's freshness rule did not arrive
# (missing_data), or a load's dead-letter share went over the contract's dead_letter.max_rate
# (dead_letter_rate), or a contract file is broken and its dataset out of service
# (broken_contract), or a landing file waited too long without being loaded or rejected, even
# after the cook's reconciliation (unprocessed_files). The code logs one structured entry per
# alert; this counts them and pages.
#
# The contract an alert log entry must meet (sluice/logs.py writes this shape; issue 4's
# checks must emit it), one JSON line on stdout:
#   severity                          "ERROR" (or higher)
#   alert                             "missing_data" | "dead_letter_rate" | "broken_contract"
#                                     | "unprocessed_files"                 -> jsonPayload.alert
#   logging.googleapis.com/labels     {"dataset": "<contract name>", ...}   -> labels.dataset
# e.g. log_event(LOG, logging.ERROR, "no kiva_loans file for 26 h", alert="missing_data")
# inside event_labels(dataset="kiva_loans"), or extra={"labels": {"dataset": ...}}.
# tests/infra/test_monitoring.py feeds such a line through JsonFormatter and this filter.

locals {
  # A literal, so that the test can evaluate it against real log lines.
  alert_log_filter = "severity>=ERROR AND (jsonPayload.alert=\"missing_data\" OR jsonPayload.alert=\"dead_letter_rate\" OR jsonPayload.alert=\"broken_contract\" OR jsonPayload.alert=\"unprocessed_files\")"
}

resource "google_logging_metric" "alerts" {
  name        = "${var.name_prefix}-alerts"
  description = "Sluice data alerts (missing data, dead-letter rate, broken contract, unprocessed files) by kind and dataset."
  filter      = local.alert_log_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Sluice data alerts"
    labels {
      key         = "alert"
      value_type  = "STRING"
      description = "missing_data, dead_letter_rate, broken_contract or unprocessed_files"
    }
    labels {
      key         = "dataset"
      value_type  = "STRING"
      description = "The contract (dataset) the alert is about."
    }
  }

  label_extractors = {
    alert   = "EXTRACT(jsonPayload.alert)"
    dataset = "EXTRACT(labels.dataset)"
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == "" ? 0 : 1

  display_name = "Sluice data alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.apis]
}

# A new log-based metric takes minutes to become visible to Monitoring; creating the policy at
# once fails with "Cannot find metric(s)" (hashicorp/terraform-provider-google#11102). If an
# apply still hits it, run `terraform apply` again.
resource "time_sleep" "alert_metric_registration" {
  create_duration = "120s"

  depends_on = [google_logging_metric.alerts]
}

resource "google_monitoring_alert_policy" "data_alerts" {
  display_name = "Sluice: missing data or dead letters"
  combiner     = "OR"

  # Alerts come from the functions (cook checks freshness) or the pipeline (a load's
  # dead-letter share): one condition per monitored resource type.
  dynamic "conditions" {
    for_each = {
      "function (Cloud Run)" = "cloud_run_revision"
      "pipeline (Dataflow)"  = "dataflow_step"
    }
    content {
      display_name = "Sluice alert logged by a ${conditions.key}"
      condition_threshold {
        filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.alerts.name}\" AND resource.type=\"${conditions.value}\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "0s"
        aggregations {
          alignment_period     = "300s"
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = ["metric.label.alert", "metric.label.dataset"]
        }
        trigger {
          count = 1
        }
      }
    }
  }

  notification_channels = google_monitoring_notification_channel.email[*].id

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A Sluice data alert was logged: **missing_data** (a contract's freshness rule saw no
      file in time) or **dead_letter_rate** (a file's dead letters exceeded the contract's
      dead_letter.max_rate) or **broken_contract** (a contract file cannot be used: its
      dataset is out of service and its files are quarantined with the reason; fix the file,
      check it with `sluice check`, then replay the quarantined files). The incident's labels
      name the kind and the dataset.

      Look at the entries: Logs Explorer with `${local.alert_log_filter}`.
      Then `sluice status` (or the ingestion_log table) for the dataset's recent files.
    EOT
  }

  depends_on = [time_sleep.alert_metric_registration]
}
