"""Create the platform's S3 buckets when missing (Helm hook Job; idempotent).

Run as `python /scripts/create_buckets.py BUCKET [BUCKET ...]` in the sentiment-mlflow image (it has boto3).
Endpoint, region and credentials come from AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, so MinIO and any external S3 work alike. Retries while the endpoint starts.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

ATTEMPTS = 60
DELAY_SECONDS = 3.0
MISSING = {"404", "NoSuchBucket", "NotFound"}
ALREADY_OURS = {"BucketAlreadyOwnedByYou"}


def ensure_bucket(s3: Any, name: str, region: str) -> bool:
    """Create bucket `name` unless it exists; True when this call created it."""
    try:
        s3.head_bucket(Bucket=name)
        return False
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) not in MISSING:
            raise
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ALREADY_OURS:
            return False
        raise
    return True


def main(buckets: list[str]) -> int:
    if not buckets:
        print("create-buckets: no bucket given", file=sys.stderr)
        return 2
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            for name in buckets:
                created = ensure_bucket(s3, name, region)
                print(f"create-buckets: s3://{name} {'created' if created else 'already exists'}", flush=True)
            return 0
        except (BotoCoreError, ClientError) as exc:
            if attempt == ATTEMPTS:
                print(f"create-buckets: giving up after {attempt} attempts: {exc}", file=sys.stderr)
                return 1
            print(f"create-buckets: {endpoint} not ready ({exc}); retry {attempt}/{ATTEMPTS}", file=sys.stderr)
            time.sleep(DELAY_SECONDS)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
