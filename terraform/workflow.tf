# The reconstruction workflow. Its source is the YAML file itself: file() does not interpolate, so
# the workflow's own ${...} expressions reach Workflows untouched (an inline or templatefile()
# source would need every one written as $${...}). Deployment values reach it as environment
# variables, read in the YAML with sys.get_env().
resource "google_workflows_workflow" "reconstruct" {
  name                = "${var.name_prefix}-reconstruct"
  region              = var.region
  description         = "splatflow: run the stage jobs of one reconstruction request"
  service_account     = google_service_account.workflow.id
  call_log_level      = "LOG_ERRORS_ONLY"
  deletion_protection = var.deletion_protection
  labels              = local.labels
  source_contents     = file("${local.repo_root}/workflows/reconstruct.yaml")

  user_env_vars = {
    QUEUE_URL       = google_cloudfunctions2_function.this["queue"].service_config[0].uri
    WORK_BUCKET     = google_storage_bucket.this["work"].name
    RESULTS_BUCKET  = google_storage_bucket.this["results"].name
    JOB_NAME_PREFIX = "projects/${var.project_id}/locations/${var.region}/jobs/${var.name_prefix}-"
  }

  depends_on = [google_project_service.this]
}
