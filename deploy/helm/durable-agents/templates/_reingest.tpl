{{/* The re-ingestion schedule's documents (reingestSchedule.documents): read by the agent pool
that runs ingestion activities (task queue "agent") at every run, and by the hook that creates
the schedule (it tells a directory from a file). A PersistentVolumeClaim or a ConfigMap, always
mounted read-only. Empty unless the schedule is enabled. */}}
{{- define "durable-agents.documentsVolume" -}}
{{- $r := .Values.reingestSchedule -}}
{{- if $r.enabled }}
- name: documents
{{- if $r.documents.existingClaim }}
  persistentVolumeClaim: {claimName: {{ $r.documents.existingClaim }}, readOnly: true}
{{- else }}
  configMap: {name: {{ $r.documents.configMap }}}
{{- end }}
{{- end }}
{{- end -}}

{{- define "durable-agents.documentsVolumeMount" -}}
{{- $r := .Values.reingestSchedule -}}
{{- if $r.enabled }}
- {name: documents, mountPath: {{ $r.documents.mountPath }}, readOnly: true}
{{- end }}
{{- end -}}
