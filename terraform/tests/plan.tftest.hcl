# The whole configuration applied against a mocked google provider (no cloud account): what a
# deployment would create, with the defaults and with each operator switch. Run by terraform/validate.
# The real provider still validates every argument (an IAM member's form, say), so the mocked
# accounts get well-formed values: each single account its own, so a grant names whom it is for; the
# accounts of the functions and of the stage jobs share one per resource, so their grants are checked
# by their keys. `apply` runs the one local step: zipping the built functions.

mock_provider "google" {
  mock_resource "google_service_account" {
    defaults = {
      email  = "splatflow-fn@demo-project.iam.gserviceaccount.com"
      member = "serviceAccount:splatflow-fn@demo-project.iam.gserviceaccount.com"
      name   = "projects/demo-project/serviceAccounts/splatflow-fn@demo-project.iam.gserviceaccount.com"
      id     = "projects/demo-project/serviceAccounts/splatflow-fn@demo-project.iam.gserviceaccount.com"
    }
  }
  mock_data "google_storage_project_service_account" {
    defaults = {
      email_address = "service-1@gs-project-accounts.iam.gserviceaccount.com"
      member        = "serviceAccount:service-1@gs-project-accounts.iam.gserviceaccount.com"
    }
  }
}
mock_provider "random" {}

override_resource {
  target = google_service_account.workflow
  values = {
    email  = "splatflow-workflow@demo-project.iam.gserviceaccount.com"
    member = "serviceAccount:splatflow-workflow@demo-project.iam.gserviceaccount.com"
    name   = "projects/demo-project/serviceAccounts/splatflow-workflow@demo-project.iam.gserviceaccount.com"
    id     = "projects/demo-project/serviceAccounts/splatflow-workflow@demo-project.iam.gserviceaccount.com"
  }
}
override_resource {
  target = google_service_account.scheduler
  values = {
    email  = "splatflow-scheduler@demo-project.iam.gserviceaccount.com"
    member = "serviceAccount:splatflow-scheduler@demo-project.iam.gserviceaccount.com"
  }
}
override_resource {
  target = google_service_account.eventarc
  values = {
    email  = "splatflow-eventarc@demo-project.iam.gserviceaccount.com"
    member = "serviceAccount:splatflow-eventarc@demo-project.iam.gserviceaccount.com"
  }
}
override_resource {
  target = google_service_account.build
  values = {
    email  = "splatflow-build@demo-project.iam.gserviceaccount.com"
    member = "serviceAccount:splatflow-build@demo-project.iam.gserviceaccount.com"
    id     = "projects/demo-project/serviceAccounts/splatflow-build@demo-project.iam.gserviceaccount.com"
  }
}

variables {
  project_id = "demo-project"
  images = {
    node-cpu  = "europe-docker.pkg.dev/demo-project/splatflow/node-cpu@sha256:1"
    node-cuda = "europe-docker.pkg.dev/demo-project/splatflow/node-cuda@sha256:2"
    colmap    = "europe-docker.pkg.dev/demo-project/splatflow/colmap@sha256:3"
    gsplat    = "europe-docker.pkg.dev/demo-project/splatflow/gsplat@sha256:4"
  }
}

run "defaults" {
  command = apply

  # ---- nothing public, no primitive roles ----
  assert {
    condition = length([
      for grant in concat(
        values(google_project_iam_member.function_firestore), values(google_project_iam_member.function_roles),
        values(google_project_iam_member.build), [google_project_iam_member.gcs_publisher],
        [google_project_iam_member.eventarc], [google_project_iam_member.queue_cancels_workflows],
        [google_project_iam_member.workflow_watches_runs], [google_project_iam_member.workflow_logs],
      ) : grant if contains(["roles/owner", "roles/editor", "roles/viewer"], grant.role)
    ]) == 0
    error_message = "a primitive role is granted on the project"
  }
  assert {
    condition = length([
      for grant in concat(
        values(google_cloud_run_v2_service_iam_member.invokers), google_cloud_run_v2_service_iam_member.status_public,
        values(google_storage_bucket_iam_member.function_readers), values(google_storage_bucket_iam_member.job_buckets),
        values(google_storage_bucket_iam_member.status_objects), [google_storage_bucket_iam_member.uploads_creates_objects],
        [google_storage_bucket_iam_member.workflow_reads_work], [google_storage_bucket_iam_member.build_reads_sources],
      ) : grant if contains(["allUsers", "allAuthenticatedUsers"], grant.member)
    ]) == 0
    error_message = "something is public by default"
  }
  assert {
    condition = alltrue([for bucket in google_storage_bucket.this :
    bucket.public_access_prevention == "enforced" && bucket.uniform_bucket_level_access])
    error_message = "a bucket allows public or per-object access"
  }

  # ---- who may invoke which function ----
  assert {
    condition = { for key, grant in google_cloud_run_v2_service_iam_member.invokers : key => grant.member } == {
      "dispatch/scheduler"      = google_service_account.scheduler.member
      "reconcile/scheduler"     = google_service_account.scheduler.member
      "expire-leases/scheduler" = google_service_account.scheduler.member
      "on-upload/eventarc"      = google_service_account.eventarc.member
      "queue/workflow"          = google_service_account.workflow.member
    }
    error_message = "with no api_invoker_members, only the scheduler, Eventarc and the workflow may invoke functions"
  }
  assert {
    condition = alltrue([for key, grant in google_cloud_run_v2_service_iam_member.invokers :
    grant.name == "splatflow-${split("/", key)[0]}" && grant.role == "roles/run.invoker"])
    error_message = "an invoker grant is on another function than its key names"
  }

  # ---- every service account's roles ----
  # Project-level roles of the functions: Firestore for each, and one more for three of them.
  assert {
    condition = ({ for key, grant in google_project_iam_member.function_firestore : key => grant.role } == {
      for name, _ in local.functions : name => "roles/datastore.user" }
      && { for key, grant in google_project_iam_member.function_roles : key => grant.role } == {
        "dispatch/workflows.invoker" = "roles/workflows.invoker"
        "reconcile/workflows.viewer" = "roles/workflows.viewer"
      }
    && google_project_iam_member.queue_cancels_workflows.role == google_project_iam_custom_role.queue_cancels_workflows.id)
    error_message = "a function's project roles are not Firestore plus its own (dispatch: workflows.invoker, reconcile: workflows.viewer, queue: cancel)"
  }
  assert {
    condition = google_project_iam_custom_role.queue_cancels_workflows.permissions == toset(["workflows.executions.cancel"])
    error_message = "the queue's custom role grants more than cancelling executions"
  }
  # Every function reads both secrets, and nothing else reads them.
  assert {
    condition = length(google_secret_manager_secret_iam_member.functions) == 2 * length(google_service_account.function) && alltrue([
      for grant in google_secret_manager_secret_iam_member.functions : grant.role == "roles/secretmanager.secretAccessor"
    ])
    error_message = "every function must read exactly the two secrets"
  }
  # Bucket roles of the functions, by function.
  assert {
    condition = ({ for key, grant in google_storage_bucket_iam_member.function_readers : key => "${grant.bucket} ${grant.role}" } == {
      "on-upload/uploads"        = "demo-project-splatflow-uploads roles/storage.objectViewer"
      "trigger/uploads"          = "demo-project-splatflow-uploads roles/storage.objectViewer"
      "preprocess-video/uploads" = "demo-project-splatflow-uploads roles/storage.objectViewer"
      "status/work"              = "demo-project-splatflow-work roles/storage.objectViewer"
      }
      && toset(keys(google_storage_bucket_iam_member.status_objects)) == toset(["dispatch", "expire-leases", "on-upload", "queue", "reconcile"])
      && alltrue([for grant in google_storage_bucket_iam_member.status_objects : grant.role == "roles/storage.objectUser"])
      && google_storage_bucket_iam_member.uploads_creates_objects.bucket == "demo-project-splatflow-uploads"
    && google_storage_bucket_iam_member.uploads_creates_objects.role == "roles/storage.objectCreator")
    error_message = "a function's bucket roles changed"
  }
  assert {
    condition = alltrue([for grant in google_storage_bucket_iam_member.status_objects :
    grant.condition[0].expression == "resource.name.startsWith(\"projects/_/buckets/demo-project-splatflow-uploads/objects/status/\")"])
    error_message = "status object writers must be limited to the status prefix"
  }
  # Stage jobs: work read/write, assets read; frames also reads uploads.
  assert {
    condition = { for key, grant in google_storage_bucket_iam_member.job_buckets : key => "${grant.bucket} ${grant.role}" } == merge(
      { for stage, _ in local.stages : "${stage}/work" => "demo-project-splatflow-work roles/storage.objectUser" },
      { for stage, _ in local.stages : "${stage}/assets" => "demo-project-splatflow-assets roles/storage.objectViewer" },
      { "frames/uploads" = "demo-project-splatflow-uploads roles/storage.objectViewer" },
    )
    error_message = "a stage job's bucket roles are not work (read/write) and assets (read), plus uploads for frames"
  }
  # The workflow: runs each stage job with overrides (the only holder), follows executions, logs, reads work.
  assert {
    condition = (alltrue([for stage, job in google_cloud_run_v2_job.stage :
      google_cloud_run_v2_job_iam_member.workflow_runs_stages[stage].name == job.name &&
      google_cloud_run_v2_job_iam_member.workflow_runs_stages[stage].role == "roles/run.jobsExecutorWithOverrides" &&
      google_cloud_run_v2_job_iam_member.workflow_runs_stages[stage].member == google_service_account.workflow.member])
      && google_project_iam_member.workflow_watches_runs.member == google_service_account.workflow.member
      && google_project_iam_member.workflow_watches_runs.role == google_project_iam_custom_role.workflow_watches_runs.id
      && google_project_iam_member.workflow_logs.member == google_service_account.workflow.member
      && google_project_iam_member.workflow_logs.role == "roles/logging.logWriter"
      && google_storage_bucket_iam_member.workflow_reads_work.member == google_service_account.workflow.member
    && google_storage_bucket_iam_member.workflow_reads_work.role == "roles/storage.objectViewer")
    error_message = "the workflow's roles changed"
  }
  assert {
    condition = google_project_iam_custom_role.workflow_watches_runs.permissions == toset(["run.operations.get", "run.executions.get", "run.executions.cancel"])
    error_message = "the workflow's custom role grants more than following and cancelling executions"
  }
  assert {
    condition = (sort([for grant in google_project_iam_member.build : grant.role]) == tolist(["roles/cloudbuild.builds.builder", "roles/logging.logWriter"])
      && alltrue([for grant in google_project_iam_member.build : grant.member == google_service_account.build.member])
      && google_artifact_registry_repository_iam_member.build_pushes_images.role == "roles/artifactregistry.writer"
      && google_artifact_registry_repository_iam_member.build_pushes_images.member == google_service_account.build.member
      && google_storage_bucket_iam_member.build_reads_sources.member == google_service_account.build.member
    && google_storage_bucket_iam_member.build_reads_sources.bucket == "demo-project-splatflow-sources")
    error_message = "the build account's roles changed"
  }
  assert {
    condition     = google_project_iam_member.eventarc.role == "roles/eventarc.eventReceiver" && google_project_iam_member.gcs_publisher.role == "roles/pubsub.publisher"
    error_message = "Eventarc's and the Cloud Storage agent's roles changed"
  }

  # ---- stage jobs: one per stage of jobs/definitions.json, GPU ones on an L4 ----
  assert {
    condition     = keys(google_cloud_run_v2_job.stage) == keys(local.stages)
    error_message = "a stage of jobs/definitions.json has no job"
  }
  assert {
    condition = alltrue([for stage, definition in local.stages :
      google_cloud_run_v2_job.stage[stage].template[0].template[0].containers[0].resources[0].limits == tomap(merge(
        { cpu = definition.cpu, memory = definition.memory },
        definition.gpu > 0 ? { "nvidia.com/gpu" = tostring(definition.gpu) } : {},
      ))
    ])
    error_message = "a job's limits are not its definition's cpu, memory and GPU count"
  }
  assert {
    condition = alltrue([for stage, definition in local.stages :
      definition.gpu > 0 ? (
        google_cloud_run_v2_job.stage[stage].template[0].template[0].node_selector[0].accelerator == "nvidia-l4"
        && google_cloud_run_v2_job.stage[stage].template[0].template[0].gpu_zonal_redundancy_disabled == true
        && google_cloud_run_v2_job.stage[stage].launch_stage == "BETA"
        ) : (
        length(google_cloud_run_v2_job.stage[stage].template[0].template[0].node_selector) == 0
      )
    ])
    error_message = "GPU stages must run on an NVIDIA L4 (zonal redundancy off), CPU stages on none"
  }
  assert {
    condition     = length([for stage, definition in local.stages : stage if definition.gpu > 0]) > 0
    error_message = "no GPU stage: the GPU checks above checked nothing"
  }
  assert {
    condition = alltrue([for stage, definition in local.stages :
      google_cloud_run_v2_job.stage[stage].template[0].template[0].containers[0].image == var.images[definition.image]
      && google_cloud_run_v2_job.stage[stage].template[0].template[0].containers[0].command == tolist(definition.command)
      && google_cloud_run_v2_job.stage[stage].template[0].template[0].timeout == "${definition.timeout_seconds}s"
      && google_cloud_run_v2_job.stage[stage].template[0].template[0].max_retries == definition.max_retries
      && google_cloud_run_v2_job.stage[stage].template[0].template[0].service_account == google_service_account.job[stage].email
    ])
    error_message = "a job's image, command, timeout, retries or account is not its definition's"
  }

  # ---- the workflow runs the jobs its YAML names ----
  assert {
    condition = alltrue([for stage in regexall("stage: ([a-z]+),", google_workflows_workflow.reconstruct.source_contents) :
    contains([for job in google_cloud_run_v2_job.stage : job.name], "${google_workflows_workflow.reconstruct.user_env_vars.JOB_PREFIX}${stage[0]}")])
    error_message = "the workflow names a stage whose job (JOB_PREFIX + stage) is not deployed"
  }
  assert {
    condition     = length(regexall("stage: ([a-z]+),", google_workflows_workflow.reconstruct.source_contents)) >= 7
    error_message = "the workflow's run_stage calls were not found: the check above checked nothing"
  }
  assert {
    condition = (google_workflows_workflow.reconstruct.user_env_vars.QUEUE_URL == google_cloudfunctions2_function.this["queue"].service_config[0].uri
      && keys(jsondecode(google_workflows_workflow.reconstruct.user_env_vars.STAGE_TIMEOUTS)) == keys(local.stages)
    && google_workflows_workflow.reconstruct.service_account == google_service_account.workflow.id)
    error_message = "the workflow's queue URL, stage timeouts or account is wrong"
  }

  # ---- the functions' environment ----
  assert {
    condition = alltrue([for name, function in google_cloudfunctions2_function.this :
    function.service_config[0].environment_variables.AUTH_AUDIENCE == "https://us-central1-demo-project.cloudfunctions.net/splatflow-${name}"])
    error_message = "AUTH_AUDIENCE must be each function's own URL"
  }
  assert {
    condition = alltrue([for name, function in google_cloudfunctions2_function.this :
      function.service_config[0].environment_variables.AUTO_DISPATCH == tostring(name == "dispatch")
      && function.service_config[0].environment_variables.AUTH_MODE == "google"
      && function.service_config[0].environment_variables.STATUS_URL == "https://us-central1-demo-project.cloudfunctions.net/splatflow-status/status"
      && function.service_config[0].environment_variables.WORKFLOW_NAME == google_workflows_workflow.reconstruct.name
      && function.service_config[0].environment_variables.NODE_ENV == "production"
      && function.service_config[0].service_account_email == google_service_account.function[name].email
      && toset([for secret in function.service_config[0].secret_environment_variables : secret.key]) == toset(["REDIS_PASSWORD", "WEBHOOK_SECRET"])
    ])
    error_message = "a function's environment, account or secrets are wrong"
  }
  assert {
    condition = alltrue([for name, function in google_cloudfunctions2_function.this :
      function.build_config[0].entry_point == local.functions[name].entry_point
      && function.build_config[0].source[0].storage_source[0].object == google_storage_bucket_object.functions.name
    ])
    error_message = "a function's entry point or source archive is wrong"
  }
  assert {
    condition     = output.trigger_url == "https://us-central1-demo-project.cloudfunctions.net/splatflow-trigger/trigger-reconstruction"
    error_message = "trigger_url must be on the URL the function's token audience names"
  }
  # The archive the functions deploy was zipped, under the name the object carries.
  assert {
    condition     = fileexists(google_storage_bucket_object.functions.source) && endswith(google_storage_bucket_object.functions.source, google_storage_bucket_object.functions.name)
    error_message = "the functions' source archive was not made"
  }
}

run "public_status_and_api_callers" {
  command = apply
  variables {
    public_status_endpoint = true
    api_invoker_members    = ["user:alice@example.com"]
  }

  assert {
    condition = (length(google_cloud_run_v2_service_iam_member.status_public) == 1
    && google_cloud_run_v2_service_iam_member.status_public[0].name == "splatflow-status")
    error_message = "public_status_endpoint opens the status function"
  }
  assert {
    condition = sort([for key, grant in google_cloud_run_v2_service_iam_member.invokers : grant.name if grant.member == "user:alice@example.com"]) == tolist([
    "splatflow-preprocess-video", "splatflow-status", "splatflow-trigger", "splatflow-uploads"])
    error_message = "an API caller may invoke exactly trigger, preprocess-video, uploads and status"
  }
  assert {
    condition = length([for grant in google_cloud_run_v2_service_iam_member.invokers : grant
    if contains(["allUsers", "allAuthenticatedUsers"], grant.member)]) == 0
    error_message = "only the status function may be public"
  }
}

run "refuses_public_api_callers" {
  command = plan
  variables {
    api_invoker_members = ["allUsers"]
  }
  expect_failures = [var.api_invoker_members]
}

run "another_region" {
  command = apply
  variables {
    region = "europe-west4"
  }

  assert {
    condition = (alltrue([for job in google_cloud_run_v2_job.stage : job.location == "europe-west4"])
      && alltrue([for function in google_cloudfunctions2_function.this : function.location == "europe-west4"])
      && alltrue([for bucket in google_storage_bucket.this : bucket.location == "europe-west4"])
      && google_redis_instance.queue.region == "europe-west4"
      && google_workflows_workflow.reconstruct.region == "europe-west4"
      && google_compute_subnetwork.functions.region == "europe-west4"
      && google_firestore_database.this.location_id == "europe-west4"
      && alltrue([for secret in google_secret_manager_secret.this : secret.replication[0].user_managed[0].replicas[0].location == "europe-west4"])
    && alltrue([for job in google_cloud_scheduler_job.this : job.region == "europe-west4"]))
    error_message = "a regional resource is not in var.region"
  }
  assert {
    condition = alltrue([for name, function in google_cloudfunctions2_function.this :
    function.service_config[0].environment_variables.AUTH_AUDIENCE == "https://europe-west4-demo-project.cloudfunctions.net/splatflow-${name}"])
    error_message = "AUTH_AUDIENCE must follow the region"
  }
}
