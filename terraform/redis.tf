# Memorystore for Redis 7: queue order, leases, rate-limit windows, dedup keys. AUTH on, in-transit
# TLS on, reachable only through private service access from the functions' subnet.
resource "google_redis_instance" "queue" {
  name                    = var.name_prefix
  tier                    = var.redis_tier
  memory_size_gb          = var.redis_memory_size_gb
  region                  = var.region
  redis_version           = "REDIS_7_0"
  authorized_network      = google_compute_network.this.id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  labels                  = local.labels

  # Never evict: a silently dropped lease, dedup key or queue entry is worse than a full Redis,
  # which refuses writes (the functions answer 503) until it is resized.
  redis_configs = {
    maxmemory-policy = "noeviction"
  }

  depends_on = [google_service_networking_connection.private_services]
}
