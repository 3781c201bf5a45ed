{{/* Names and labels shared by every object of the release. */}}

{{- define "cloudjob.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cloudjob.fullname" -}}
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

{{- define "cloudjob.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cloudjob.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cloudjob.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cloudjob.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "cloudjob.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cloudjob.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The controller's settings as CLOUDJOB_* variables (controller/settings.py): a list of
env entries. A setting whose value is empty or null is left out, so the controller's
own default applies. Non-strings go through toJson, so numbers never render in
exponent form.
*/}}
{{- define "cloudjob.settingsEnv" -}}
{{- $v := .Values }}
{{- $pairs := list
  (list "CLOUDJOB_LOG_LEVEL" $v.logLevel)
  (list "CLOUDJOB_ZOOKEEPER__HOSTS" $v.zookeeper.hosts)
  (list "CLOUDJOB_ZOOKEEPER__NAMESPACE" $v.zookeeper.namespace)
  (list "CLOUDJOB_ZOOKEEPER__SESSION_TIMEOUT" $v.zookeeper.sessionTimeoutSeconds)
  (list "CLOUDJOB_MESOS__MASTER" $v.mesos.master)
  (list "CLOUDJOB_MESOS__FRAMEWORK_NAME" $v.mesos.frameworkName)
  (list "CLOUDJOB_MESOS__ROLE" $v.mesos.role)
  (list "CLOUDJOB_MESOS__USER" $v.mesos.user)
  (list "CLOUDJOB_MESOS__PRINCIPAL" $v.mesos.principal)
  (list "CLOUDJOB_MESOS__WEBUI_URL" $v.mesos.webuiUrl)
}}
{{- range $key, $value := $v.mesos.framework }}
{{- $pairs = append $pairs (list (printf "CLOUDJOB_MESOS__%s" ($key | snakecase | upper)) $value) }}
{{- end }}
{{- if $v.kubernetes.watchNamespaces }}
{{- $pairs = append $pairs (list "CLOUDJOB_KUBERNETES__NAMESPACES" (join "," $v.kubernetes.watchNamespaces)) }}
{{- end }}
{{- if not $v.console.enabled }}
{{- $pairs = append $pairs (list "CLOUDJOB_CONSOLE__ENABLED" false) }}
{{- end }}
{{- if $v.console.namespaces }}
{{- $pairs = append $pairs (list "CLOUDJOB_CONSOLE__NAMESPACES" (join "," $v.console.namespaces)) }}
{{- end }}
{{- $pairs = concat $pairs (list
  (list "CLOUDJOB_STATUS__REFRESH_INTERVAL" $v.status.refreshIntervalSeconds)
  (list "CLOUDJOB_STATUS__MIN_INTERVAL" $v.status.minIntervalSeconds)
  (list "CLOUDJOB_STATUS__WRITES_PER_SECOND" $v.status.writesPerSecond)
  (list "CLOUDJOB_STATUS__WRITE_BURST" $v.status.writeBurst)
  (list "CLOUDJOB_STATUS__EVENTS_PER_SECOND" $v.status.eventsPerSecond)
  (list "CLOUDJOB_STATUS__EVENT_BURST" $v.status.eventBurst)
  (list "CLOUDJOB_STATUS__EVENT_PACE" $v.status.eventPaceSeconds)
  (list "CLOUDJOB_HTTP__HEALTH_PORT" $v.http.healthPort)
  (list "CLOUDJOB_HTTP__METRICS_PORT" $v.http.metricsPort)
  (list "CLOUDJOB_HISTORY__DATA_DIR" $v.history.dataDir)
  (list "CLOUDJOB_HISTORY__RETENTION_DAYS" $v.history.retentionDays)
  (list "CLOUDJOB_HISTORY__RETENTION_RUNS_PER_JOB" $v.history.retentionRunsPerJob)
  (list "CLOUDJOB_HISTORY__RECENT_RUNS" $v.history.recentRuns)
  (list "CLOUDJOB_HISTORY__BUFFER_SIZE" $v.history.bufferSize)
) }}
{{- $env := list }}
{{- range $pairs }}
{{- $value := index . 1 }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
{{- $env = append $env (dict "name" (index . 0) "value" (ternary $value (toJson $value) (kindIs "string" $value))) }}
{{- end }}
{{- end }}
{{- with $v.zookeeper.digestSecret }}
{{- if .name }}
{{- $env = append $env (dict "name" "CLOUDJOB_ZOOKEEPER__DIGEST" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) }}
{{- end }}
{{- end }}
{{- with $v.history.databaseUrlSecret }}
{{- if .name }}
{{- $env = append $env (dict "name" "CLOUDJOB_HISTORY__DATABASE_URL" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) }}
{{- end }}
{{- end }}
{{- with $v.mesos.secretRef }}
{{- if .name }}
{{- $env = append $env (dict "name" "CLOUDJOB_MESOS__SECRET" "valueFrom" (dict "secretKeyRef" (dict "name" .name "key" .key))) }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/* The namespaces/CRDs/resources rules of the controller's RBAC: see rbac.yaml. */}}
{{- define "cloudjob.resourceRules" -}}
# kopf lists and watches both kinds, and patches them: finalizer, progress and
# last-handled annotations. The controller never creates or deletes them.
- apiGroups: [cloudjob.io]
  resources: [cloudapps, cloudjobs]
  verbs: [list, watch, patch]
# Status goes through the status subresource.
- apiGroups: [cloudjob.io]
  resources: [cloudapps/status, cloudjobs/status]
  verbs: [patch]
# The controller's event recorder posts core Events and patches their count on repeats.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}
