{{/* The release's name for its objects: "vault-injector" for a release of that name, else "<release>-vault-injector". */}}
{{- define "vault-injector.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vault-injector.labels" -}}
app.kubernetes.io/name: vault-injector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vault-injector.selectorLabels" -}}
app.kubernetes.io/name: vault-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Certificates: "files" (a Secret the user gives, or cert-manager's) or "auto" (auto-TLS). */}}
{{- define "vault-injector.tlsMode" -}}
{{- if or .Values.injector.certs.secretName .Values.injector.certManager.enabled -}}files{{- else -}}auto{{- end -}}
{{- end -}}

{{- define "vault-injector.tlsSecretName" -}}
{{- if .Values.injector.certs.secretName -}}{{ .Values.injector.certs.secretName }}{{- else -}}{{ include "vault-injector.fullname" . }}-tls{{- end -}}
{{- end -}}

{{/* Whether replicas elect a leader (the same condition as vault-helm's). */}}
{{- define "vault-injector.elector" -}}
{{- if and (eq (include "vault-injector.tlsMode" .) "auto") .Values.injector.leaderElector.enabled (gt (int .Values.injector.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{/* The Service's DNS names, which the serving certificate must carry. */}}
{{- define "vault-injector.hosts" -}}
{{- $svc := include "vault-injector.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- printf "%s,%s.%s,%s.%s.svc,%s.%s.svc.cluster.local" $svc $svc $ns $svc $ns $svc $ns -}}
{{- end -}}

{{/* A value given as YAML or, as vault-helm allows, as a templated string. */}}
{{- define "vault-injector.render" -}}
{{- $value := index . 0 -}}
{{- $root := index . 1 -}}
{{- if kindIs "string" $value -}}
{{- tpl $value $root -}}
{{- else -}}
{{- toYaml $value -}}
{{- end -}}
{{- end -}}

{{/* The CSI provider's objects. */}}
{{- define "vault-injector.csiName" -}}
{{- printf "%s-csi-provider" (include "vault-injector.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vault-injector.csiSelectorLabels" -}}
app.kubernetes.io/name: vault-injector-csi-provider
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vault-injector.csiLabels" -}}
{{ include "vault-injector.csiSelectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Whether the webhook's Deployment rolls workloads on secret rotation. */}}
{{- define "vault-injector.csiRestart" -}}
{{- if and .Values.csi.enabled .Values.csi.restartOnRotation.enabled -}}true{{- end -}}
{{- end -}}

{{/* Whether its replicas pick one to do it by a Lease (several replicas, leaderElector.enabled). */}}
{{- define "vault-injector.csiRestartElector" -}}
{{- if and (include "vault-injector.csiRestart" .) .Values.injector.leaderElector.enabled (gt (int .Values.injector.replicas) 1) -}}true{{- end -}}
{{- end -}}
