{{- /* The business worker's pod, shared by both of its workloads: the StatefulSet of one pod
on the embedded SQLite store (business-worker.yaml) and the Deployment of several pods on
PostgreSQL (business-worker-postgres.yaml). Called with the chart root. */ -}}
{{- define "durable-agents.businessWorkerPod" -}}
{{- $w := .Values.businessWorker -}}
{{- $ctx := dict "root" . "component" "business-worker" -}}
metadata:
  labels:
    {{- include "durable-agents.selectorLabels" $ctx | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with include "durable-agents.podAnnotations" (dict "root" . "port" 8412) }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  {{- include "durable-agents.podCommon" . | nindent 2 }}
  {{- include "durable-agents.topologySpread" (dict "root" . "selector" (include "durable-agents.selectorLabels" $ctx)) | nindent 2 }}
  securityContext:
    {{- include "durable-agents.podSecurityContext" $w | nindent 4 }}
  terminationGracePeriodSeconds: 60
  containers:
    - name: worker
      image: {{ include "durable-agents.image" (dict "root" . "image" $w.image) }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["python", "-m", "business"]
      securityContext:
        {{- include "durable-agents.containerSecurityContext" . | nindent 8 }}
      ports:
        - {name: health, containerPort: 8402, protocol: TCP}
        - {name: metrics, containerPort: 8412, protocol: TCP}
      env:
        {{- include "durable-agents.temporalEnv" (dict "root" . "ns" "business") | trim | nindent 8 }}
        {{- include "durable-agents.workerEnv" (dict "root" . "image" $w.image "versioned" $w.versioned "deploymentName" $w.deploymentName "service" "business-worker") | trim | nindent 8 }}
        {{- include "durable-agents.businessStoreEnv" . | trim | nindent 8 }}
        - {name: BUSINESS_TASK_QUEUE, value: {{ $w.taskQueue | quote }}}
        - {name: HEALTH_HOST, value: "0.0.0.0"}
        - {name: BUSINESS_HEALTH_PORT, value: "8402"}
        - {name: METRICS_HOST, value: "0.0.0.0"}
        - {name: BUSINESS_METRICS_PORT, value: "8412"}
        - {name: LOG_LEVEL, value: {{ .Values.logLevel | upper | quote }}}
        {{- include "durable-agents.extraEnv" . | nindent 8 }}
        {{- with $w.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- include "durable-agents.envFrom" . | nindent 6 }}
      startupProbe:
        httpGet: {path: /healthz, port: health}
        periodSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet: {path: /healthz, port: health}
        periodSeconds: 15
        timeoutSeconds: 3
        failureThreshold: 4
      readinessProbe:
        httpGet: {path: /readyz, port: health}
        periodSeconds: 5
        timeoutSeconds: 3
      resources:
        {{- toYaml $w.resources | nindent 8 }}
      volumeMounts:
        {{- if eq $w.store "postgres" }}
        - {name: database-password, mountPath: /etc/business-database, readOnly: true}
        {{- else }}
        - {name: data, mountPath: /data}
        {{- end }}
        - {name: tmp, mountPath: /tmp}
        {{- include "durable-agents.secretVolumeMounts" . | trim | nindent 8 }}
        {{- include "durable-agents.extraVolumeMounts" . | nindent 8 }}
    {{- include "durable-agents.sidecars" . | nindent 4 }}
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- include "durable-agents.secretVolumes" . | trim | nindent 4 }}
    {{- if eq $w.store "postgres" }}
    {{- include "durable-agents.businessDatabaseVolume" . | trim | nindent 4 }}
    {{- end }}
    {{- include "durable-agents.extraVolumes" . | nindent 4 }}
{{- end }}

{{- /* Where the store lives: the SQLite file on the pod's volume, or the PostgreSQL database
(URL from values, password from the Secret mounted as a file; never in the environment). */ -}}
{{- define "durable-agents.businessStoreEnv" -}}
{{- $w := .Values.businessWorker -}}
{{- if eq $w.store "postgres" }}
- {name: BUSINESS_STORE, value: postgres}
- {name: BUSINESS_DATABASE_URL, value: {{ $w.database.url | quote }}}
- {name: BUSINESS_DATABASE_PASSWORD_FILE, value: /etc/business-database/password}
- {name: BUSINESS_DATABASE_POOL_MIN, value: {{ $w.database.poolMin | quote }}}
- {name: BUSINESS_DATABASE_POOL_MAX, value: {{ $w.database.poolMax | quote }}}
{{- else }}
- {name: BUSINESS_DB_PATH, value: /data/business.sqlite3}
{{- end }}
{{- end }}

{{- define "durable-agents.businessDatabaseVolume" -}}
- name: database-password
  secret:
    secretName: {{ .Values.businessWorker.database.existingSecret }}
    defaultMode: 0440
    items:
      - {key: {{ .Values.businessWorker.database.passwordKey }}, path: password}
{{- end }}
