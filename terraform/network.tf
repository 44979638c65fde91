# Network egress: Direct VPC egress, not a Serverless VPC Access connector.
#
# Only the functions need the VPC (to reach Memorystore's private IP). Direct VPC egress puts
# their instances straight on the subnet: no connector VMs to pay for while idle (scale to zero
# is the point of this system), no connector throughput ceiling, and one less resource to size.
# Only private ranges go through the VPC; Google APIs and webhooks leave the normal way.
# The stage jobs talk only to Google APIs (Cloud Storage), so they are not attached at all.

resource "google_compute_network" "this" {
  name                    = var.name_prefix
  auto_create_subnetworks = false
  depends_on              = [google_project_service.this]
}

resource "google_compute_subnetwork" "functions" {
  name                     = "${var.name_prefix}-functions"
  network                  = google_compute_network.this.id
  region                   = var.region
  ip_cidr_range            = var.functions_subnet_cidr
  private_ip_google_access = true
}

# Private service access: the peered range Memorystore takes its address from.
resource "google_compute_global_address" "private_services" {
  name          = "${var.name_prefix}-private-services"
  network       = google_compute_network.this.id
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 24
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]

  # Deleting the peering fails while the producer (Redis) is still being torn down; abandoning it
  # lets `terraform destroy` finish and the network deletion removes it.
  deletion_policy = "ABANDON"
}
