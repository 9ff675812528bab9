{{- /* The agent pools' blob store (agent.blobStore): the settings agent.blobs.settings reads.
With type s3 the endpoint, region and credentials are the AWS SDK's standard variables, so a
Secret's access key and IRSA (a role on the ServiceAccount, serviceAccount.annotations) both work
without anything of ours. */ -}}
{{- define "durable-agents.blobStoreEnv" -}}
{{- $b := .Values.agent.blobStore -}}
{{- if eq $b.type "s3" }}
{{- if not $b.s3.bucket }}
{{- fail "agent.blobStore.type is s3 but agent.blobStore.s3.bucket is empty: name the bucket (create it beforehand)" }}
{{- end }}
- {name: AGENT_BLOB_STORE, value: s3}
- {name: AGENT_BLOB_S3_BUCKET, value: {{ $b.s3.bucket | quote }}}
{{- with $b.s3.prefix }}
- {name: AGENT_BLOB_S3_PREFIX, value: {{ . | quote }}}
{{- end }}
{{- with $b.s3.endpoint }}
- {name: AWS_ENDPOINT_URL_S3, value: {{ . | quote }}}
{{- end }}
{{- with $b.s3.region }}
- {name: AWS_REGION, value: {{ . | quote }}}
{{- end }}
{{- with $b.s3.credentials.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: {{ $b.s3.credentials.accessKeyIdKey }}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: {{ $b.s3.credentials.secretAccessKeyKey }}}
{{- end }}
{{- else }}
- {name: AGENT_BLOB_DIR, value: /data/blobs}
{{- end }}
{{- end }}

{{- /* With S3 the bucket holds the blobs and the paid provider answers (agent.paid_calls), so the
pod needs no blob volume: nothing is written to AGENT_BLOB_DIR. */ -}}
{{- define "durable-agents.blobStoreVolume" -}}
{{- $b := .Values.agent.blobStore -}}
{{- if ne $b.type "s3" }}
- name: blobs
  persistentVolumeClaim:
    claimName: {{ $b.existingClaim | default (include "durable-agents.componentName" (dict "root" . "component" "blobs")) }}
{{- end }}
{{- end }}

{{- define "durable-agents.blobStoreVolumeMount" -}}
{{- if ne .Values.agent.blobStore.type "s3" }}
- {name: blobs, mountPath: /data/blobs}
{{- end }}
{{- end }}
