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

  labels = { app = "splatflow" }
}
