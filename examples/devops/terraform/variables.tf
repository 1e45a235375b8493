variable "environment" {
  description = "Environment of the resilia service: dev, staging or prod."
  type        = string
  default     = "staging"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "image_tag" {
  description = "Tag of the resilia-api image to deploy (a version such as 0.1.0, or sha-<7 hex>)."
  type        = string

  validation {
    condition     = can(regex("^(\\d+\\.\\d+\\.\\d+|sha-[0-9a-f]{7})$", var.image_tag))
    error_message = "image_tag must be a version (0.1.0) or a commit tag (sha-1a2b3c4), never latest."
  }
}

variable "replicas" {
  description = "Number of API replicas."
  type        = number
  default     = 2

  validation {
    condition     = var.replicas >= 1 && var.replicas <= 10 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number between 1 and 10."
  }
}
