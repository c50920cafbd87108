"""Create the S3 buckets the platform uses, idempotently (the compose `bucket-init` one-shot service).

Usage: python create_buckets.py [BUCKET ...]   (default: mlflow dvc)
Endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, so any
S3-compatible store works, not only MinIO.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_BUCKETS = ("mlflow", "dvc")
ATTEMPTS = 30
DELAY_SECONDS = 2.0


def ensure_bucket(s3: Any, name: str) -> bool:
    """Create `name` unless it exists. Returns True when it was created."""
    try:
        s3.head_bucket(Bucket=name)
        return False
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    try:
        s3.create_bucket(Bucket=name)
    except ClientError as exc:
        # Another writer won the race: the bucket exists, which is all we want.
        if exc.response.get("Error", {}).get("Code") in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            return False
        raise
    return True


def main(argv: list[str]) -> int:
    buckets = argv or list(DEFAULT_BUCKETS)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            for name in buckets:
                created = ensure_bucket(s3, name)
                print(f"bucket-init: s3://{name} {'created' if created else 'already exists'}", flush=True)
            return 0
        except (BotoCoreError, ClientError) as exc:
            if attempt == ATTEMPTS:
                print(f"bucket-init: giving up after {attempt} attempts: {exc}", file=sys.stderr)
                return 1
            print(f"bucket-init: {endpoint} not ready ({exc}); retry {attempt}/{ATTEMPTS}", file=sys.stderr)
            time.sleep(DELAY_SECONDS)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
