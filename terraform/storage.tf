# Buckets, all private with uniform access:
# - uploads: user input; a finalized object starts a request;
# - work: one folder per request, requests/{id}/{stage}/ (the stage contract, jobs/README.md): every
#   stage's outputs, the intermediate ones and the results the status endpoint signs URLs for. A
#   request's files expire together: lifecycle rules match name prefixes, and the request id comes
#   before the stage, so scratch cannot expire apart from results;
# - assets: what stages read besides a request, such as the depth model (stage_environment names it);
# - sources: function source archives.

locals {
  buckets = {
    uploads = { retention_days = var.upload_retention_days }
    work    = { retention_days = var.request_retention_days }
    assets  = { retention_days = 0 }
    sources = { retention_days = 0 }
  }
}

resource "google_storage_bucket" "this" {
  for_each = local.buckets

  name                        = "${var.project_id}-${var.name_prefix}-${each.key}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = local.labels

  # Uploads and request folders expire; 0 keeps objects (function sources are replaced by content hash).
  dynamic "lifecycle_rule" {
    for_each = each.value.retention_days > 0 ? [each.value.retention_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # Uploads interrupted part-way leave parts behind; they are never useful after a day.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.this]
}

# Container images of the stage jobs (built by build-images.sh).
resource "google_artifact_registry_repository" "images" {
  repository_id = var.name_prefix
  location      = var.region
  format        = "DOCKER"
  description   = "splatflow stage job images"
  labels        = local.labels

  # Old builds go after 30 days, but the 5 newest of each image stay (a deployment may still use one).
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  depends_on = [google_project_service.this]
}
