"""Generate charts/sentiment-platform/values.schema.json (strict: every object refuses unknown keys).

Edit the schema here, not the JSON, then run:

    python scripts/charts/values_schema.py          # rewrite the JSON
    python scripts/charts/values_schema.py --check  # exit 1 when the JSON is stale (the chart tests do this)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "charts" / "sentiment-platform" / "values.schema.json"

Schema = dict[str, Any]

K8S_NAME = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OPT_K8S_NAME = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
KEY_NAME = "^[-._a-zA-Z0-9]+$"
SQL_IDENT = "^[a-z_][a-z0-9_]{0,62}$"
BUCKET = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# A MinIO user name (S3 access key id): 3 to 64 characters.
ACCESS_KEY_ID = "^[A-Za-z0-9][-._A-Za-z0-9]{2,63}$"
# A Prometheus duration (`15s`, `2d`): one unit, as the scrape config and `--storage.tsdb.retention.time` take it.
PROM_DURATION = "^[0-9]+(ms|s|m|h|d|w|y)$"


def obj(props: Schema, required: list[str] | None = None, **extra: Any) -> Schema:
    """A closed object: unknown keys are refused."""
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def closed(props: Schema, **extra: Any) -> Schema:
    """A closed object whose every property is required (the chart's values always carry them all)."""
    return obj(props, list(props), **extra)


def ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


def string(pattern: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    schema.update(extra)
    return schema


def integer(minimum: int | None = None, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


BOOL: Schema = {"type": "boolean"}
QUANTITY: Schema = {
    "anyOf": [
        string("^[0-9]+(\\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$"),
        {"type": "number", "minimum": 0},
    ]
}
TAG = string("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", minLength=1, description="a pinned tag: `latest` is refused") | {
    "not": {"const": "latest"}
}
OPTIONAL_TAG = string(
    "^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$", description="empty inherits images.tag; `latest` is refused"
) | {"not": {"const": "latest"}}

DEFINITIONS: Schema = {
    "pullPolicy": {"type": "string", "enum": ["IfNotPresent", "Always", "Never"]},
    "image": closed(
        {"registry": string(), "repository": string(minLength=1), "tag": TAG, "pullPolicy": ref("pullPolicy")}
    ),
    "projectImage": closed({"repository": string(minLength=1), "tag": OPTIONAL_TAG}),
    "quantities": obj({"cpu": QUANTITY, "memory": QUANTITY, "ephemeral-storage": QUANTITY}),
    "resources": obj({"requests": ref("quantities"), "limits": ref("quantities")}),
    "seccompProfile": obj(
        {
            "type": {"type": "string", "enum": ["RuntimeDefault", "Localhost", "Unconfined"]},
            "localhostProfile": string(),
        },
        ["type"],
    ),
    "podSecurityContext": obj(
        {
            "runAsNonRoot": BOOL,
            "runAsUser": integer(0),
            "runAsGroup": integer(0),
            "fsGroup": integer(0),
            "fsGroupChangePolicy": {"type": "string", "enum": ["OnRootMismatch", "Always"]},
            "supplementalGroups": {"type": "array", "items": integer(0)},
            "seccompProfile": ref("seccompProfile"),
        }
    ),
    "containerSecurityContext": obj(
        {
            "allowPrivilegeEscalation": BOOL,
            "readOnlyRootFilesystem": BOOL,
            "runAsNonRoot": BOOL,
            "runAsUser": integer(0),
            "runAsGroup": integer(0),
            "privileged": BOOL,
            "capabilities": obj(
                {"add": {"type": "array", "items": string()}, "drop": {"type": "array", "items": string()}}
            ),
            "seccompProfile": ref("seccompProfile"),
        }
    ),
    "envVar": obj(
        {
            "name": string("^[-._a-zA-Z][-._a-zA-Z0-9]*$"),
            "value": string(),
            "valueFrom": obj(
                {
                    "secretKeyRef": {"type": "object"},
                    "configMapKeyRef": {"type": "object"},
                    "fieldRef": {"type": "object"},
                    "resourceFieldRef": {"type": "object"},
                },
                minProperties=1,
                maxProperties=1,
            ),
        },
        ["name"],
    ),
    "envList": {"type": "array", "items": ref("envVar")},
    "persistence": closed(
        {"enabled": BOOL, "storageClass": string(), "size": string("^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")}
    ),
    "toleration": obj(
        {
            "key": string(),
            "operator": {"type": "string", "enum": ["Exists", "Equal"]},
            "value": string(),
            "effect": {"type": "string", "enum": ["", "NoSchedule", "PreferNoSchedule", "NoExecute"]},
            "tolerationSeconds": integer(),
        }
    ),
    "stringMap": {"type": "object", "additionalProperties": string()},
    "intOrPercent": {"anyOf": [integer(0), string("^[0-9]+%$")]},
}


PROPERTIES: Schema = {
    "nameOverride": string(),
    "fullnameOverride": string(OPT_K8S_NAME, maxLength=38),
    "global": closed(
        {
            "imageRegistry": string(),
            "imagePullSecrets": {"type": "array", "items": string(K8S_NAME)},
            "nodeSelector": ref("stringMap"),
            "tolerations": {"type": "array", "items": ref("toleration")},
            "podSecurityContext": ref("podSecurityContext"),
            "containerSecurityContext": ref("containerSecurityContext"),
        }
    ),
    "images": closed(
        {
            "registry": string(),
            "tag": TAG,
            "pullPolicy": ref("pullPolicy"),
            "trainer": ref("projectImage"),
            "inference": ref("projectImage"),
            "mlflow": ref("projectImage"),
        }
    ),
    "serviceAccount": closed({"create": BOOL, "name": string(OPT_K8S_NAME), "annotations": ref("stringMap")}),
    "s3": closed(
        {
            "endpoint": string("^(https?://[^\\s/]+(:[0-9]+)?/?)?$"),
            "region": string(minLength=1),
            "existingSecret": string(OPT_K8S_NAME),
            "accessKeyIdKey": string(KEY_NAME),
            "secretAccessKeyKey": string(KEY_NAME),
            "buckets": closed({"mlflow": string(BUCKET), "dvc": string(BUCKET)}),
            "identities": closed(
                {
                    name: closed({"existingSecret": string(OPT_K8S_NAME), "accessKeyId": string(ACCESS_KEY_ID)})
                    for name in ("mlflow", "training")
                }
            ),
            "createBuckets": closed({"enabled": BOOL, "backoffLimit": integer(0, 100), "resources": ref("resources")}),
        }
    ),
    "database": closed(
        {
            "host": string("^[A-Za-z0-9.-]*$"),
            "port": integer(1, 65535),
            "username": string(SQL_IDENT),
            "existingSecret": string(OPT_K8S_NAME),
            "passwordKey": string(KEY_NAME),
            "databases": closed({"mlflow": string(SQL_IDENT), "prefect": string(SQL_IDENT)}),
        }
    ),
    "minio": closed(
        {
            "enabled": BOOL,
            "image": ref("image"),
            "auth": closed(
                {
                    "rootUser": string(minLength=3),
                    "rootPassword": string(
                        anyOf=[{"maxLength": 0}, {"minLength": 8}],
                        description="empty (generated) or at least 8 characters (MinIO's minimum)",
                    ),
                }
            ),
            "persistence": ref("persistence"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
        }
    ),
    "postgresql": closed(
        {
            "enabled": BOOL,
            "image": ref("image"),
            "password": string(
                "^[A-Za-z0-9._~-]*$", description="URL-safe characters only: it goes into connection URLs"
            ),
            "persistence": ref("persistence"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
        }
    ),
    "mlflow": closed(
        {
            "replicaCount": integer(1),
            "workers": integer(1, 32),
            "extraAllowedHosts": {"type": "array", "items": string("^[^,\\s]+$")},
            "extraEnv": ref("envList"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
        }
    ),
    "prefectServer": closed(
        {
            "uiApiUrl": string("^(https?://[^\\s]+|/[^\\s]*)/api$"),
            "extraEnv": ref("envList"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
        }
    ),
    "prefectWorker": closed(
        {
            "clusterUid": string(),
            "extraEnv": ref("envList"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
            "workPool": closed({"name": string("^[A-Za-z0-9][A-Za-z0-9_-]*$")}),
        }
    ),
    "training": closed(
        {
            "serviceAccount": closed({"name": string(OPT_K8S_NAME), "annotations": ref("stringMap")}),
            "resources": ref("resources"),
            "finishedJobTtlSeconds": integer(0),
            "extraEnv": ref("envList"),
            "data": closed(
                {
                    "existingClaim": string(OPT_K8S_NAME),
                    "fileName": string("^[A-Za-z0-9._-]+\\.(csv|csv\\.gz|parquet)$"),
                    "persistence": closed(
                        {"storageClass": string(), "size": string("^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")}
                    ),
                    "prepare": closed(
                        {
                            "mode": {"type": "string", "enum": ["download", "upload"]},
                            "timeoutSeconds": integer(60),
                            "extraArgs": {"type": "array", "items": string()},
                            "resources": ref("resources"),
                        }
                    ),
                }
            ),
            "s3Access": BOOL,
            "registerDeployments": closed(
                {"enabled": BOOL, "backoffLimit": integer(0, 100), "resources": ref("resources")}
            ),
        }
    ),
    "inference": closed(
        {
            "enabled": BOOL,
            "replicaCount": integer(0),
            "preStopSleepSeconds": integer(0, 120),
            "strategy": obj(
                {
                    "type": {"type": "string", "enum": ["RollingUpdate", "Recreate"]},
                    "rollingUpdate": obj({"maxSurge": ref("intOrPercent"), "maxUnavailable": ref("intOrPercent")}),
                },
                ["type"],
            ),
            "config": closed(
                {
                    "modelName": string(minLength=1),
                    "modelAlias": string(minLength=1),
                    "pollIntervalSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
                    "maxTextChars": integer(1),
                    "maxBatchSize": integer(1),
                    "maxBodyBytes": integer(1024),
                    "queueMaxRequests": integer(1),
                    "queueMaxTexts": integer(1),
                    "requestTimeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 300},
                    "httpMaxHeaderBytes": integer(1024),
                    "httpMaxHeaders": integer(8),
                    "httpHeaderTimeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
                    "httpBodyTimeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
                    "httpKeepaliveTimeoutSeconds": {"type": "number", "exclusiveMinimum": 0},
                    "httpMaxConnections": integer(1),
                    "driftEnabled": BOOL,
                    "driftWindowSize": integer(10, 100000),
                    "driftMinSamples": integer(10),
                    "driftWarningPsi": {"type": "number", "exclusiveMinimum": 0},
                    "driftAlertPsi": {"type": "number", "exclusiveMinimum": 0},
                    "driftMaxTextsPerSecond": {"type": "number", "exclusiveMinimum": 0},
                    "logLevel": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]},
                    "logFormat": {"type": "string", "enum": ["text", "json"]},
                    "workers": integer(1, 64),
                }
            ),
            "adminToken": closed(
                {
                    "enabled": BOOL,
                    "value": string(
                        anyOf=[{"maxLength": 0}, {"minLength": 16}],
                        description="empty (generated) or at least 16 characters",
                    ),
                    "existingSecret": string(OPT_K8S_NAME),
                    "secretKey": string(KEY_NAME),
                }
            ),
            "metrics": closed({"scrapeAnnotations": BOOL}),
            "podAnnotations": ref("stringMap"),
            "extraEnv": ref("envList"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
            "affinity": obj(
                {
                    "nodeAffinity": {"type": "object"},
                    "podAffinity": {"type": "object"},
                    "podAntiAffinity": {"type": "object"},
                }
            ),
            "autoscaling": closed(
                {
                    "enabled": BOOL,
                    "minReplicas": integer(1),
                    "maxReplicas": integer(1),
                    "targetCPUUtilizationPercentage": integer(1, 100),
                }
            ),
            "podDisruptionBudget": closed({"enabled": BOOL, "minAvailable": integer(0)}),
        }
    ),
    "metrics": closed({"enabled": BOOL}),
    "prometheus": closed(
        {
            "enabled": BOOL,
            "operator": closed({"labels": ref("stringMap")}),
            "image": ref("image"),
            "scrapeInterval": string(PROM_DURATION),
            "retention": string(PROM_DURATION),
            "storageSizeLimit": string("^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"),
            "resources": ref("resources"),
            "podSecurityContext": ref("podSecurityContext"),
            "grafanaDashboard": closed({"enabled": BOOL, "labels": ref("stringMap")}),
        }
    ),
    "tests": closed({"resources": ref("resources")}),
}


def build() -> Schema:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "sentiment-platform values",
        "description": "Generated by scripts/charts/values_schema.py. Strict: every object refuses unknown keys.",
        "type": "object",
        "additionalProperties": False,
        "required": list(PROPERTIES),
        "definitions": DEFINITIONS,
        "properties": PROPERTIES,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the JSON file is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text() != text:
            print(f"{SCHEMA_PATH} is stale: run python scripts/charts/values_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    print(SCHEMA_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
