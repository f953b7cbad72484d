{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "s3fs-csi.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name: "<release>" when it already contains the chart name, else "<release>-s3fs-csi". */}}
{{- define "s3fs-csi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "s3fs-csi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "s3fs-csi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: s3fs-csi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one role (controller | node); never change on upgrade (selectors are immutable). */}}
{{- define "s3fs-csi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "s3fs-csi.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "s3fs-csi.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "s3fs-csi.controllerServiceAccount" -}}
{{- if .Values.serviceAccount.controller.create -}}
{{- default (printf "%s-controller" (include "s3fs-csi.fullname" .)) .Values.serviceAccount.controller.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.controller.name -}}
{{- end -}}
{{- end -}}

{{- define "s3fs-csi.nodeServiceAccount" -}}
{{- if .Values.serviceAccount.node.create -}}
{{- default (printf "%s-node" (include "s3fs-csi.fullname" .)) .Values.serviceAccount.node.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.node.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the credentials Secret, empty when none is wired in. */}}
{{- define "s3fs-csi.credentialsSecret" -}}
{{- if .Values.credentials.name -}}
{{- .Values.credentials.name -}}
{{- else if .Values.credentials.create -}}
{{- printf "%s-credentials" (include "s3fs-csi.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Node plugin socket directory on the host (kubelet's plugin dir for this driver). */}}
{{- define "s3fs-csi.nodePluginDir" -}}
{{- printf "%s/plugins/%s" (.Values.kubeletDir | trimSuffix "/") .Values.driverName -}}
{{- end -}}

{{/* True (non-empty) when the driver must listen on HTTP: http probes, or metrics. */}}
{{- define "s3fs-csi.httpEnabled" -}}
{{- if or (eq .Values.probes.mode "http") .Values.metrics.enabled -}}true{{- end -}}
{{- end -}}

{{/* The flag selecting the HTTP listener (or turning it off). Arg: dict root port. */}}
{{- define "s3fs-csi.httpFlag" -}}
{{- if include "s3fs-csi.httpEnabled" .root -}}
- --http-endpoint=:{{ .port }}
{{- else -}}
- --health-port=0
{{- end -}}
{{- end -}}

{{/* S3 default flags, identical in both roles. */}}
{{- define "s3fs-csi.s3Flags" -}}
{{- with .Values.s3.endpoint }}
- --s3-endpoint={{ . }}
{{- end }}
- --s3-region={{ .Values.s3.region }}
- --s3-path-style={{ .Values.s3.pathStyle }}
- --s3-insecure={{ .Values.s3.insecure }}
{{- if .Values.s3.caBundle.configMap }}
- --s3-ca-bundle=/etc/s3fs-csi/ca/{{ .Values.s3.caBundle.key }}
{{- end }}
{{- end -}}

{{/*
Liveness and readiness probes of a driver container. Arg: dict root port.
http: GET /healthz and /readyz; exec: `s3fs-csi probe` on the socket (liveness ignores "not ready yet",
so a long start-up recovery is not mistaken for a hang).
*/}}
{{- define "s3fs-csi.probes" -}}
{{- $p := .root.Values.probes -}}
{{- if eq $p.mode "exec" }}
startupProbe:
  exec:
    command: ["s3fs-csi", "probe", "--endpoint", "unix:///csi/csi.sock", "--timeout", {{ $p.exec.probeTimeout | quote }}, "--ignore-not-ready"]
  timeoutSeconds: {{ $p.exec.timeoutSeconds }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  exec:
    command: ["s3fs-csi", "probe", "--endpoint", "unix:///csi/csi.sock", "--timeout", {{ $p.exec.probeTimeout | quote }}, "--ignore-not-ready"]
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  timeoutSeconds: {{ $p.exec.timeoutSeconds }}
  periodSeconds: {{ $p.exec.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  exec:
    command: ["s3fs-csi", "probe", "--endpoint", "unix:///csi/csi.sock", "--timeout", {{ $p.exec.probeTimeout | quote }}]
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  timeoutSeconds: {{ $p.exec.timeoutSeconds }}
  periodSeconds: {{ $p.exec.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- else }}
startupProbe:
  httpGet:
    {{- with $p.httpHost }}
    host: {{ . }}
    {{- end }}
    path: /healthz
    port: healthz
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    {{- with $p.httpHost }}
    host: {{ . }}
    {{- end }}
    path: /healthz
    port: healthz
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    {{- with $p.httpHost }}
    host: {{ . }}
    {{- end }}
    path: /readyz
    port: healthz
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end }}
{{- end -}}

{{/* Refuses clusters older than 1.26; unstamped source builds (v0.0.0-...) are let through. */}}
{{- define "s3fs-csi.checkKubeVersion" -}}
{{- $v := .Capabilities.KubeVersion.Version -}}
{{- if and (not (hasPrefix "v0.0.0" $v)) (not (semverCompare ">=1.26.0-0" $v)) -}}
{{- fail (printf "s3fs-csi needs Kubernetes >= 1.26 (delegated fsGroup, VOLUME_MOUNT_GROUP); this cluster is %s" $v) -}}
{{- end -}}
{{- end -}}

{{/* Image of the mounter: mounter.image when set, else the driver's image (same binary). */}}
{{- define "s3fs-csi.mounterImage" -}}
{{- $i := .Values.mounter.image -}}
{{- if $i.digest -}}
{{- printf "%s@%s" (default .Values.image.repository $i.repository) $i.digest -}}
{{- else if or $i.repository $i.tag -}}
{{- printf "%s:%s" (default .Values.image.repository $i.repository) (default (default .Chart.AppVersion .Values.image.tag) $i.tag) -}}
{{- else -}}
{{- include "s3fs-csi.image" . -}}
{{- end -}}
{{- end -}}

{{/* Host directory of the mounter's socket, shared by the mounter and the node plugin. */}}
{{- define "s3fs-csi.mounterRuntimeDir" -}}
{{- default (printf "/run/s3fs-csi/%s" .Values.driverName) (.Values.mounter.runtimeDir | trimSuffix "/") -}}
{{- end -}}

{{- define "s3fs-csi.mounterSocketDir" -}}
{{- default (printf "/run/s3fs-csi-mounter/%s" .Values.driverName) (.Values.mounter.socketDir | trimSuffix "/") -}}
{{- end -}}
