# A service account per component, each with only the roles it needs, granted on the narrowest
# resource that holds the permission (bucket, secret, function, job) and on the project only where
# the service has no finer grain (Firestore, Workflows executions). No primitive roles.
# The scheduler's and Eventarc's accounts live in scheduler.tf and eventarc.tf.

locals {
  # Which functions need what, beyond Firestore and the secrets (which every function needs: they
  # share one module that opens Redis and Firestore and reads its secrets at start-up).
  function_bucket_readers = {
    "on-upload/uploads"        = { function = "on-upload", bucket = "uploads" }
    "trigger/uploads"          = { function = "trigger", bucket = "uploads" }
    "preprocess-video/uploads" = { function = "preprocess-video", bucket = "uploads" }
    "status/work"              = { function = "status", bucket = "work" }
  }
  # Every function that changes request records keeps the upload status objects current
  # (functions/uploads/status-object.ts): read and write under the status prefix, nothing else.
  status_object_writers = ["queue", "expire-leases", "on-upload", "dispatch", "reconcile"]
  function_project_roles = {
    "dispatch/workflows.invoker" = { function = "dispatch", role = "roles/workflows.invoker" }
    "reconcile/workflows.viewer" = { function = "reconcile", role = "roles/workflows.viewer" }
  }

  # Who may invoke which function (run.invoker on its Cloud Run service), in one table.
  function_invokers = merge(
    # The scheduled ones, called by Cloud Scheduler (scheduler.tf).
    {
      for name, _ in local.schedules :
      "${name}/scheduler" => { function = name, member = google_service_account.scheduler.member }
    },
    {
      # Eventarc delivers upload events (eventarc.tf).
      "on-upload/eventarc" = { function = "on-upload", member = google_service_account.eventarc.member }

      # The workflow reports stage progress and the final status (PUT /status/{id}, OIDC).
      "queue/workflow" = { function = "queue", member = google_service_account.workflow.member }
    },
    # Callers of the API (trigger, preprocess, uploads, status) named by the operator.
    {
      for pair in setproduct(["trigger", "preprocess-video", "uploads", "status"], var.api_invoker_members) :
      "${pair[0]}/${pair[1]}" => { function = pair[0], member = pair[1] }
    },
  )

  # Stages: every stage reads and writes the request's work folder and reads the assets (models);
  # frames reads the upload.
  job_bucket_roles = merge(
    { for stage, _ in local.stages : "${stage}/work" => { stage = stage, bucket = "work", role = "roles/storage.objectUser" } },
    { for stage, _ in local.stages : "${stage}/assets" => { stage = stage, bucket = "assets", role = "roles/storage.objectViewer" } },
    {
      "frames/uploads" = { stage = "frames", bucket = "uploads", role = "roles/storage.objectViewer" }
    },
  )
}

# ---- functions ----

resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.name_prefix}-fn-${each.key}"
  display_name = "splatflow function ${each.key}"
  depends_on   = [google_project_service.this]
}

resource "google_project_iam_member" "function_firestore" {
  for_each = local.functions
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = google_service_account.function[each.key].member
}

resource "google_secret_manager_secret_iam_member" "functions" {
  for_each = {
    for pair in setproduct(keys(local.functions), keys(local.function_secrets)) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], secret = local.function_secrets[pair[1]] }
  }
  secret_id = google_secret_manager_secret.this[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}

resource "google_storage_bucket_iam_member" "function_readers" {
  for_each = local.function_bucket_readers
  bucket   = google_storage_bucket.this[each.value.bucket].name
  role     = "roles/storage.objectViewer"
  member   = google_service_account.function[each.value.function].member
}

# objectUser (get, create, overwrite) limited by an IAM condition to the status objects' names:
# https://cloud.google.com/storage/docs/access-control/iam#conditions
resource "google_storage_bucket_iam_member" "status_objects" {
  for_each = toset(local.status_object_writers)
  bucket   = google_storage_bucket.this["uploads"].name
  role     = "roles/storage.objectUser"
  member   = google_service_account.function[each.key].member
  condition {
    title      = "upload-status-objects"
    expression = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.this["uploads"].name}/objects/${local.upload_status_prefix}\")"
  }
}

resource "google_project_iam_member" "function_roles" {
  for_each = local.function_project_roles
  project  = var.project_id
  role     = each.value.role
  member   = google_service_account.function[each.value.function].member
}

# V4 signed URLs are signed by the signing function's own account (signBlob on itself): the status
# function's read URLs for results, the uploads function's write URLs into a caller's scope.
resource "google_service_account_iam_member" "status_signs_urls" {
  service_account_id = google_service_account.function["status"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.function["status"].member
}

resource "google_service_account_iam_member" "uploads_signs_urls" {
  service_account_id = google_service_account.function["uploads"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.function["uploads"].member
}

# A signed URL carries its signer's permissions: the uploads function may create objects in the
# uploads bucket (and neither read nor delete them).
resource "google_storage_bucket_iam_member" "uploads_creates_objects" {
  bucket = google_storage_bucket.this["uploads"].name
  role   = "roles/storage.objectCreator"
  member = google_service_account.function["uploads"].member
}

resource "google_cloud_run_v2_service_iam_member" "invokers" {
  for_each = local.function_invokers
  name     = google_cloudfunctions2_function.this[each.value.function].name
  location = var.region
  role     = "roles/run.invoker"
  member   = each.value.member
}

# The status endpoint is protected by its unguessable callback token; opening it to browsers is
# the operator's explicit choice.
resource "google_cloud_run_v2_service_iam_member" "status_public" {
  count    = var.public_status_endpoint ? 1 : 0
  name     = google_cloudfunctions2_function.this["status"].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ---- function builds (Cloud Build) and image builds ----

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "splatflow: builds functions and stage images"
  depends_on   = [google_project_service.this]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/cloudbuild.builds.builder", "roles/logging.logWriter"])
  project  = var.project_id
  role     = each.key
  member   = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  repository = google_artifact_registry_repository.images.name
  location   = var.region
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.this["sources"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# ---- stage jobs ----

resource "google_service_account" "job" {
  for_each     = local.stages
  account_id   = "${var.name_prefix}-job-${each.key}"
  display_name = "splatflow stage ${each.key}"
  depends_on   = [google_project_service.this]
}

resource "google_storage_bucket_iam_member" "job_buckets" {
  for_each = local.job_bucket_roles
  bucket   = google_storage_bucket.this[each.value.bucket].name
  role     = each.value.role
  member   = google_service_account.job[each.value.stage].member
}

# ---- workflow ----

resource "google_service_account" "workflow" {
  account_id   = "${var.name_prefix}-workflow"
  display_name = "splatflow: reconstruct workflow"
  depends_on   = [google_project_service.this]
}

# run.jobs.run + run.jobs.runWithOverrides, on the stage jobs only.
resource "google_cloud_run_v2_job_iam_member" "workflow_runs_stages" {
  for_each = local.stages
  name     = google_cloud_run_v2_job.stage[each.key].name
  location = var.region
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = google_service_account.workflow.member
}

# The workflow follows the execution it started and cancels one it gives up on (workflows/reconstruct.yaml).
resource "google_project_iam_custom_role" "workflow_watches_runs" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_workflow_run_watcher"
  title       = "splatflow workflow: follow and cancel stage job executions"
  permissions = ["run.operations.get", "run.executions.get", "run.executions.cancel"]
}

# A request cancelled while PROCESSING: the queue function cancels its workflow execution (Workflows has no
# finer grain than the project) and the stage job executions it started (on the stage jobs only).
resource "google_project_iam_custom_role" "queue_cancels_workflows" {
  role_id     = "${replace(var.name_prefix, "-", "_")}_queue_workflow_canceller"
  title       = "splatflow queue: cancel reconstruct executions"
  permissions = ["workflows.executions.cancel"]
}

resource "google_project_iam_member" "queue_cancels_workflows" {
  project = var.project_id
  role    = google_project_iam_custom_role.queue_cancels_workflows.id
  member  = google_service_account.function["queue"].member
}

# run.jobs.run and run.executions.cancel (executions.cancel needs run.jobs.run on the job:
# https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/cancel).
resource "google_cloud_run_v2_job_iam_member" "queue_cancels_stages" {
  for_each = local.stages
  name     = google_cloud_run_v2_job.stage[each.key].name
  location = var.region
  role     = "roles/run.jobsExecutor"
  member   = google_service_account.function["queue"].member
}

resource "google_project_iam_member" "workflow_watches_runs" {
  project = var.project_id
  role    = google_project_iam_custom_role.workflow_watches_runs.id
  member  = google_service_account.workflow.member
}

resource "google_project_iam_member" "workflow_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.workflow.member
}

# Skips stages whose manifest.json already exists; reads the cause a failed stage wrote to its error.json.
resource "google_storage_bucket_iam_member" "workflow_reads_work" {
  bucket = google_storage_bucket.this["work"].name
  role   = "roles/storage.objectViewer"
  member = google_service_account.workflow.member
}
