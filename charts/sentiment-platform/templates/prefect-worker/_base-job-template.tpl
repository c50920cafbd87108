{{/*
The work pool's base job template as JSON: files/base-job-template.json (a link to the trainer package's
template, the one source of truth that `sentiment-trainer deploy` also uses) with the release-specific defaults
filled in (image, namespace, service account, pull policy, TTL, resources, volumes: /tmp and home emptyDirs and
the dataset PVC) and the platform env appended to the flow-run container.
*/}}
{{- define "sp.worker.baseJobTemplate" -}}
{{- $tpl := .Files.Get "files/base-job-template.json" | fromJson -}}
{{- $props := $tpl.variables.properties -}}
{{- $res := .Values.training.resources -}}
{{- $defaults := dict
    "image" (include "sp.projectImage" (dict "ctx" . "name" "trainer"))
    "namespace" .Release.Namespace
    "service_account_name" (include "sp.training.serviceAccountName" .)
    "image_pull_policy" .Values.images.pullPolicy
    "finished_job_ttl" (int .Values.training.finishedJobTtlSeconds)
-}}
{{- /* training.resources -> cpu_request, memory_request, cpu_limit, memory_limit (quantities as strings) */ -}}
{{- range $kind := list "requests" "limits" -}}
{{- range $resource := list "cpu" "memory" -}}
{{- $quantity := dig $kind $resource "" $res -}}
{{- if $quantity -}}
{{- $_ := set $defaults (printf "%s_%s" $resource (trimSuffix "s" $kind)) (toString $quantity) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $_ := set $defaults "volumes" (list
    (dict "name" "tmp" "emptyDir" dict)
    (dict "name" "home" "emptyDir" dict)
    (dict "name" "data" "persistentVolumeClaim" (dict "claimName" (include "sp.training.dataClaim" .) "readOnly" true))
) -}}
{{- $_ := set $defaults "volume_mounts" (list
    (dict "name" "tmp" "mountPath" "/tmp")
    (dict "name" "home" "mountPath" "/home/app")
    (dict "name" "data" "mountPath" "/data" "readOnly" true)
) -}}
{{- range $name, $value := $defaults -}}
{{- if hasKey $props $name -}}
{{- $_ := set (index $props $name) "default" $value -}}
{{- end -}}
{{- end -}}
{{- $container := first $tpl.job_configuration.job_manifest.spec.template.spec.containers -}}
{{- $env := list
    (dict "name" "MLFLOW_TRACKING_URI" "value" (include "sp.mlflow.url" .))
    (dict "name" "DATA_PATH" "value" (include "sp.training.dataPath" .))
-}}
{{- if .Values.training.s3Access -}}
{{- $env = concat $env (include "sp.s3.env" (dict "ctx" . "identity" "training") | fromYamlArray) -}}
{{- end -}}
{{- $env = concat $env .Values.training.extraEnv -}}
{{- /* The release's values replace the template's entries of the same name (its defaults outside Helm). */ -}}
{{- $ours := dict -}}
{{- range $env -}}
{{- $_ := set $ours .name true -}}
{{- end -}}
{{- $kept := list -}}
{{- range (default list $container.env) -}}
{{- if not (hasKey $ours .name) -}}
{{- $kept = append $kept . -}}
{{- end -}}
{{- end -}}
{{- $_ := set $container "env" (concat $kept $env) -}}
{{- toPrettyJson $tpl -}}
{{- end -}}
