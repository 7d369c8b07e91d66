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
