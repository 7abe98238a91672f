{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "rung.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, with the chart name unless it already holds it. */}}
{{- define "rung.fullname" -}}
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

{{- define "rung.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rung.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rung.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rung.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rung
{{- end }}

{{- define "rung.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rung.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image. No image is published: image.repository must name the registry the
cluster pulls from (a first path component with a "." or ":", or localhost, as container
runtimes read it); a bare "rung" or "team/rung" would be looked up on Docker Hub and fail
to pull long after the install seemed to succeed.
*/}}
{{- define "rung.image" -}}
{{- $repository := .Values.image.repository | default "" | trim }}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- $host := first (splitList "/" $repository) }}
{{- $hasRegistry := and (contains "/" $repository) (or (contains "." $host) (contains ":" $host) (eq $host "localhost")) }}
{{- if not $hasRegistry }}
{{- $what := "image.repository is required" }}
{{- if $repository }}
{{- $what = printf "image.repository %s names no registry (its first part must be a registry host, such as registry.example.com/ or localhost:5000/)" (quote $repository) }}
{{- end }}
{{- fail (printf "%s: no Rung image is published. Build it with `make image` (build/rung-%s.oci.tar), push it with `skopeo copy oci-archive:build/rung-%s.oci.tar docker://REGISTRY/rung:%s`, then install with --set image.repository=REGISTRY/rung (charts/rung/README.md, Image)." $what .Chart.AppVersion .Chart.AppVersion $tag) }}
{{- end }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/*
Rules the operator needs in every namespace it serves. Each group of rules says who uses it.
*/}}
{{- define "rung.namespacedRules" -}}
# ModelDeployments: read and watch them; kopf patches its bookkeeping annotations.
- apiGroups: [rung.dev]
  resources: [modeldeployments]
  verbs: [get, list, watch, patch]
# The operator writes all of its state through the status subresource.
- apiGroups: [rung.dev]
  resources: [modeldeployments/status]
  verbs: [get, update, patch]
# Owned objects carry ownerReferences with blockOwnerDeletion, which the
# OwnerReferencesPermissionEnforcement admission plugin (e.g. OpenShift) only allows
# to users who may update the owner's finalizers.
- apiGroups: [rung.dev]
  resources: [modeldeployments/finalizers]
  verbs: [update]
# What the operator creates and owns (garbage-collected with the ModelDeployment).
- apiGroups: [serving.kserve.io]
  resources: [inferenceservices, llminferenceservices]
  verbs: [get, list, watch, create, update, patch, delete]
# An external LLM provider's ExternalName Service (kind llm, source external). Secrets are
# not in this list: the provider's credentials are passed on by reference, never read.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors, prometheusrules]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, update, patch, delete]
# Read only: KServe's predictor Deployments, to tell whether KServe has acted on the
# InferenceService spec Rung applied and rolled it out (readiness at that generation).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch]
# Retraining pipelines launched as Kubernetes Jobs (level 3). The operator always watches
# the Jobs it labelled (a finished run reconciles its ModelDeployment at once); starting
# them is what rbac.retraining.jobs grants.
- apiGroups: [batch]
  resources: [jobs]
  {{- if .Values.rbac.retraining.jobs }}
  verbs: [get, list, watch, create, update, patch, delete]
  {{- else }}
  verbs: [get, list, watch]
  {{- end }}
{{- if .Values.rbac.retraining.argoWorkflows }}
# Retraining pipelines launched as Argo Workflows (level 3): created, then read for the outcome.
- apiGroups: [argoproj.io]
  resources: [workflows]
  verbs: [get, list, watch, create]
{{- end }}
# Decisions are announced as Events; a retraining Job's FailedCreate Events (pods refused:
# a missing ServiceAccount, a quota) are read to report why its run cannot start.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, get, list]
{{- end }}

{{/* Cluster-scoped reads of kopf: CRDs, to follow resources installed after start-up. */}}
{{- define "rung.discoveryRules" -}}
# kopf follows CRDs, to serve resources whose CRD is installed after start-up.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end }}
