{{/* Names and labels, the usual Helm conventions. */}}
{{- define "inquest.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inquest.fullname" -}}
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

{{- define "inquest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inquest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inquest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "inquest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "inquest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "inquest.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "inquest.configMapName" -}}
{{- printf "%s-config" (include "inquest.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Where Secrets named by `secretKeyRef` in the config are mounted: <secretsDir>/<name>/<key>, the path the operator
resolves a secretKeyRef to (inquest.config.SECRETS_DIR).
*/}}
{{- define "inquest.secretsDir" -}}/var/run/secrets/inquest{{- end }}

{{/* The intake's token Secret, apart from the config's Secrets so that no Secret name can collide with it. */}}
{{- define "inquest.intakeTokenDir" -}}/var/run/secrets/inquest-intake{{- end }}

{{/*
Collects, into .names (a dict used as a set), the Secret name of every {secretKeyRef: {name, key}} found anywhere
in .node, so a new credential field (notifications included) is mounted without touching the chart.
*/}}
{{- define "inquest.collectSecretNames" -}}
{{- $names := .names }}
{{- if kindIs "map" .node }}
{{- if hasKey .node "secretKeyRef" }}
{{- $ref := .node.secretKeyRef | default dict }}
{{- $name := required "every secretKeyRef in config needs a name" $ref.name }}
{{- $_ := required (printf "secretKeyRef %s needs a key" $name) $ref.key }}
{{- $_ := set $names $name true }}
{{- end }}
{{- range $key, $value := .node }}
{{- include "inquest.collectSecretNames" (dict "node" $value "names" $names) }}
{{- end }}
{{- else if kindIs "slice" .node }}
{{- range .node }}
{{- include "inquest.collectSecretNames" (dict "node" . "names" $names) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The sorted Secret names the config refers to, one per line. */}}
{{- define "inquest.secretNames" -}}
{{- $names := dict }}
{{- include "inquest.collectSecretNames" (dict "node" .Values.config "names" $names) }}
{{- keys $names | sortAlpha | join "\n" }}
{{- end }}
