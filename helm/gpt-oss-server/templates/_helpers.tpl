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
{{- with .Values.responseStore.redis.url }}
- --response-store
- {{ . | quote }}
{{- end }}
{{- if not $userSetsTP }}
- --tensor-parallel-size
- {{ .Values.gpu.count | quote }}
{{- end }}
{{- range .Values.engineArgs }}
- {{ toString . | quote }}
{{- end }}
{{- end }}

{{/* Inference Extension ------------------------------------------------------------------ */}}

{{/* The InferencePool: named like the release (a different kind from the Service). */}}
{{- define "gpt-oss-server.inferencePoolName" -}}
{{- include "gpt-oss-server.fullname" . }}
{{- end }}

{{/* The created endpoint picker's objects (Deployment, Service, ServiceAccount, ...). */}}
{{- define "gpt-oss-server.pickerFullname" -}}
{{- printf "%s-epp" (include "gpt-oss-server.fullname" . | trunc 59 | trimSuffix "-") }}
{{- end }}

{{/* The picker the pool refers to: the created one, or the existing Service named in values. */}}
{{- define "gpt-oss-server.pickerRefName" -}}
{{- if .Values.inferencePool.endpointPicker.create }}
{{- include "gpt-oss-server.pickerFullname" . }}
{{- else }}
{{- .Values.inferencePool.endpointPicker.name }}
{{- end }}
{{- end }}

{{/* Selects the picker pods only (component differs from the server's and the test's). */}}
{{- define "gpt-oss-server.pickerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "gpt-oss-server.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: endpoint-picker
{{- end }}

{{- define "gpt-oss-server.pickerLabels" -}}
helm.sh/chart: {{ include "gpt-oss-server.chart" . }}
{{ include "gpt-oss-server.pickerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Values.inferencePool.endpointPicker.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "gpt-oss-server.pickerImage" -}}
{{- $image := .Values.inferencePool.endpointPicker.image }}
{{- if $image.digest }}
{{- printf "%s:%s@%s" $image.repository $image.tag $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}
{{- end }}

{{/* The picker's EndpointPickerConfig: the user's text, or one scheduling profile whose
  scorers (queue depth, KV-cache utilisation, prefix cache) have the weights in values and
  whose picker takes the highest total score. A weight of 0 leaves that scorer out. */}}
{{- define "gpt-oss-server.pickerConfig" -}}
{{- $epp := .Values.inferencePool.endpointPicker }}
{{- if $epp.config }}
{{- $epp.config }}
{{- else }}
{{- $scorers := list }}
{{- range $pair := list (list "queue-scorer" $epp.scorerWeights.queue) (list "kv-cache-utilization-scorer" $epp.scorerWeights.kvCacheUtilization) (list "prefix-cache-scorer" $epp.scorerWeights.prefixCache) }}
{{- if gt (int (index $pair 1)) 0 }}
{{- $scorers = append $scorers $pair }}
{{- end }}
{{- end -}}
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
  - type: single-profile-handler
{{- range $scorers }}
  - type: {{ index . 0 }}
{{- end }}
  - type: max-score-picker
schedulingProfiles:
  - name: default
    plugins:
{{- range $scorers }}
      - pluginRef: {{ index . 0 }}
        weight: {{ index . 1 }}
{{- end }}
      - pluginRef: max-score-picker
{{- end }}
{{- end }}

{{/* The Redis response store's password Secret, empty when none is configured. */}}
{{- define "gpt-oss-server.responseStoreSecret" -}}
{{- if .Values.responseStore.redis.url }}
{{- .Values.responseStore.redis.existingSecret }}
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
{{- $redis := .Values.responseStore.redis }}
{{- if and $redis.existingSecret (not $redis.url) }}
{{- fail "responseStore.redis.existingSecret needs responseStore.redis.url (redis://HOST:PORT/DB)" }}
{{- end }}
{{- $pool := .Values.inferencePool }}
{{- if and $pool.httpRoute.enabled (not $pool.enabled) }}
{{- fail "inferencePool.httpRoute.enabled needs inferencePool.enabled (the route's backend is the InferencePool)" }}
{{- end }}
{{- if $pool.enabled }}
{{- if and (not $pool.endpointPicker.create) (not $pool.endpointPicker.name) }}
{{- fail "inferencePool.endpointPicker.create=false needs inferencePool.endpointPicker.name (the Service of the picker that already runs)" }}
{{- end }}
{{- if .Values.metrics.protect }}
{{- fail "inferencePool.enabled with metrics.protect: the endpoint picker scrapes /metrics without an API key; set metrics.protect=false (and keep /metrics in-cluster with networkPolicy.ingressFrom)" }}
{{- end }}
{{- $w := $pool.endpointPicker.scorerWeights }}
{{- if and $pool.endpointPicker.create (not $pool.endpointPicker.config) (eq (add (int $w.queue) (int $w.kvCacheUtilization) (int $w.prefixCache)) 0) }}
{{- fail "inferencePool.endpointPicker.scorerWeights: at least one weight must be above 0" }}
{{- end }}
{{- if and $pool.httpRoute.enabled (not $pool.httpRoute.parentRefs) (not $pool.httpRoute.gateway.name) }}
{{- fail "inferencePool.httpRoute needs inferencePool.httpRoute.gateway.name or inferencePool.httpRoute.parentRefs (the Gateway the route attaches to)" }}
{{- end }}
{{- end }}
{{- end }}
