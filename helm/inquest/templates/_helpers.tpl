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
Where Secrets named by `secretKeyRef` or `secretRef` in the config (and by mountSecrets) are mounted:
<secretsDir>/<name>/<key>, the path the operator reads them from (--secrets-dir; inquest.config.SECRETS_DIR).
*/}}
{{- define "inquest.secretsDir" -}}/var/run/secrets/inquest{{- end }}

{{/* The intake's token Secret, apart from the config's Secrets so that no Secret name can collide with it. */}}
{{- define "inquest.intakeTokenDir" -}}/var/run/secrets/inquest-intake{{- end }}

{{/*
Collects, into .names (a dict used as a set), the Secret name of every {secretKeyRef: {name, key}} and every notifier
{secretRef: {namespace, name, key}} found anywhere in .node, so a new credential field is mounted without touching
the chart. A pod mounts only Secrets of its own namespace, so a secretRef to another namespace (.namespace) fails.
*/}}
{{- define "inquest.collectSecretNames" -}}
{{- $names := .names }}
{{- $namespace := .namespace }}
{{- if kindIs "map" .node }}
{{- if hasKey .node "secretKeyRef" }}
{{- $ref := .node.secretKeyRef | default dict }}
{{- $name := required "every secretKeyRef in config needs a name" $ref.name }}
{{- $_ := required (printf "secretKeyRef %s needs a key" $name) $ref.key }}
{{- $_ := set $names $name true }}
{{- end }}
{{- if and (hasKey .node "secretRef") (kindIs "map" .node.secretRef) }}
{{- $ref := .node.secretRef }}
{{- $name := required "every secretRef in config needs a name" $ref.name }}
{{- $_ := required (printf "secretRef %s needs a key" $name) $ref.key }}
{{- if ne (toString $ref.namespace) $namespace }}
{{- fail (printf "secretRef %s/%s: the operator reads notifier Secrets from files mounted in its pod, and a pod mounts only Secrets of its own namespace (%s); keep the Secret there" (toString $ref.namespace) $name $namespace) }}
{{- end }}
{{- $_ := set $names $name true }}
{{- end }}
{{- range $key, $value := .node }}
{{- include "inquest.collectSecretNames" (dict "node" $value "names" $names "namespace" $namespace) }}
{{- end }}
{{- else if kindIs "slice" .node }}
{{- range .node }}
{{- include "inquest.collectSecretNames" (dict "node" . "names" $names "namespace" $namespace) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The sorted Secret names the config refers to, and those of mountSecrets, one per line. */}}
{{- define "inquest.secretNames" -}}
{{- $names := dict }}
{{- include "inquest.collectSecretNames" (dict "node" .Values.config "names" $names "namespace" .Release.Namespace) }}
{{- range .Values.mountSecrets }}
{{- $_ := set $names . true }}
{{- end }}
{{- keys $names | sortAlpha | join "\n" }}
{{- end }}
