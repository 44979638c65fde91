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

  # The queue is a working set, not a store: losing it costs a re-enqueue by the reconciler.
  redis_configs = {
    maxmemory-policy = "noeviction"
  }

  depends_on = [google_service_networking_connection.private_services]
}
