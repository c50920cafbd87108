{{/* What the chart's own Prometheus scrapes, one entry per component that serves metrics (JSON list of
dicts: component, port (the container port number), portName, path). The job label is `sentiment-<component>`
(the alert rules match `job="sentiment-inference"`); each entry has a headless Service (<component>/service-headless.yaml). */}}
{{- define "sp.prometheus.targets" -}}
{{- $targets := list -}}
{{- if .Values.inference.enabled -}}
{{- $targets = append $targets (dict "component" "inference" "port" 8000 "portName" "http" "path" "/metrics") -}}
{{- end -}}
{{- if .Values.metrics.enabled -}}
{{- $targets = append $targets (dict "component" "mlflow" "port" 5000 "portName" "http" "path" "/metrics") -}}
{{- $targets = append $targets (dict "component" "prefect-server" "port" 4200 "portName" "http" "path" "/api/metrics") -}}
{{- $targets = append $targets (dict "component" "prefect-worker" "port" 4201 "portName" "metrics" "path" "/metrics") -}}
{{- end -}}
{{- toJson $targets -}}
{{- end -}}

{{/* Name of a component's headless Service: (dict "ctx" $ "component" "inference") */}}
{{- define "sp.prometheus.headlessName" -}}
{{- include "sp.componentName" (dict "ctx" .ctx "component" (printf "%s-headless" .component)) -}}
{{- end -}}

{{/* The scrape target of one component as JSON ("{}" when the chart's own Prometheus does not run or does not
scrape it), for the component's headless Service (<component>/service-headless.yaml):
(dict "ctx" $ "component" "inference") */}}
{{- define "sp.prometheus.target" -}}
{{- $found := dict -}}
{{- if include "sp.prometheus.server" .ctx -}}
{{- range (include "sp.prometheus.targets" .ctx | fromJsonArray) -}}
{{- if eq .component $.component -}}
{{- $found = . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}
