# Every Cloud Function (gen2) from functions/, built once locally (`npm run build`) and deployed
# from one source archive. Each function runs as its own service account (iam.tf).

locals {
  # Key: the deployed name's suffix; entry_point: the target exported by dist/functions/index.js.
  functions = {
    queue              = { entry_point = "queue", timeout_seconds = 60 }
    "expire-leases"    = { entry_point = "expireLeases", timeout_seconds = 60 }
    trigger            = { entry_point = "trigger", timeout_seconds = 60 }
    "on-upload"        = { entry_point = "onUpload", timeout_seconds = 120 }
    "preprocess-video" = { entry_point = "preprocessVideo", timeout_seconds = 60 }
    status             = { entry_point = "status", timeout_seconds = 60 }
    uploads            = { entry_point = "uploads", timeout_seconds = 60 }
    dispatch           = { entry_point = "dispatch", timeout_seconds = 300 }
    reconcile          = { entry_point = "reconcile", timeout_seconds = 300 }
  }

  # Where a request's input may come from (functions/request-api/inputs.ts, jobs/runtime/input-location.ts):
  # the uploads folder first (POST /uploads signs URLs into it), then any the operator adds; each
  # caller may name only objects in its own scope folder under them.
  input_locations = concat(
    ["gs://${google_storage_bucket.this["uploads"].name}/${var.uploads_prefix}"],
    var.extra_input_locations,
  )

  # Each function's URL, known before the function exists (gen2 functions answer on their
  # cloudfunctions.net URL too), so a function can name its own or another's without a dependency
  # cycle: the status URL handed to callers, and each function's ID-token audience (AUTH_AUDIENCE).
  # The API's outputs (outputs.tf) are these URLs, so a caller asks for a token for the URL it calls.
  # Upload status objects: `<prefix><upload name>.json` in the uploads bucket, beside UPLOADS_PREFIX.
  upload_status_prefix = "status/"

  function_urls = {
    for key, _ in local.functions : key => "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.name_prefix}-${key}"
  }
  status_url = "${local.function_urls["status"]}/status"

  # One module serves every target and reads its whole configuration at start-up
  # (functions/config/queue.ts, functions/config/service.ts), so every function gets the same
  # environment; secrets (REDIS_PASSWORD, WEBHOOK_SECRET) come from Secret Manager.
  # REDIS_TLS_CA holds every CA Memorystore lists, so a CA rotation does not break TLS.
  function_env = {
    LOG_LEVEL                      = var.log_level
    GOOGLE_CLOUD_PROJECT           = var.project_id
    REDIS_URL                      = "rediss://${google_redis_instance.queue.host}:${google_redis_instance.queue.port}"
    REDIS_TLS_CA                   = join("", google_redis_instance.queue.server_ca_certs[*].cert)
    REDIS_KEY_PREFIX               = var.name_prefix
    AUTH_MODE                      = "google"
    UPLOADS_PREFIX                 = var.uploads_prefix
    UPLOAD_STATUS_PREFIX           = local.upload_status_prefix
    INPUT_LOCATIONS                = join(",", local.input_locations)
    OUTPUT_PREFIX                  = "gs://${google_storage_bucket.this["work"].name}/requests/"
    STATUS_URL                     = local.status_url
    WORKFLOW_LOCATION              = var.region
    WORKFLOW_NAME                  = local.workflow_name
    MAX_CONCURRENT_RECONSTRUCTIONS = tostring(var.max_concurrent_reconstructions)
    UPLOAD_MAX_BYTES               = tostring(var.upload_max_bytes)
    UPLOAD_MAX_DURATION_SECONDS    = tostring(var.max_video_seconds)
    # A running request's lease outlasts its workflow's worst case, so a slow but healthy request
    # is never re-queued and run twice; every stage report renews it.
    DISPATCH_LEASE_SECONDS = tostring(sum(values(local.stage_timeouts)))
    # Express and the Functions Framework answer their own errors without stack traces.
    NODE_ENV = "production"
  }
  # What the source archive holds: the compiled code and the package files. This mirrors
  # .gcloudignore (tests check the two agree); the cloud build installs production dependencies
  # from the lock file and runs no build script (GOOGLE_NODE_RUN_SCRIPTS is empty).
  function_source_include = ["dist/**", "package.json", "package-lock.json"]
  function_source_exclude = ["dist/test/"]
  function_source_files = sort([
    for file in distinct(flatten([for pattern in local.function_source_include : fileset(local.repo_root, pattern)])) :
    file if !anytrue([for prefix in local.function_source_exclude : startswith(file, prefix)])
  ])
  function_source_hash = sha256(join("\n", [
    for file in local.function_source_files : "${filesha256("${local.repo_root}/${file}")}  ${file}"
  ]))
  function_source_archive = abspath("${path.module}/.build/functions-${local.function_source_hash}.zip")
}

# The archive is zipped at apply time by `zip` (hashicorp/archive is not used: the Go module proxy does
# not serve it, so terraform/validate could not check a configuration that needs it). It is named by
# the hash of its files' names and contents, known at plan time: a changed build is zipped again and
# redeploys every function; an unchanged one does neither.
resource "terraform_data" "function_source" {
  triggers_replace = local.function_source_hash

  provisioner "local-exec" {
    working_dir = local.repo_root
    # Older archives go: only the one deployed is needed.
    command = "mkdir -p \"$(dirname \"$ARCHIVE\")\" && rm -f \"$(dirname \"$ARCHIVE\")\"/functions-*.zip && printf '%s\\n' \"$FILES\" | zip -q -X -@ \"$ARCHIVE\""
    environment = {
      ARCHIVE = local.function_source_archive
      FILES   = join("\n", local.function_source_files)
    }
  }

  lifecycle {
    precondition {
      condition     = fileexists("${local.repo_root}/dist/functions/index.js")
      error_message = "dist/functions/index.js is missing: run `npm ci && npm run build` in the repository root first."
    }
  }
}

resource "google_storage_bucket_object" "functions" {
  name       = "functions-${local.function_source_hash}.zip"
  bucket     = google_storage_bucket.this["sources"].name
  source     = local.function_source_archive
  depends_on = [terraform_data.function_source]
}

resource "google_cloudfunctions2_function" "this" {
  for_each = local.functions

  name     = "${var.name_prefix}-${each.key}"
  location = var.region
  labels   = local.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id
    environment_variables = {
      # dist/ is in the archive: no build script runs in the cloud.
      GOOGLE_NODE_RUN_SCRIPTS = ""

      # The functions never run ONNX; onnxruntime-node's postinstall would fetch CUDA libraries.
      ONNXRUNTIME_NODE_INSTALL = "skip"
    }
    source {
      storage_source {
        bucket = google_storage_bucket_object.functions.bucket
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.function[each.key].email
    available_memory               = "512Mi"
    timeout_seconds                = each.value.timeout_seconds
    min_instance_count             = 0
    max_instance_count             = var.function_max_instances
    all_traffic_on_latest_revision = true

    # Reachable from the internet only with an IAM-authorised identity (run.invoker, iam.tf).
    ingress_settings = "ALLOW_ALL"

    # Only the dispatcher starts workflow executions (it alone holds workflows.invoker): the
    # others do not start one in-process after an enqueue or a completion; the dispatcher's
    # schedule picks the request up within a minute.
    # AUTH_AUDIENCE: a token minted for another function or service is refused, not only one whose
    # caller lacks run.invoker here.
    environment_variables = merge(local.function_env, {
      AUTO_DISPATCH = tostring(each.key == "dispatch")
      AUTH_AUDIENCE = local.function_urls[each.key]
    })

    dynamic "secret_environment_variables" {
      for_each = local.function_secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.value].secret_id
        version    = google_secret_manager_secret_version.this[secret_environment_variables.value].version
      }
    }

    direct_vpc_egress = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
    direct_vpc_network_interface {
      network    = google_compute_network.this.name
      subnetwork = google_compute_subnetwork.functions.name
    }
  }

  # The upload handler is started by Eventarc on every finalized object in the uploads bucket.
  dynamic "event_trigger" {
    for_each = each.key == "on-upload" ? [google_storage_bucket.this["uploads"].name] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.eventarc.email
      event_filters {
        attribute = "bucket"
        value     = event_trigger.value
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.functions,
    google_project_iam_member.build,
    google_project_iam_member.eventarc,
    google_project_iam_member.gcs_publisher,
  ]
}
