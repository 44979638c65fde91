variable "project_id" {
  description = "Google Cloud project to deploy into (one splatflow deployment per project)."
  type        = string
}

variable "region" {
  description = "Region of every regional resource. Must offer NVIDIA L4 GPUs for Cloud Run jobs (for example us-central1, europe-west1, europe-west4, asia-southeast1)."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name; short, because service account ids are limited to 30 characters."
  type        = string
  default     = "splatflow"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,9}$", var.name_prefix))
    error_message = "name_prefix: 2 to 10 characters, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "images" {
  description = "Container image of each image named in jobs/definitions.json (node-cpu, node-cuda, colmap, gsplat), as printed by terraform/build-images.sh."
  type        = map(string)
}

variable "stage_environment" {
  description = "Extra environment of stage jobs, by stage: for example { depth = { SPLATFLOW_DEPTH_MODEL_URI = \"gs://<project>-<prefix>-assets/depth_anything_v2_vits.onnx\", SPLATFLOW_DEPTH_MODEL_SHA256 = \"…\" } }."
  type        = map(map(string))
  default     = {}
}

variable "api_invoker_members" {
  description = "IAM members allowed to call the trigger, preprocess-video, uploads and status functions (for example user:alice@example.com, serviceAccount:app@p.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for member in var.api_invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "api_invoker_members must name identities; use public_status_endpoint to open the status endpoint."
  }
}

variable "public_status_endpoint" {
  description = "Let anyone call the status function (it still requires a valid callback token). Off by default: nothing is publicly invokable."
  type        = bool
  default     = false
}

variable "uploads_prefix" {
  description = "Folder of the uploads bucket whose videos and image sets start requests (ends with /)."
  type        = string
  default     = "uploads/"
  validation {
    condition     = can(regex("^([A-Za-z0-9._-]+/)*$", var.uploads_prefix))
    error_message = "uploads_prefix: folder names separated and ended by /, or empty."
  }
}

variable "extra_input_locations" {
  description = "More Cloud Storage folders (gs://BUCKET/PREFIX/) requests may name as input, besides the uploads folder; each caller still only its own scope folder under them. The frames job needs read access to them."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for location in var.extra_input_locations : can(regex("^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/([A-Za-z0-9._-]+/)*$", location))])
    error_message = "extra_input_locations: gs://BUCKET/PREFIX/ folders, each ending with /."
  }
}

variable "max_concurrent_reconstructions" {
  description = "How many reconstructions run at once (bounded by your Cloud Run L4 GPU quota)."
  type        = number
  default     = 2
}

variable "function_max_instances" {
  description = "Maximum instances of each function."
  type        = number
  default     = 10
}

variable "log_level" {
  description = "Log level of the functions: DEBUG, INFO, WARNING or ERROR."
  type        = string
  default     = "INFO"
  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "redis_tier" {
  description = "Memorystore tier: BASIC (one node) or STANDARD_HA (replicated, automatic failover)."
  type        = string
  default     = "BASIC"
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore capacity in GiB."
  type        = number
  default     = 1
}

variable "functions_subnet_cidr" {
  description = "Address range of the subnet the functions' direct VPC egress uses (each instance takes one address)."
  type        = string
  default     = "10.8.0.0/24"
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region such as nam5); empty means the deployment region."
  type        = string
  default     = ""
}

variable "upload_retention_days" {
  description = "Days an upload is kept in the uploads bucket."
  type        = number
  default     = 30
}

variable "request_retention_days" {
  description = "Days a request's folder in the work bucket (intermediate files and results) is kept; 0 keeps it."
  type        = number
  default     = 30
}

variable "dispatch_schedule" {
  description = "Cron schedule (UTC) of the dispatcher's catch-up run."
  type        = string
  default     = "* * * * *"
}

variable "reconcile_schedule" {
  description = "Cron schedule (UTC) of the reconciler."
  type        = string
  default     = "*/5 * * * *"
}

variable "expire_leases_schedule" {
  description = "Cron schedule (UTC) of lease expiry."
  type        = string
  default     = "* * * * *"
}

variable "deletion_protection" {
  description = "Protect the database, workflow, jobs and bucket contents from `terraform destroy`. Set false (and apply) before tearing down."
  type        = bool
  default     = true
}

# Input limits: how big an input may be. Each is refused at the first point that can know it
# (docs/faults.md#inputs-of-any-size): the upload URL's signed length range and the upload handler for
# bytes, the frames job (SPLATFLOW_MAX_*, a ceiling no request's params can raise) for the rest.
variable "upload_max_bytes" {
  description = "Largest upload and input, bytes (signed into upload URLs; the frames job refuses a larger input)."
  type        = number
  default     = 4294967296
}

variable "max_video_seconds" {
  description = "Longest video, seconds (known once the frames job probes it)."
  type        = number
  default     = 600
}

variable "max_video_pixels" {
  description = "Largest video picture, width × height pixels (default 8K UHD)."
  type        = number
  default     = 33177600
}

variable "max_photos" {
  description = "Most photos in an image set (a zip's directory or a folder's listing says, before any is read)."
  type        = number
  default     = 1000
}

variable "max_photo_pixels" {
  description = "Largest photo, width × height pixels, read from its header before it is decoded."
  type        = number
  default     = 64000000
}
