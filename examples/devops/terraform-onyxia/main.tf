# The resilia model in your bucket on Onyxia's object storage (MinIO, S3 API).
# Not applied by the book's tests (the provider is downloaded by `terraform init`,
# and the credentials are yours): run it from an Onyxia service, where the AWS_*
# variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) are set.
terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

variable "bucket" {
  description = "Your personal bucket on Onyxia: your user name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket))
    error_message = "bucket must be an S3 bucket name (lower case letters, digits, dots, hyphens)."
  }
}

variable "model_file" {
  description = "The trained model to upload (resilia train writes artifacts/<env>/model.joblib)."
  type        = string
  default     = "artifacts/staging/model.joblib"
}

# MinIO speaks the S3 API: the AWS provider is pointed at it, and told not to check
# what only AWS has (accounts, regions, the instance metadata service).
provider "aws" {
  region                      = "us-east-1"
  s3_use_path_style           = true
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true

  endpoints {
    s3 = "https://minio.lab.sspcloud.fr"
  }
}

resource "aws_s3_object" "model" {
  bucket = var.bucket
  key    = "resilia/models/model.joblib"
  source = var.model_file
  etag   = filemd5(var.model_file)
}

output "model_uri" {
  value = "s3://${aws_s3_object.model.bucket}/${aws_s3_object.model.key}"
}
