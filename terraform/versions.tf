terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 8.0.0 is the release terraform/validate checks this configuration against (built from the Go
      # module proxy, which serves no 7.x); direct VPC egress for Cloud Functions (gen2) needs 7.21+.
      version = ">= 8.0, < 9.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
