{{/* Environment of the MLflow server and of its db-upgrade init container. */}}
{{- define "sp.mlflow.env" -}}
{{- $db := .Values.database -}}
- name: HOME
  value: /home/app
{{ include "sp.database.passwordEnv" (dict "ctx" . "name" "MLFLOW_DB_PASSWORD") }}
# $(VAR) is expanded by the kubelet: the password never appears in the pod spec.
- name: MLFLOW_BACKEND_STORE_URI
  value: {{ printf "postgresql+psycopg2://%s:$(MLFLOW_DB_PASSWORD)@%s:%v/%s" $db.username (include "sp.database.host" .) $db.port $db.databases.mlflow | quote }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ include "sp.s3.endpoint" . | quote }}
{{ include "sp.s3.env" (dict "ctx" . "identity" "mlflow") }}
- name: MLFLOW_DISABLE_TELEMETRY
  value: "true"
- name: MLFLOW_SERVER_ENABLE_JOB_EXECUTION
  value: "false"
{{- with .Values.mlflow.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
