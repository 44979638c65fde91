# One Cloud Run Job per stage, straight from jobs/definitions.json (the file the local launcher
# reads too, so local and cloud runs cannot drift). The workflow runs them with per-execution
# environment overrides (request id, input, prefix, params: see jobs/README.md).
locals {
  # The frames job's ceilings on an input (jobs/frames/limits.ts): a request's params may only lower them.
  input_limits_env = {
    SPLATFLOW_MAX_INPUT_BYTES  = tostring(var.upload_max_bytes)
    SPLATFLOW_MAX_DURATION_S   = tostring(var.max_video_seconds)
    SPLATFLOW_MAX_VIDEO_PIXELS = tostring(var.max_video_pixels)
    SPLATFLOW_MAX_IMAGES       = tostring(var.max_photos)
    SPLATFLOW_MAX_IMAGE_PIXELS = tostring(var.max_photo_pixels)
  }
}

resource "google_cloud_run_v2_job" "stage" {
  for_each = local.stages

  name                = "${var.name_prefix}-${each.key}"
  location            = var.region
  deletion_protection = var.deletion_protection
  labels              = merge(local.labels, { stage = each.key })

  # GPUs on Cloud Run jobs arrived as a beta feature; BETA admits them either way.
  launch_stage = each.value.gpu > 0 ? "BETA" : null

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = google_service_account.job[each.key].email
      timeout         = "${each.value.timeout_seconds}s"
      max_retries     = each.value.max_retries

      containers {
        image = var.images[each.value.image]

        # The whole argv as the entrypoint, so an args override can never drop the program.
        command = each.value.command

        resources {
          limits = merge(
            { cpu = each.value.cpu, memory = each.value.memory },
            { for key, count in { "nvidia.com/gpu" = tostring(each.value.gpu) } : key => count if each.value.gpu > 0 },
          )
        }

        dynamic "env" {
          # The frames stage checks the input against the locations the functions admit.
          for_each = merge(lookup(var.stage_environment, each.key, {}), {
            SPLATFLOW_STAGE           = each.key
            SPLATFLOW_INPUT_LOCATIONS = join(",", local.input_locations)
          }, each.key == "frames" ? local.input_limits_env : {})
          content {
            name  = env.key
            value = env.value
          }
        }
      }

      dynamic "node_selector" {
        for_each = each.value.gpu > 0 ? [each.value.gpu] : []
        content {
          accelerator = "nvidia-l4"
        }
      }
      # Best-effort zonal placement: cheaper GPU seconds, and its quota is the one usually granted.
      gpu_zonal_redundancy_disabled = each.value.gpu > 0 ? true : null
    }
  }

  lifecycle {
    precondition {
      condition     = length(setsubtract(keys(var.stage_environment), keys(local.stages))) == 0
      error_message = "stage_environment names stages jobs/definitions.json does not define: ${join(", ", setsubtract(keys(var.stage_environment), keys(local.stages)))}."
    }
    precondition {
      condition     = contains(keys(var.images), each.value.image)
      error_message = "No image for ${each.value.image} (stage ${each.key}): run terraform/build-images.sh and pass its output as var.images."
    }
  }

  depends_on = [google_project_service.this]
}
