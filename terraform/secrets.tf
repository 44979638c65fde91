# Secrets live in Secret Manager and reach the functions as secret environment variables: they
# never appear in an environment listing or a log.
# - redis-auth: Memorystore's AUTH string (REDIS_PASSWORD);
# - webhook-secret: the key that signs webhook deliveries (WEBHOOK_SECRET, X-Splatflow-Signature);
#   receivers read it with `terraform output -raw webhook_secret_command`.

resource "random_password" "webhook" {
  length  = 48
  special = false
}

locals {
  # Sensitive values cannot drive for_each, so the secrets are keyed by name and looked up here.
  secret_values = {
    redis-auth     = google_redis_instance.queue.auth_string
    webhook-secret = random_password.webhook.result
  }

  # Secret environment variables of every function, pinned to a version so a new one redeploys.
  function_secrets = {
    REDIS_PASSWORD = "redis-auth"
    WEBHOOK_SECRET = "webhook-secret"
  }
}

resource "google_secret_manager_secret" "this" {
  for_each  = toset(["redis-auth", "webhook-secret"])
  secret_id = "${var.name_prefix}-${each.key}"
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

resource "google_secret_manager_secret_version" "this" {
  for_each    = google_secret_manager_secret.this
  secret      = each.value.id
  secret_data = local.secret_values[each.key]
}
