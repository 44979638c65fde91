# The reconstruction workflow. Its source is the YAML file itself: file() does not interpolate, so
# the workflow's own ${...} expressions reach Workflows untouched (an inline or templatefile()
# source would need every one written as $${...}). Deployment values reach it as environment
# variables, read in the YAML with sys.get_env().
locals {
  workflow_name = "${var.name_prefix}-reconstruct"
}

resource "google_workflows_workflow" "reconstruct" {
  name                = local.workflow_name
  region              = var.region
  description         = "splatflow: run the stage jobs of one reconstruction request"
  service_account     = google_service_account.workflow.id
  call_log_level      = "LOG_ERRORS_ONLY"
  deletion_protection = var.deletion_protection
  labels              = local.labels
  source_contents     = file("${local.repo_root}/workflows/reconstruct.yaml")

  # Project and region are the workflow's own (GOOGLE_CLOUD_PROJECT_ID, GOOGLE_CLOUD_LOCATION).
  user_env_vars = {
    QUEUE_URL  = google_cloudfunctions2_function.this["queue"].service_config[0].uri
    JOB_PREFIX = "${var.name_prefix}-"
    # How long the workflow waits for a stage's execution before cancelling it: every attempt Cloud Run
    # may make of the task, each up to its timeout plus time to schedule a GPU and pull the image
    # (the rule and headroom of local/jobs/definitions.ts).
    STAGE_TIMEOUTS = jsonencode({
      for name, stage in local.stages : name => (stage.timeout_seconds + (stage.gpu > 0 ? 1200 : 300)) * (stage.max_retries + 1)
    })
  }

  depends_on = [google_project_service.this]
}
