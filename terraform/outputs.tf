output "trigger_url" {
  description = "POST a reconstruction request here (JSON with session_id and input; Google ID token required)."
  value       = "${local.function_urls["trigger"]}/trigger-reconstruction"
}

output "preprocess_url" {
  description = "POST here to run frames, filter and sparse reconstruction only."
  value       = "${local.function_urls["preprocess-video"]}/preprocess-video"
}

output "uploads_url" {
  description = "POST {session_id, file_name} here for a signed URL to PUT one file to in your own upload folder (Google ID token required)."
  value       = "${local.function_urls["uploads"]}/uploads"
}

output "status_url" {
  description = "GET with ?callback_token=… for a request's status and, when done, signed result URLs."
  value       = local.status_url
}

output "upload_bucket" {
  description = "Uploading a video or an image set here starts a reconstruction."
  value       = google_storage_bucket.this["uploads"].name
}

output "webhook_secret_command" {
  description = "Prints the key that signs webhook deliveries (X-Splatflow-Signature)."
  value       = "gcloud secrets versions access latest --secret=${google_secret_manager_secret.this["webhook-secret"].secret_id} --project=${var.project_id}"
}

output "assets_bucket" {
  description = "Where models the stages read go (the depth model: see stage_environment)."
  value       = google_storage_bucket.this["assets"].name
}

output "image_repository" {
  description = "Artifact Registry path that build-images.sh pushes to."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "first_upload" {
  description = "How to start a first reconstruction."
  value       = "gcloud storage cp my-video.mp4 gs://${google_storage_bucket.this["uploads"].name}/${var.uploads_prefix}my-video.mp4"
}
