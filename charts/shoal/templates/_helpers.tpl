{{/* The chart's name. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's full name, the prefix of every object's name. At most 42
characters: the longest suffix is "-supernode-headless" (19), and a
StatefulSet's controller-revision-hash label ("<name>-supernode-<10>") must
stay within 63 too.
*/}}
{{- define "shoal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 42 | trimSuffix "-" -}}
{{- else if contains (include "shoal.name" .) .Release.Name -}}
{{- .Release.Name | trunc 42 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "shoal.name" .) | trunc 42 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "shoal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels; add app.kubernetes.io/component: supernode|node. */}}
{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "shoal.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) | quote }}
{{- end -}}

{{- define "shoal.supernodeName" -}}
{{- printf "%s-supernode" (include "shoal.fullname" .) -}}
{{- end -}}

{{- define "shoal.supernodeHeadlessName" -}}
{{- printf "%s-supernode-headless" (include "shoal.fullname" .) -}}
{{- end -}}

{{- define "shoal.serviceAccountName" -}}
{{- printf "%s-supernode" (include "shoal.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the cluster token, and the key in it. */}}
{{- define "shoal.tokenSecretName" -}}
{{- if .Values.token.existingSecret -}}
{{- .Values.token.existingSecret -}}
{{- else -}}
{{- printf "%s-token" (include "shoal.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "shoal.tokenSecretKey" -}}
{{- if .Values.token.existingSecret -}}
{{- .Values.token.existingSecretKey -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{/*
A byte size as a whole number of bytes: an integer, or a string such as
"40G" (10^9), "40Gi" (2^30), "500M", "1T", "1024" (values.schema.json checks
the form). Usage: include "shoal.bytes" (list "node.cacheQuota" .Values.node.cacheQuota)
*/}}
{{- define "shoal.bytes" -}}
{{- $name := index . 0 -}}
{{- $raw := index . 1 -}}
{{- $v := "" -}}
{{- if kindIs "string" $raw -}}{{- $v = $raw -}}{{- else -}}{{- $v = printf "%.0f" (float64 $raw) -}}{{- end -}}
{{- if not (regexMatch "^[0-9]+([KMGT]i?)?$" $v) -}}
{{- fail (printf "%s: %q is not a size (e.g. 40G, 40Gi or a number of bytes)" $name $v) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $v | int64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $v) $v -}}
{{- $mult := dict "" 1 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- mul $n (index $mult $unit) -}}
{{- end -}}

{{/* --cache-* flags of one component (its values: cacheQuota and the watermarks). */}}
{{- define "shoal.cacheArgs" -}}
{{- $name := index . 0 -}}
{{- $v := index . 1 -}}
{{- if le (int $v.cacheHighWatermarkPercent) (int $v.cacheLowWatermarkPercent) -}}
{{- fail (printf "%s.cacheLowWatermarkPercent (%d) must be below %s.cacheHighWatermarkPercent (%d)" $name (int $v.cacheLowWatermarkPercent) $name (int $v.cacheHighWatermarkPercent)) -}}
{{- end -}}
{{- $quota := include "shoal.bytes" (list (printf "%s.cacheQuota" $name) $v.cacheQuota) -}}
{{- if ne $quota "0" }}
- --cache-quota-bytes={{ $quota }}
- --cache-high-watermark-percent={{ int $v.cacheHighWatermarkPercent }}
- --cache-low-watermark-percent={{ int $v.cacheLowWatermarkPercent }}
{{- end -}}
{{- end -}}

{{/*
The --supernode value of the node agents. One replica: the ClusterIP Service.
Several: every replica's own address through the headless Service, comma-separated,
because a peer registers with every supernode URL it is given (behind one
Service it would reach only one replica at a time).
*/}}
{{- define "shoal.supernodeUrls" -}}
{{- $replicas := int .Values.supernode.replicas -}}
{{- if le $replicas 1 -}}
{{- printf "http://%s.%s.svc.%s:%d" (include "shoal.supernodeName" .) .Release.Namespace .Values.clusterDomain (int .Values.supernode.port) -}}
{{- else -}}
{{- $urls := list -}}
{{- range $i := until $replicas -}}
{{- $urls = append $urls (printf "http://%s-%d.%s.%s.svc.%s:%d" (include "shoal.supernodeName" $) $i (include "shoal.supernodeHeadlessName" $) $.Release.Namespace $.Values.clusterDomain (int $.Values.supernode.port)) -}}
{{- end -}}
{{- join "," $urls -}}
{{- end -}}
{{- end -}}

{{/*
The token volume, mounted at /etc/shoal/token in every pod. A whole-volume
mount (never subPath), so a rotated Secret reaches running pods: the kubelet
swaps the files in place and the services re-read the token file.
*/}}
{{- define "shoal.tokenVolume" -}}
- name: token
  secret:
    secretName: {{ include "shoal.tokenSecretName" . }}
    defaultMode: 0444
    items:
      - key: {{ include "shoal.tokenSecretKey" . }}
        path: token
{{- end -}}

{{/* The container securityContext every Shoal container runs with. */}}
{{- define "shoal.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* nodeSelector: Linux nodes, plus the component's own. */}}
{{- define "shoal.nodeSelector" -}}
{{- $sel := merge (dict) (. | default dict) (dict "kubernetes.io/os" "linux") -}}
{{- toYaml $sel -}}
{{- end -}}
