# `terraform test`: each run plans (or applies) the configuration in memory and checks it.
variables {
  image_tag = "0.1.0"
}

run "staging_keeps_the_requested_replicas" {
  command = plan

  assert {
    condition     = terraform_data.deployment.input.replicas == 2
    error_message = "staging should deploy the 2 replicas asked for"
  }
  assert {
    condition     = terraform_data.deployment.input.name == "resilia-api-staging"
    error_message = "the deployment name should carry the environment"
  }
}

run "prod_never_runs_a_single_replica" {
  command = apply

  variables {
    environment = "prod"
    replicas    = 1
  }

  assert {
    condition     = output.replicas == 2
    error_message = "prod should run at least 2 replicas"
  }
}

run "latest_is_refused" {
  command = plan

  variables {
    image_tag = "latest"
  }

  expect_failures = [var.image_tag]
}

run "unknown_environment_is_refused" {
  command = plan

  variables {
    environment = "production"
  }

  expect_failures = [var.environment]
}
