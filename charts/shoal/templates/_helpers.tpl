{{/* The chart's name. */}}
{{- define "shoal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the prefix of every object's name. */}}
{{- define "shoal.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" -}}
{{- else if contains (include "shoal.name" .) .Release.Name -}}
{{- .Release.Name | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "shoal.name" .) | trunc 48 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "shoal.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels; add app.kubernetes.io/component: supernode|node. */}}
{{- define "shoal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shoal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
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

{{/* The token volume, mounted at /etc/shoal/token in every pod. */}}
{{- define "shoal.tokenVolume" -}}
- name: token
  secret:
    secretName: {{ include "shoal.tokenSecretName" . }}
    defaultMode: 0444
    items:
      - key: {{ include "shoal.tokenSecretKey" . }}
        path: token
{{- end -}}
