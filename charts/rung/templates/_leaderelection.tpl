{{/* Prefix of the operator's Lease names (--lease-name): leaderElection.leaseName, else the full name. */}}
{{- define "rung.leaseName" -}}
{{- default (include "rung.fullname" .) .Values.leaderElection.leaseName | trunc 63 | trimSuffix "-" }}
{{- end }}
