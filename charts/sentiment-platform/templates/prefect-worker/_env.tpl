{{/* Environment of the Kubernetes worker and of its work-pool init container. */}}
{{- define "sp.worker.env" -}}
- name: HOME
  value: /home/app
- name: PREFECT_HOME
  value: /home/app/.prefect
- name: PREFECT_API_URL
  value: {{ include "sp.prefect.apiUrl" . | quote }}
# Set explicitly so prefect-kubernetes never reads the kube-system namespace (no cluster-wide RBAC).
- name: PREFECT_KUBERNETES_CLUSTER_UID
  value: {{ include "sp.worker.clusterUid" . | quote }}
# The worker's observer watches this namespace only (a namespaced Role; not cluster-wide).
- name: PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES
  value: {{ .Release.Namespace | quote }}
- name: PREFECT_WORKER_WEBSERVER_PORT
  value: "8080"
{{- with .Values.prefectWorker.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}
