# The path of an upload event: Cloud Storage publishes to Pub/Sub, Eventarc delivers to onUpload
# (trigger declared on the function in functions.tf, retries on: the handler dedups by
# bucket/object/generation, so redelivery is safe).

data "google_storage_project_service_account" "gcs" {
  depends_on = [google_project_service.this]
}

resource "google_project_iam_member" "gcs_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = data.google_storage_project_service_account.gcs.member
}

resource "google_service_account" "eventarc" {
  account_id   = "${var.name_prefix}-eventarc"
  display_name = "splatflow: Eventarc delivery of upload events"
  depends_on   = [google_project_service.this]
}

resource "google_project_iam_member" "eventarc" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.eventarc.member
}
