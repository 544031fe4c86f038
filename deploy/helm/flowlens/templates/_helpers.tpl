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

{{- /* A collector shard's StatefulSet name: (list $ K). One shard keeps the plain name. */ -}}
{{- define "flowlens.shardName" -}}
{{- $root := index . 0 -}}
{{- $full := include "flowlens.fullname" $root -}}
{{- if gt (int $root.Values.collector.shards) 1 -}}
{{ printf "%s-collector-%d" $full (int (index . 1)) }}
{{- else -}}
{{ printf "%s-collector" $full }}
{{- end -}}
{{- end }}

{{- /*
A shard's replicas by their own DNS names (the StatefulSet's headless Service), comma-
separated: (list $ K). Each gets every batch of the shard.
*/ -}}
{{- define "flowlens.shardURLs" -}}
{{- $root := index . 0 -}}
{{- $sts := include "flowlens.shardName" . -}}
{{- $scheme := ternary "https" "http" (not (empty $root.Values.collector.tls.secretName)) -}}
{{- $urls := list -}}
{{- range $i := until (int $root.Values.collector.replicas) -}}
{{- $urls = append $urls (printf "%s://%s-%d.%s-peers.%s.svc:%d" $scheme $sts $i $sts $root.Release.Namespace (int $root.Values.collector.port)) -}}
{{- end -}}
{{ join "," $urls }}
{{- end }}

{{- /*
Where agents send batches: with one shard of one replica, its Service; otherwise every
replica of every shard by name: replicas separated by ",", shards by ";" (the agent splits
aggregates between shards by server address and sends each shard's to all its replicas).
*/ -}}
{{- define "flowlens.collectorURL" -}}
{{- $scheme := ternary "https" "http" (not (empty .Values.collector.tls.secretName)) -}}
{{- if or (gt (int .Values.collector.replicas) 1) (gt (int .Values.collector.shards) 1) -}}
{{- $shards := list -}}
{{- range $k := until (int .Values.collector.shards) -}}
{{- $shards = append $shards (include "flowlens.shardURLs" (list $ $k)) -}}
{{- end -}}
{{ join ";" $shards }}
{{- else -}}
{{ $scheme }}://{{ include "flowlens.fullname" . }}-collector.{{ .Release.Namespace }}.svc:{{ .Values.collector.port }}
{{- end -}}
{{- end }}

{{- /* Whether the Prometheus Operator resources are rendered: "true" or "". */ -}}
{{- define "flowlens.operator" -}}
{{- $m := .Values.monitoring.prometheusOperator -}}
{{- if eq (toString $m) "auto" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end -}}
{{- else if $m }}true{{ end -}}
{{- end }}

{{- /* Whether pods and the Service carry prometheus.io/* scrape annotations: "true" or "". */ -}}
{{- define "flowlens.scrapeAnnotations" -}}
{{- $a := .Values.monitoring.scrapeAnnotations -}}
{{- if eq (toString $a) "auto" -}}
{{- if not (include "flowlens.operator" .) }}true{{ end -}}
{{- else if $a }}true{{ end -}}
{{- end }}

{{- /* host:port for --listen: [::]:9810, 0.0.0.0:9810, [fd00::1]:9810 */ -}}
{{- define "flowlens.listen" -}}
{{- $h := index . 0 -}}{{- $p := index . 1 -}}
{{- if and (contains ":" $h) (not (hasPrefix "[" $h)) -}}[{{ $h }}]:{{ $p }}{{- else -}}{{ $h }}:{{ $p }}{{- end -}}
{{- end }}

{{- /* FLOWLENS_* variables from a tuning map; empty values are left to the binary. */ -}}
{{- define "flowlens.tuningEnv" -}}
{{- range $k, $v := . }}
{{- if ne (toString $v) "" }}
- name: FLOWLENS_{{ $k | snakecase | upper }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end }}
{{- end }}
