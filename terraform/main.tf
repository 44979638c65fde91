# The whole splatflow system in one `terraform apply`; each concern lives in its own file:
# apis, storage (buckets, Artifact Registry), network, redis, secrets, firestore, functions,
# eventarc, scheduler, workflow, jobs, iam.

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  repo_root = abspath("${path.module}/..")

  # The one definition of every stage job, shared with the local launcher.
  job_definitions = jsondecode(file("${local.repo_root}/jobs/definitions.json"))
  stages          = local.job_definitions.stages

  # How long the workflow waits for a stage's execution before cancelling it: every attempt Cloud Run
  # may make of the task, each up to its timeout plus time to schedule a GPU and pull the image (the
  # rule and headroom of local/jobs/definitions.ts). Their sum, the longest a whole workflow can run, is
  # the dispatch lease (functions.tf).
  stage_timeouts = {
    for name, stage in local.stages : name => (stage.timeout_seconds + (stage.gpu > 0 ? 1200 : 300)) * (stage.max_retries + 1)
  }

  labels = { app = "splatflow" }
}
