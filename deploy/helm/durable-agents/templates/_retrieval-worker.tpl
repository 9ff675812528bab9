{{/* The retrieval worker's container, the same with either backend: the StatefulSet of the
embedded backend and the Deployment of the postgres backend differ only around it. */}}
{{- define "durable-agents.retrievalContainer" -}}
{{- $root := . -}}
{{- $w := .Values.retrievalWorker -}}
- name: worker
  image: {{ include "durable-agents.image" (dict "root" $root "image" $w.image) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  securityContext:
    {{- include "durable-agents.containerSecurityContext" $root | nindent 4 }}
  ports:
    # One port serves /healthz, /readyz and /metrics.
    - {name: metrics, containerPort: 8401, protocol: TCP}
  env:
    {{- include "durable-agents.temporalEnv" (dict "root" $root "ns" "retrieval") | trim | nindent 4 }}
    {{- include "durable-agents.workerEnv" (dict "root" $root "image" $w.image "versioned" $w.versioned "deploymentName" $w.deploymentName "service" "retrieval-worker") | trim | nindent 4 }}
    - {name: RETRIEVAL_HTTP_ADDR, value: "0.0.0.0:8401"}
    - {name: RETRIEVAL_TASK_QUEUE, value: {{ $w.taskQueue | quote }}}
    - {name: RETRIEVAL_LOG_FORMAT, value: json}
    - {name: RETRIEVAL_LOG_LEVEL, value: {{ eq .Values.logLevel "warning" | ternary "warn" .Values.logLevel | quote }}}
    - {name: RETRIEVAL_STEMMER, value: {{ $w.stemmer | quote }}}
    - {name: RETRIEVAL_STOP_WORDS, value: {{ $w.stopWords | quote }}}
    {{- include "durable-agents.retrievalBackendEnv" $root | nindent 4 }}
    {{- include "durable-agents.extraEnv" $root | nindent 4 }}
    {{- with $w.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "durable-agents.envFrom" $root | nindent 2 }}
  # The embedded backend loads its snapshot and journal at start, which takes a while; the
  # postgres backend only connects.
  startupProbe:
    httpGet: {path: /healthz, port: metrics}
    periodSeconds: 5
    failureThreshold: {{ eq $w.backend "postgres" | ternary 12 60 }}
  livenessProbe:
    httpGet: {path: /healthz, port: metrics}
    periodSeconds: 15
    timeoutSeconds: 3
    failureThreshold: 4
  readinessProbe:
    httpGet: {path: /readyz, port: metrics}
    periodSeconds: 5
    timeoutSeconds: 3
  resources:
    {{- toYaml $w.resources | nindent 4 }}
  volumeMounts:
    {{- if eq $w.backend "embedded" }}
    - {name: data, mountPath: /data}
    {{- end }}
    - {name: tmp, mountPath: /tmp}
    {{- include "durable-agents.secretVolumeMounts" $root | trim | nindent 4 }}
    {{- include "durable-agents.extraVolumeMounts" $root | nindent 4 }}
{{- end -}}

{{/* Where the index lives: the data directory, or the database (the password from a Secret,
by PGPASSWORD, never in the URL or a ConfigMap). */}}
{{- define "durable-agents.retrievalBackendEnv" -}}
{{- $w := .Values.retrievalWorker -}}
- {name: RETRIEVAL_BACKEND, value: {{ $w.backend | quote }}}
{{- if eq $w.backend "postgres" }}
- {name: RETRIEVAL_DATABASE_URL, value: {{ $w.database.url | quote }}}
{{- with $w.database.passwordSecret }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $w.database.passwordKey | quote }}}
{{- end }}
{{- else }}
- {name: RETRIEVAL_DATA_DIR, value: /data}
{{- end }}
{{- end -}}
