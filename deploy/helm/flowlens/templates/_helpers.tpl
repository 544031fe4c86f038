{{- define "flowlens.name" -}}flowlens{{- end }}

{{- define "flowlens.fullname" -}}
{{- if contains "flowlens" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-flowlens" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "flowlens.labels" -}}
app.kubernetes.io/name: flowlens
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "flowlens.selector" -}}
app.kubernetes.io/name: flowlens
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flowlens.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "flowlens.secretName" -}}
{{ .Values.auth.secretName | default (printf "%s-token" (include "flowlens.fullname" .)) }}
{{- end }}

{{- define "flowlens.collectorURL" -}}
{{ if .Values.collector.tls.secretName }}https{{ else }}http{{ end }}://{{ include "flowlens.fullname" . }}-collector.{{ .Release.Namespace }}.svc:{{ .Values.collector.port }}
{{- end }}
