#!/bin/sh
# Give each component its own MinIO user, allowed one bucket only (Helm hook Job, after the buckets exist;
# idempotent: re-running updates the secret key and the policy).
#
# Usage: create_minio_identities.sh NAME BUCKET [NAME BUCKET ...]
#   For each NAME (e.g. mlflow), the env gives <NAME>_ACCESS_KEY and <NAME>_SECRET_KEY (upper-cased NAME).
#   AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are the admin keys (the same env as
#   create_buckets.py). Runs `mc` in the MinIO image; needs a writable HOME (mc keeps its aliases there).
set -eu

fail() { echo "create-minio-identities: $*" >&2; exit 1; }

[ $# -gt 0 ] && [ $(($# % 2)) -eq 0 ] || fail "usage: $0 NAME BUCKET [NAME BUCKET ...]"
: "${AWS_ENDPOINT_URL:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"

attempt=0
until mc alias set platform "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null 2>&1 \
  && mc admin info platform >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  [ "$attempt" -lt 60 ] || fail "MinIO at $AWS_ENDPOINT_URL did not answer the admin API after 60 attempts"
  echo "create-minio-identities: $AWS_ENDPOINT_URL not ready; retry $attempt/60" >&2
  sleep 3
done

while [ $# -gt 0 ]; do
  name=$1 bucket=$2
  shift 2
  upper=$(printf '%s' "$name" | tr '[:lower:]-' '[:upper:]_')
  user=$(printenv "${upper}_ACCESS_KEY") || fail "${upper}_ACCESS_KEY is not set"
  secret=$(printenv "${upper}_SECRET_KEY") || fail "${upper}_SECRET_KEY is not set"
  policy="sentiment-$name"
  file="${TMPDIR:-/tmp}/$policy.json"
  # Objects of one bucket and nothing else: no other bucket, no bucket creation or deletion, no admin API.
  cat >"$file" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
     "Resource": ["arn:aws:s3:::$bucket"]},
    {"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
     "Resource": ["arn:aws:s3:::$bucket/*"]}
  ]
}
EOF
  mc admin policy create platform "$policy" "$file" >/dev/null
  mc admin user add platform "$user" "$secret" >/dev/null
  # `attach` refuses a policy that is already attached; that is the state we want.
  if ! out=$(mc admin policy attach platform "$policy" --user "$user" 2>&1); then
    case $out in
      *"already in effect"*) ;;
      *) fail "attaching $policy to $user: $out" ;;
    esac
  fi
  echo "create-minio-identities: user $user may use s3://$bucket only (policy $policy)"
done
