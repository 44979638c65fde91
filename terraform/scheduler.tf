# Periodic work: the dispatcher (catches up when no enqueue or completion woke it), the
# reconciler (Redis vs Firestore vs Workflows), and lease expiry. Calls carry an OIDC token of the
# scheduler's own account, which may invoke these three (iam.tf).

locals {
  schedules = {
    dispatch        = var.dispatch_schedule
    reconcile       = var.reconcile_schedule
    "expire-leases" = var.expire_leases_schedule
  }
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "splatflow: Cloud Scheduler calls"
  depends_on   = [google_project_service.this]
}

resource "google_cloud_scheduler_job" "this" {
  for_each = local.schedules

  name             = "${var.name_prefix}-${each.key}"
  region           = var.region
  schedule         = each.value
  time_zone        = "Etc/UTC"
  attempt_deadline = "${local.functions[each.key].timeout_seconds}s"

  retry_config {
    retry_count = 0 # the next tick is the retry
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.this[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.this[each.key].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invokers]
}
