# The Redis AUTH string, kept in Secret Manager and injected into the functions as the secret
# environment variable REDIS_PASSWORD: it never appears in an environment listing or a log.
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
