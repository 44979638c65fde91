# The request records: the durable truth (Memorystore may lose data on failover).
resource "google_firestore_database" "this" {
  name                    = "(default)"
  location_id             = var.firestore_location != "" ? var.firestore_location : var.region
  type                    = "FIRESTORE_NATIVE"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"

  depends_on = [google_project_service.this]
}

# The reconciler pages through the records of one status in request-id order
# (functions/records/store.ts `withStatus`): an equality filter with a range and order on another
# field needs a composite index (https://cloud.google.com/firestore/docs/query-data/index-overview).
resource "google_firestore_index" "requests_by_status" {
  database   = google_firestore_database.this.name
  collection = "requests"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "request_id"
    order      = "ASCENDING"
  }
}
