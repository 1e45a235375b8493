"""S3 settings for Spark from the environment variables Onyxia sets in every service.

Onyxia (and most S3-compatible platforms) exposes the storage through AWS_S3_ENDPOINT,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_DEFAULT_REGION.
Spark reads ``s3a://`` paths through Hadoop's S3A connector, configured by
``spark.hadoop.fs.s3a.*`` settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENDPOINT_VAR = "AWS_S3_ENDPOINT"
REGION_VAR = "AWS_DEFAULT_REGION"
CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
S3_ENV_VARS = (ENDPOINT_VAR, *CREDENTIAL_VARS, REGION_VAR)

SECRET_SETTINGS = (
    "spark.hadoop.fs.s3a.access.key",
    "spark.hadoop.fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.session.token",
)


def s3a_conf(
    environ: Mapping[str, str] | None = None, credentials: bool = True
) -> dict[str, str]:
    """Map the AWS_* variables to S3A settings; {} when no endpoint is set.

    ``credentials=False`` leaves the keys out: the pods then read them from their own
    AWS_* variables (S3A's default credential chain), e.g. filled from a Secret.
    """
    environ = os.environ if environ is None else environ
    endpoint = environ.get(ENDPOINT_VAR, "").strip()
    if not endpoint:
        return {}
    secure = not endpoint.startswith("http://")
    host = endpoint.removeprefix("https://").removeprefix("http://").rstrip("/")
    conf = {
        "spark.hadoop.fs.s3a.endpoint": host,
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(secure).lower(),
        # MinIO (Onyxia's S3) serves buckets as paths, not as sub-domains.
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }
    region = environ.get(REGION_VAR, "").strip()
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    if not credentials:
        return conf
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key and not secret:
        return conf
    if not (key and secret):
        missing = "AWS_SECRET_ACCESS_KEY" if key else "AWS_ACCESS_KEY_ID"
        raise ValueError(
            f"{ENDPOINT_VAR} and one S3 key are set, but {missing} is missing"
        )
    conf["spark.hadoop.fs.s3a.access.key"] = key
    conf["spark.hadoop.fs.s3a.secret.key"] = secret
    token = environ.get("AWS_SESSION_TOKEN")
    if token:
        conf["spark.hadoop.fs.s3a.session.token"] = token
        provider = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    else:
        provider = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = provider
    return conf


def redact(conf: Mapping[str, str]) -> dict[str, str]:
    """Same settings, secrets masked: for printing."""
    return {k: ("*****" if k in SECRET_SETTINGS else v) for k, v in conf.items()}
