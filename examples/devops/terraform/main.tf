locals {
  name  = "resilia-api-${var.environment}"
  image = "ghcr.io/example/mise-en-production/resilia-api:${var.image_tag}"
  # Production never runs a single replica, whatever the caller asked.
  replicas = var.environment == "prod" ? max(var.replicas, 2) : var.replicas
  labels = {
    "app.kubernetes.io/name"    = "resilia-api"
    "app.kubernetes.io/version" = var.image_tag
    environment                 = var.environment
  }
}

# A resource of Terraform itself: it stores its input in the state and is replaced
# when the image changes, like a real deployment would be rolled out again.
resource "terraform_data" "deployment" {
  input = {
    name     = local.name
    image    = local.image
    replicas = local.replicas
    labels   = local.labels
  }
  triggers_replace = [local.image]
}
