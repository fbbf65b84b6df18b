{{/* Names ------------------------------------------------------------------------------- */}}

{{- define "gpt-oss-server.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; the release name alone when it already contains the chart name. */}}
{{- define "gpt-oss-server.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "gpt-oss-server.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------------ */}}

{{- define "gpt-oss-server.labels" -}}
helm.sh/chart: {{ include "gpt-oss-server.chart" . }}
{{ include "gpt-oss-server.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selects the server pods only (never the `helm test` pod). */}}
{{- define "gpt-oss-server.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpt-oss-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* Objects ----------------------------------------------------------------------------- */}}

{{- define "gpt-oss-server.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gpt-oss-server.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gpt-oss-server.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end }}
{{- end }}

{{/* Secret and key holding the API keys (one per line). */}}
{{- define "gpt-oss-server.authSecretName" -}}
{{- default (printf "%s-auth" (include "gpt-oss-server.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "gpt-oss-server.authSecretKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}api-keys{{ end }}
{{- end }}

{{/* Hugging Face token Secret; empty when no token is configured. */}}
{{- define "gpt-oss-server.hfSecretName" -}}
{{- if .Values.huggingface.existingSecret }}
{{- .Values.huggingface.existingSecret }}
{{- else if .Values.huggingface.token }}
{{- printf "%s-hf-token" (include "gpt-oss-server.fullname" .) }}
{{- end }}
{{- end }}

{{- define "gpt-oss-server.hfSecretKey" -}}
{{- if .Values.huggingface.existingSecret }}{{ .Values.huggingface.existingSecretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* Cache PVC name, empty when the cache is an emptyDir. */}}
{{- define "gpt-oss-server.cacheClaimName" -}}
{{- if .Values.cache.persistence.enabled }}
{{- default (printf "%s-cache" (include "gpt-oss-server.fullname" .)) .Values.cache.persistence.existingClaim }}
{{- end }}
{{- end }}

{{/* Where secrets are mounted inside the pods. */}}
{{- define "gpt-oss-server.authDir" -}}/etc/gpt-oss/auth{{- end }}
{{- define "gpt-oss-server.hfDir" -}}/etc/gpt-oss/huggingface{{- end }}

{{/* The names clients use for the model, as a list. */}}
{{- define "gpt-oss-server.servedModelNames" -}}
{{- if .Values.model.servedModelNames }}
{{- toJson .Values.model.servedModelNames }}
{{- else if .Values.model.path }}
{{- toJson (list .Values.model.name) }}
{{- else }}
{{- toJson (list) }}
{{- end }}
{{- end }}

{{/* Termination arithmetic --------------------------------------------------------------
  Kubernetes starts the grace period when it runs preStop; SIGTERM follows preStop; the server
  then drains for up to drainTimeoutSeconds and exits. So the grace period must exceed
  preStopSleepSeconds + drainTimeoutSeconds; the margin covers process exit. */}}
{{- define "gpt-oss-server.terminationGracePeriodSeconds" -}}
{{- $t := .Values.termination }}
{{- add $t.preStopSleepSeconds $t.drainTimeoutSeconds $t.marginSeconds }}
{{- end }}

{{/* Server arguments: model, names, limits, auth, then the user's engine args. -------------- */}}
{{- define "gpt-oss-server.args" -}}
{{- $userSetsTP := false }}
{{- range .Values.engineArgs }}
{{- $a := toString . }}
{{- if or (eq $a "--tensor-parallel-size") (eq $a "-tp") (hasPrefix "--tensor-parallel-size=" $a) (hasPrefix "-tp=" $a) }}
{{- $userSetsTP = true }}
{{- end }}
{{- end }}
- --model
- {{ default .Values.model.name .Values.model.path | quote }}
{{- range (include "gpt-oss-server.servedModelNames" . | fromJsonArray) }}
- --served-model-name
- {{ . | quote }}
{{- end }}
- --port
- "8000"
- --log-level
- {{ .Values.server.logLevel | quote }}
- --drain-timeout
- {{ .Values.termination.drainTimeoutSeconds | quote }}
{{- with .Values.model.maxModelLen }}
- --max-model-len
- {{ . | quote }}
{{- end }}
{{- if .Values.auth.enabled }}
- --api-key-file
- {{ printf "%s/%s" (include "gpt-oss-server.authDir" .) (include "gpt-oss-server.authSecretKey" .) | quote }}
{{- end }}
{{- if .Values.metrics.protect }}
- --protect-metrics
{{- end }}
{{- if not $userSetsTP }}
- --tensor-parallel-size
- {{ .Values.gpu.count | quote }}
{{- end }}
{{- range .Values.engineArgs }}
- {{ toString . | quote }}
{{- end }}
{{- end }}

{{/* Checks the schema cannot express. ---------------------------------------------------- */}}
{{- define "gpt-oss-server.validate" -}}
{{- $t := .Values.termination }}
{{- if le (int (include "gpt-oss-server.terminationGracePeriodSeconds" .)) (add $t.preStopSleepSeconds $t.drainTimeoutSeconds) }}
{{- fail "termination: the grace period must exceed preStopSleepSeconds + drainTimeoutSeconds (set marginSeconds > 0)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.prometheus.serverAddress) }}
{{- fail "autoscaling.enabled needs autoscaling.prometheus.serverAddress (the Prometheus that scrapes vllm:num_requests_waiting)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.metrics.protect .Values.metrics.serviceMonitor.enabled (not .Values.metrics.serviceMonitor.authorization.secretName) }}
{{- fail "metrics.protect with metrics.serviceMonitor.enabled needs metrics.serviceMonitor.authorization.secretName/secretKey (one bearer token for Prometheus)" }}
{{- end }}
{{- if and .Values.helmTest.image.repository (not .Values.helmTest.image.tag) }}
{{- fail "helmTest.image.repository needs helmTest.image.tag" }}
{{- end }}
{{- if and (eq (int .Values.rollingUpdate.maxSurge) 0) (eq (int .Values.rollingUpdate.maxUnavailable) 0) }}
{{- fail "rollingUpdate: maxSurge and maxUnavailable cannot both be 0" }}
{{- end }}
{{- end }}
