output "name" {
  description = "Name of the deployment."
  value       = terraform_data.deployment.output.name
}

output "image" {
  description = "Image deployed."
  value       = terraform_data.deployment.output.image
}

output "replicas" {
  description = "Replicas actually deployed (at least 2 in prod)."
  value       = terraform_data.deployment.output.replicas
}
