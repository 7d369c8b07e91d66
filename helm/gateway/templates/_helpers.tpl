{{- define "gateway.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gateway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gateway.instanceLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gateway.commonLabels" -}}
{{ include "gateway.instanceLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "gateway.selectorLabels" -}}
{{ include "gateway.instanceLabels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "gateway.labels" -}}
{{ include "gateway.commonLabels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "gateway.redisEnabled" -}}
{{- if or .Values.redis.url .Values.redis.urlSecret.name .Values.redis.enabled -}}true{{- end -}}
{{- end -}}

{{/* The gateway YAML: the user's config, with the server and state the chart runs. */}}
{{- define "gateway.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $server := default dict $config.server -}}
{{- $_ := set $server "host" "0.0.0.0" -}}
{{- $_ := set $server "port" 8080 -}}
{{- $_ := set $server "shutdown_grace_seconds" .Values.shutdown.graceSeconds -}}
{{- $_ := set $server "unready_seconds" .Values.shutdown.unreadySeconds -}}
{{- $_ := set $config "server" $server -}}
{{- $state := default dict $config.state -}}
{{- if include "gateway.redisEnabled" . -}}
{{- $_ := set $state "backend" "redis" -}}
{{- $_ := set $state "redis_url" "${GATEWAY_REDIS_URL}" -}}
{{- end -}}
{{- if .Values.database.urlSecret.name -}}
{{- $_ := set $state "database" "${DATABASE_URL}" -}}
{{- end -}}
{{- if $state -}}
{{- $_ := set $config "state" $state -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* More than one pod without a shared state backend: each pod would enforce its own rate
limits, budgets and cache, so N pods allow N times the configured limits. Refused unless
allowUnsharedState is set. */}}
{{- define "gateway.checkSharedState" -}}
{{- $many := gt (int .Values.replicaCount) 1 -}}
{{- if .Values.autoscaling.enabled -}}
{{- $many = gt (int .Values.autoscaling.maxReplicas) 1 -}}
{{- end -}}
{{- if and $many (not (include "gateway.redisEnabled" .)) (not .Values.allowUnsharedState) -}}
{{- fail "more than one replica without a shared state backend: every pod would enforce its own rate limits, budgets and cache. Set redis.url, redis.urlSecret or redis.enabled (see values-production.yaml), run one replica, or set allowUnsharedState: true to accept per-pod limits." -}}
{{- end -}}
{{- end -}}
