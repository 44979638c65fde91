# tflint (terraform/validate): every rule of its bundled Terraform ruleset. The google ruleset
# (machine types, regions, deprecated attributes) is not served by the Go module proxy, so it is not
# used; `tofu validate` checks every attribute against the provider's own schema instead.
plugin "terraform" {
  enabled = true
  preset  = "all"
}
