# Only Terraform's built-in features: no provider to download, so it runs offline.
terraform {
  required_version = ">= 1.9"
}
