"""`helm test` checks: every HTTP health endpoint of the release answers, and the S3 buckets exist.

Run as `python /scripts/helm_test.py` in the sentiment-mlflow image (it has boto3). Reads:
  CHECKS   JSON list of {"name": str, "url": str}; each URL must answer 200 (with the default Host header,
           i.e. the service name: this also proves MLflow's --allowed-hosts).
  S3_BUCKETS  space-separated bucket names that must exist (optional; AWS_* env gives endpoint and keys).
  S3_DENIED_BUCKETS  space-separated bucket names these keys must be refused (403): least privilege holds.
  HELM_TEST_ATTEMPTS, HELM_TEST_DELAY_SECONDS  retries per URL (default 10 x 3 s).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

ATTEMPTS = int(os.environ.get("HELM_TEST_ATTEMPTS", "10"))
DELAY_SECONDS = float(os.environ.get("HELM_TEST_DELAY_SECONDS", "3"))


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (in-cluster http URLs)
            return response.status, response.read(300).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(300).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def check_url(name: str, url: str) -> bool:
    status, body = 0, ""
    for _ in range(ATTEMPTS):
        status, body = fetch(url)
        if status == 200:
            print(f"ok   {name}: GET {url} -> 200", flush=True)
            return True
        time.sleep(DELAY_SECONDS)
    print(f"FAIL {name}: GET {url} -> {status} {body!r}", flush=True)
    return False


def check_buckets(buckets: list[str], denied: list[str]) -> bool:
    """`buckets` answer with these keys; `denied` refuse them (403): the keys are limited to their bucket."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    ok = True
    for bucket in buckets:
        try:
            s3.head_bucket(Bucket=bucket)
            print(f"ok   s3: bucket {bucket} exists", flush=True)
        except (BotoCoreError, ClientError) as exc:
            print(f"FAIL s3: bucket {bucket}: {exc}", flush=True)
            ok = False
    for bucket in denied:
        try:
            s3.head_bucket(Bucket=bucket)
            print(f"FAIL s3: bucket {bucket} answers these keys; they should be limited to {buckets}", flush=True)
            ok = False
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"403", "AccessDenied"}:
                print(f"ok   s3: bucket {bucket} refuses these keys (403)", flush=True)
            else:
                print(f"FAIL s3: bucket {bucket}: expected 403, got {code}: {exc}", flush=True)
                ok = False
        except BotoCoreError as exc:
            print(f"FAIL s3: bucket {bucket}: {exc}", flush=True)
            ok = False
    return ok


def main() -> int:
    checks = json.loads(os.environ.get("CHECKS", "[]"))
    results = [check_url(c["name"], c["url"]) for c in checks]
    buckets = os.environ.get("S3_BUCKETS", "").split()
    if buckets:
        results.append(check_buckets(buckets, os.environ.get("S3_DENIED_BUCKETS", "").split()))
    if not results:
        print("FAIL nothing to check", flush=True)
        return 1
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
