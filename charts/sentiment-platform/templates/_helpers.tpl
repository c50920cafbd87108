{{/*
Names, labels, images, connection details and secrets shared by every template.
Components: minio, postgresql, mlflow, prefect-server, prefect-worker, training, inference, tests.
*/}}

{{- define "sp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource: the release name (or fullnameOverride), short enough for suffixes. */}}
{{- define "sp.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 38 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of one component's resources: (dict "ctx" $ "component" "mlflow") -> sentiment-mlflow */}}
{{- define "sp.componentName" -}}
{{- printf "%s-%s" (include "sp.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: (dict "ctx" $ "component" "mlflow") */}}
{{- define "sp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sp.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Full labels: (dict "ctx" $ "component" "mlflow") */}}
{{- define "sp.labels" -}}
helm.sh/chart: {{ include "sp.chart" .ctx }}
{{ include "sp.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sentiment-platform
{{- end -}}

{{/* ---------------------------------------------------------------- images */}}

{{/* A third-party image: (dict "ctx" $ "image" .Values.minio.image) */}}
{{- define "sp.image" -}}
{{- $registry := coalesce .ctx.Values.global.imageRegistry .image.registry -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry .image.repository (toString .image.tag) -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (toString .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* A project image: (dict "ctx" $ "name" "trainer") */}}
{{- define "sp.projectImage" -}}
{{- $images := .ctx.Values.images -}}
{{- $image := index $images .name -}}
{{- $registry := coalesce .ctx.Values.global.imageRegistry $images.registry -}}
{{- $tag := toString (coalesce $image.tag $images.tag .ctx.Chart.AppVersion) -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry $image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "sp.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ------------------------------------------------------ pod boilerplate */}}

{{/* Pod securityContext: global defaults overlaid with the component's ids. (dict "ctx" $ "pod" .Values.mlflow.podSecurityContext) */}}
{{- define "sp.podSecurityContext" -}}
{{- toYaml (merge (deepCopy .pod) (deepCopy .ctx.Values.global.podSecurityContext)) -}}
{{- end -}}

{{- define "sp.containerSecurityContext" -}}
{{- toYaml .Values.global.containerSecurityContext -}}
{{- end -}}

{{/* nodeSelector, tolerations and pull secrets of every pod spec. */}}
{{- define "sp.podScheduling" -}}
{{- include "sp.imagePullSecrets" . }}
{{- with .Values.global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "sp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sp.worker.serviceAccountName" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "prefect-worker") -}}
{{- end -}}

{{- define "sp.training.serviceAccountName" -}}
{{- default (include "sp.componentName" (dict "ctx" . "component" "training")) .Values.training.serviceAccount.name -}}
{{- end -}}

{{- define "sp.training.dataClaim" -}}
{{- default (include "sp.componentName" (dict "ctx" . "component" "data")) .Values.training.data.existingClaim -}}
{{- end -}}

{{- define "sp.training.dataPath" -}}
{{- printf "/data/%s" .Values.training.data.fileName -}}
{{- end -}}

{{/* --------------------------------------------------- service endpoints */}}

{{- define "sp.minio.host" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "minio") -}}
{{- end -}}

{{- define "sp.postgresql.host" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "postgresql") -}}
{{- end -}}

{{- define "sp.mlflow.host" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "mlflow") -}}
{{- end -}}

{{- define "sp.prefectServer.host" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "prefect-server") -}}
{{- end -}}

{{- define "sp.inference.host" -}}
{{- include "sp.componentName" (dict "ctx" . "component" "inference") -}}
{{- end -}}

{{/* MLFLOW_TRACKING_URI of every client (trainer, inference, flow runs). */}}
{{- define "sp.mlflow.url" -}}
{{- printf "http://%s:5000" (include "sp.mlflow.host" .) -}}
{{- end -}}

{{/* PREFECT_API_URL of the worker, the registration Job and the flow runs. */}}
{{- define "sp.prefect.apiUrl" -}}
{{- printf "http://%s:4200/api" (include "sp.prefectServer.host" .) -}}
{{- end -}}

{{- define "sp.inference.url" -}}
{{- printf "http://%s:8000" (include "sp.inference.host" .) -}}
{{- end -}}

{{/* Host headers MLflow accepts (--allowed-hosts): service names in every DNS form, each with any port, and localhost. */}}
{{- define "sp.mlflow.allowedHosts" -}}
{{- $svc := include "sp.mlflow.host" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list -}}
{{- range $name := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) "localhost" "127.0.0.1" -}}
{{- $hosts = append $hosts $name -}}
{{- $hosts = append $hosts (printf "%s:*" $name) -}}
{{- end -}}
{{- join "," (concat $hosts .Values.mlflow.extraAllowedHosts) -}}
{{- end -}}

{{/* ----------------------------------------------------------------- S3 */}}

{{- define "sp.s3.endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:9000" (include "sp.minio.host" .) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "sp.s3.secretName" -}}
{{- default (include "sp.componentName" (dict "ctx" . "component" "minio")) .Values.s3.existingSecret -}}
{{- end -}}

{{/* True when the chart makes the per-component MinIO users (in-cluster MinIO and the bucket Job). */}}
{{- define "sp.s3.managedIdentities" -}}
{{- if and .Values.minio.enabled .Values.s3.createBuckets.enabled -}}true{{- end -}}
{{- end -}}

{{/* Components that get their own S3 identity, as a YAML list: MLflow always, flow runs with s3Access. */}}
{{- define "sp.s3.identityNames" -}}
- mlflow
{{- if .Values.training.s3Access }}
- training
{{- end }}
{{- end -}}

{{/* Bucket an identity may use: (dict "ctx" $ "identity" "mlflow"). */}}
{{- define "sp.s3.identityBucket" -}}
{{- if eq .identity "mlflow" -}}{{ .ctx.Values.s3.buckets.mlflow }}{{- else -}}{{ .ctx.Values.s3.buckets.dvc }}{{- end -}}
{{- end -}}

{{/* Name of the generated Secret of an identity: (dict "ctx" $ "identity" "mlflow") */}}
{{- define "sp.s3.identitySecretName" -}}
{{- include "sp.componentName" (dict "ctx" .ctx "component" (printf "s3-%s" .identity)) -}}
{{- end -}}

{{/*
Secret holding the S3 key pair of an identity: "admin" (MinIO root, the bucket Job only), or a component of
`s3.identities` (mlflow, training): its existingSecret, else its generated Secret when the chart manages MinIO
users, else the shared S3 Secret. Call with (dict "ctx" $ "identity" "mlflow").
*/}}
{{- define "sp.s3.identitySecret" -}}
{{- if eq .identity "admin" -}}
{{- include "sp.s3.secretName" .ctx -}}
{{- else -}}
{{- $identity := index .ctx.Values.s3.identities .identity -}}
{{- if $identity.existingSecret -}}
{{- $identity.existingSecret -}}
{{- else if include "sp.s3.managedIdentities" .ctx -}}
{{- include "sp.s3.identitySecretName" . -}}
{{- else -}}
{{- include "sp.s3.secretName" .ctx -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* AWS_* env of an S3 client acting as one identity: (dict "ctx" $ "identity" "mlflow"). */}}
{{- define "sp.s3.env" -}}
{{- $secret := include "sp.s3.identitySecret" . -}}
- name: AWS_ENDPOINT_URL
  value: {{ include "sp.s3.endpoint" .ctx | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .ctx.Values.s3.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .ctx.Values.s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ .ctx.Values.s3.secretAccessKeyKey }}
{{- end -}}

{{/* ----------------------------------------------------------- database */}}

{{- define "sp.database.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "sp.postgresql.host" . -}}
{{- else -}}
{{- .Values.database.host -}}
{{- end -}}
{{- end -}}

{{- define "sp.database.secretName" -}}
{{- default (include "sp.componentName" (dict "ctx" . "component" "postgresql")) .Values.database.existingSecret -}}
{{- end -}}

{{/* env entry NAME holding the database password: (dict "ctx" $ "name" "MLFLOW_DB_PASSWORD") */}}
{{- define "sp.database.passwordEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sp.database.secretName" .ctx }}
      key: {{ .ctx.Values.database.passwordKey }}
{{- end -}}

{{/* ------------------------------------------------------------ secrets */}}

{{/*
A generated secret value that stays stable across `helm upgrade`: the explicit value if given, else the
value already stored in the live Secret (lookup), else a new random one.
(dict "ctx" $ "secret" NAME "key" KEY "value" EXPLICIT "length" 32)
*/}}
{{- define "sp.stableSecretValue" -}}
{{- if .value -}}
{{- .value -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret | default dict -}}
{{- $stored := dig "data" .key "" $existing -}}
{{- if $stored -}}
{{- $stored | b64dec -}}
{{- else -}}
{{- randAlphaNum (int (default 32 .length)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* checksum/<name> annotation of a template file: (dict "ctx" $ "file" "/minio/secret.yaml") */}}
{{- define "sp.checksum" -}}
{{- include (print .ctx.Template.BasePath .file) .ctx | sha256sum -}}
{{- end -}}

{{/* Stable cluster id for prefect-kubernetes (no cluster-wide read of kube-system). */}}
{{- define "sp.worker.clusterUid" -}}
{{- default (printf "%s/%s" .Release.Namespace .Release.Name | sha256sum | trunc 32) .Values.prefectWorker.clusterUid -}}
{{- end -}}

{{/* ---------------------------------------------------------- validation */}}

{{- define "sp.validate" -}}
{{- $errors := list -}}
{{- if .Values.minio.enabled -}}
  {{- if .Values.s3.endpoint -}}
    {{- $errors = append $errors "s3.endpoint must be empty while minio.enabled=true (the in-cluster MinIO is used); set minio.enabled=false to use an external S3" -}}
  {{- end -}}
{{- else -}}
  {{- if not .Values.s3.endpoint -}}
    {{- $errors = append $errors "minio.enabled=false needs s3.endpoint (the external S3 URL)" -}}
  {{- end -}}
  {{- if not .Values.s3.existingSecret -}}
    {{- $errors = append $errors "minio.enabled=false needs s3.existingSecret (a Secret with the S3 access key id and secret access key)" -}}
  {{- end -}}
{{- end -}}
{{- if .Values.postgresql.enabled -}}
  {{- if .Values.database.host -}}
    {{- $errors = append $errors "database.host must be empty while postgresql.enabled=true (the in-cluster PostgreSQL is used); set postgresql.enabled=false to use an external server" -}}
  {{- end -}}
  {{- if and .Values.postgresql.password .Values.database.existingSecret -}}
    {{- $errors = append $errors "set either postgresql.password or database.existingSecret, not both" -}}
  {{- end -}}
{{- else -}}
  {{- if not .Values.database.host -}}
    {{- $errors = append $errors "postgresql.enabled=false needs database.host (the external PostgreSQL)" -}}
  {{- end -}}
  {{- if not .Values.database.existingSecret -}}
    {{- $errors = append $errors "postgresql.enabled=false needs database.existingSecret (a Secret with the database password)" -}}
  {{- end -}}
{{- end -}}
{{- if and .Values.minio.auth.rootPassword .Values.s3.existingSecret -}}
  {{- $errors = append $errors "set either minio.auth.rootPassword or s3.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.inference.adminToken.value .Values.inference.adminToken.existingSecret -}}
  {{- $errors = append $errors "set either inference.adminToken.value or inference.adminToken.existingSecret, not both" -}}
{{- end -}}
{{- with .Values.inference -}}
  {{- if and .enabled .podDisruptionBudget.enabled -}}
    {{- $replicas := ternary .autoscaling.minReplicas .replicaCount .autoscaling.enabled -}}
    {{- if le (int $replicas) (int .podDisruptionBudget.minAvailable) -}}
      {{- $errors = append $errors (printf "inference.podDisruptionBudget.minAvailable=%v would block every voluntary eviction with %v replicas: raise inference.replicaCount (or autoscaling.minReplicas)" .podDisruptionBudget.minAvailable $replicas) -}}
    {{- end -}}
  {{- end -}}
  {{- if and .enabled .autoscaling.enabled (gt (int .autoscaling.minReplicas) (int .autoscaling.maxReplicas)) -}}
    {{- $errors = append $errors "inference.autoscaling.minReplicas must not exceed maxReplicas" -}}
  {{- end -}}
{{- end -}}
{{- if $errors -}}
{{- fail (printf "\n\nsentiment-platform: invalid values:\n  - %s\n" (join "\n  - " $errors)) -}}
{{- end -}}
{{- end -}}

{{/* --------------------------------------------------------- monitoring */}}

{{/* "true" when the platform is monitored through the Prometheus Operator (its CRDs exist): PodMonitor and
PrometheusRule for the cluster's Prometheus instead of a Prometheus server of the chart's own. */}}
{{- define "sp.prometheus.operator" -}}
{{- if and .Values.prometheus.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") -}}true{{- end -}}
{{- end -}}

{{/* "true" when the chart runs its own Prometheus server (no operator CRDs in the cluster). */}}
{{- define "sp.prometheus.server" -}}
{{- if and .Values.prometheus.enabled (not (include "sp.prometheus.operator" .)) -}}true{{- end -}}
{{- end -}}

{{/* prometheus.io/* pod annotations of a component that serves metrics: (dict "port" 5000 "path" "/metrics") */}}
{{- define "sp.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: {{ .path }}
{{- end -}}
