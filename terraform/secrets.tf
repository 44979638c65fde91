# Secrets live in Secret Manager and reach the functions as secret environment variables: they
# never appear in an environment listing or a log. The Redis AUTH string is REDIS_PASSWORD.
resource "google_secret_manager_secret" "redis_auth" {
  secret_id = "${var.name_prefix}-redis-auth"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "redis_auth" {
  secret      = google_secret_manager_secret.redis_auth.id
  secret_data = google_redis_instance.queue.auth_string
}

# The key that signs webhook deliveries (X-Splatflow-Signature); receivers read it with
# `gcloud secrets versions access latest --secret=<prefix>-webhook-secret`.
resource "random_password" "webhook" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  secret_id = "${var.name_prefix}-webhook-secret"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "webhook" {
  secret      = google_secret_manager_secret.webhook.id
  secret_data = random_password.webhook.result
}

locals {
  # Secret environment variables of every function, pinned to a version so a new one redeploys.
  function_secrets = {
    REDIS_PASSWORD = {
      secret  = google_secret_manager_secret.redis_auth.secret_id
      version = google_secret_manager_secret_version.redis_auth.version
    }
    WEBHOOK_SECRET = {
      secret  = google_secret_manager_secret.webhook.secret_id
      version = google_secret_manager_secret_version.webhook.version
    }
  }
}
