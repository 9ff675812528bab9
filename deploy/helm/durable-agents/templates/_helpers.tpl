{{/* Names, labels, image references and the pieces every pod shares. */}}

{{- define "durable-agents.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or the release name alone when it already contains the chart name. */}}
{{- define "durable-agents.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's resources: (dict "root" $ "component" "codec-server"). Trimmed so
a StatefulSet's pod name and its controller-revision label still fit in 63 characters. An agent
version's pools add "version" (its key): "<component>-<key>", the key kept whole. */}}
{{- define "durable-agents.componentName" -}}
{{- $name := printf "%s-%s" (include "durable-agents.fullname" .root | trunc 40 | trimSuffix "-") .component | trunc 52 | trimSuffix "-" -}}
{{- if .version -}}
{{- $name = printf "%s-%s" ($name | trunc (int (sub 62 (len .version))) | trimSuffix "-") .version -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "durable-agents.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "durable-agents.labels" -}}
helm.sh/chart: {{ include "durable-agents.chart" . }}
app.kubernetes.io/name: {{ include "durable-agents.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: durable-agents
{{- end -}}

{{/* Selector labels never change after install (a selector is immutable), so no version here. */}}
{{- define "durable-agents.selectorLabels" -}}
app.kubernetes.io/name: {{ include "durable-agents.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .version }}
durable-agents/version: {{ . }}
{{- end }}
{{- end -}}

{{- define "durable-agents.componentLabels" -}}
{{ include "durable-agents.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .version }}
durable-agents/version: {{ . }}
{{- end }}
{{- end -}}

{{- define "durable-agents.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "durable-agents.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The tag of an image: its own, else image.tag, else appVersion. (dict "root" $ "image" .Values.x.image) */}}
{{- define "durable-agents.imageTag" -}}
{{- .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion | toString -}}
{{- end -}}

{{/* An image reference: [registry/]repository:tag[@digest]; the registry is global.imageRegistry,
else image.registry (dict "root" $ "image" .Values.x.image, optional "tag" to override the tag). */}}
{{- define "durable-agents.image" -}}
{{- $registry := (.root.Values.global | default dict).imageRegistry | default .root.Values.image.registry -}}
{{- $ref := printf "%s:%s" .image.repository (.tag | default (include "durable-agents.imageTag" .)) -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- with .image.digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* Build id of a worker: versioning.buildId, else the worker's image tag, so a new image is a new version. */}}
{{- define "durable-agents.buildId" -}}
{{- .root.Values.versioning.buildId | default (include "durable-agents.imageTag" .) -}}
{{- end -}}

{{/* Address of a namespace (dict "root" $ "ns" "agents"). */}}
{{- define "durable-agents.temporalAddress" -}}
{{- $ns := index .root.Values.temporal.namespaces .ns -}}
{{- $ns.address | default .root.Values.temporal.address -}}
{{- end -}}

{{/* Refuses values that would install something that cannot work, with one sentence each. The
schema catches most of this first; these are the cross-field rules. */}}
{{- define "durable-agents.validate" -}}
{{- $t := .Values.temporal -}}
{{- if and (eq $t.mode "cloud") (not $t.tls.existingSecret) (not $t.apiKey.existingSecret) -}}
{{- fail "temporal.mode is cloud but no credentials are given: set temporal.tls.existingSecret (mTLS client certificate) or temporal.apiKey.existingSecret (API key)" -}}
{{- end -}}
{{- if and .Values.encryption.enabled (not .Values.encryption.keyringSecret) -}}
{{- fail "encryption.enabled needs encryption.keyringSecret: the name of the Secret holding the key ring (see deploy/helm/README.md)" -}}
{{- end -}}
{{- if and .Values.codecServer.enabled (not .Values.codecServer.auth.tokens.existingSecret) (not .Values.codecServer.auth.jwks.url) -}}
{{- fail "the codec server needs authentication: set codecServer.auth.tokens.existingSecret or codecServer.auth.jwks.url" -}}
{{- end -}}
{{- if and .Values.codecServer.auth.jwks.url (not .Values.codecServer.auth.jwks.audience) -}}
{{- fail "codecServer.auth.jwks.url needs codecServer.auth.jwks.audience, or tokens minted for any other service of the issuer would be accepted" -}}
{{- end -}}
{{- if and (not .Values.modelServer.enabled) (not .Values.agent.model.baseUrl) (not .Values.agent.model.apiKey.existingSecret) -}}
{{- fail "the agent has no model provider: set agent.model.apiKey.existingSecret and/or agent.model.baseUrl, or modelServer.enabled=true for the simulator" -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context of a component (its image's uid). */}}
{{- define "durable-agents.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsUser }}
fsGroup: {{ .runAsUser }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "durable-agents.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod metadata annotations: the release's own, and Prometheus's scrape hints (dict "root" $ "port" 8413). */}}
{{- define "durable-agents.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .root.Values.metrics.scrapeAnnotations -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .port) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- with .root.Values.podAnnotations -}}
{{- $annotations = merge $annotations . -}}
{{- end -}}
{{- with .extra -}}
{{- $annotations = merge $annotations . -}}
{{- end -}}
{{- if $annotations -}}
{{ toYaml $annotations }}
{{- end -}}
{{- end -}}

{{/* What a pre-install hook's pod shares with every other pod: it runs before the release's
ServiceAccount exists, so it takes the namespace's (no token mounted), and the release's pull
secrets (global ones too) and scheduling. */}}
{{- define "durable-agents.hookPodCommon" -}}
automountServiceAccountToken: false
{{- with concat ((.Values.global | default dict).imagePullSecrets | default list) .Values.imagePullSecrets | uniq }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Scheduling and identity every pod shares. */}}
{{- define "durable-agents.podCommon" -}}
serviceAccountName: {{ include "durable-agents.serviceAccountName" . }}
{{ include "durable-agents.hookPodCommon" . }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Temporal connection env of a process in namespace .ns (dict "root" $ "ns" "agents"; "shared"
true: the chart-wide API key even where the namespace has its own, as the setup Job needs).
Temporal's env config names, read alike by the Python and Go SDKs and the temporal CLI. */}}
{{- define "durable-agents.temporalEnv" -}}
{{- $t := .root.Values.temporal -}}
{{- $apiKey := $t.apiKey -}}
{{- $own := (index $t.namespaces .ns).apiKey | default dict -}}
{{- if and $own.existingSecret (not .shared) }}{{ $apiKey = $own }}{{ end -}}
- name: TEMPORAL_ADDRESS
  value: {{ include "durable-agents.temporalAddress" . | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ (index $t.namespaces .ns).name | quote }}
{{- if or $t.tls.enabled (eq $t.mode "cloud") $t.tls.existingSecret $apiKey.existingSecret }}
- name: TEMPORAL_TLS
  value: "true"
{{- end }}
{{- if $t.tls.existingSecret }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /etc/temporal/tls/{{ $t.tls.certKey }}
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /etc/temporal/tls/{{ $t.tls.keyKey }}
{{- end }}
{{- if $t.tls.caSecret }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: /etc/temporal/ca/{{ $t.tls.caKey }}
{{- end }}
{{- with $t.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- if $t.tls.disableHostVerification }}
- name: TEMPORAL_TLS_DISABLE_HOST_VERIFICATION
  value: "true"
{{- end }}
{{- if $apiKey.existingSecret }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $apiKey.existingSecret }}
      key: {{ $apiKey.key | default "api-key" }}
{{- end }}
{{- end -}}

{{/* Key ring, versioning, logging and tracing env of a worker
(dict "root" $ "image" .Values.x.image "versioned" true "deploymentName" "...", "service" "agent-worker",
optional "buildId": an agent version's own). */}}
{{- define "durable-agents.workerEnv" -}}
{{- $v := .root.Values -}}
{{- if $v.encryption.enabled }}
- name: CODEC_KEYRING_DIR
  value: /etc/codec-keys
{{- else }}
- name: PAYLOAD_ENCRYPTION
  value: "off"
{{- end }}
{{- if and $v.versioning.enabled .versioned }}
- name: TEMPORAL_DEPLOYMENT_NAME
  value: {{ .deploymentName | quote }}
- name: TEMPORAL_WORKER_BUILD_ID
  value: {{ .buildId | default (include "durable-agents.buildId" .) | quote }}
{{- end }}
{{- with $v.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ $.service | quote }}
{{- end }}
{{- end -}}

{{/* Volumes for the Temporal client certificates and the key ring. */}}
{{- define "durable-agents.secretVolumes" -}}
{{- $v := .Values -}}
{{- if $v.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ $v.temporal.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if $v.temporal.tls.caSecret }}
- name: temporal-ca
  secret:
    secretName: {{ $v.temporal.tls.caSecret }}
    defaultMode: 0444
{{- end }}
{{- if $v.encryption.enabled }}
- name: codec-keys
  secret:
    secretName: {{ $v.encryption.keyringSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "durable-agents.secretVolumeMounts" -}}
{{- $v := .Values -}}
{{- if $v.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/temporal/tls
  readOnly: true
{{- end }}
{{- if $v.temporal.tls.caSecret }}
- name: temporal-ca
  mountPath: /etc/temporal/ca
  readOnly: true
{{- end }}
{{- if $v.encryption.enabled }}
- name: codec-keys
  mountPath: /etc/codec-keys
  readOnly: true
{{- end }}
{{- end -}}

{{/* A headless Service for a worker's metrics port: what a ServiceMonitor selects, and the
governing Service a StatefulSet needs. (dict "root" $ "component" "x" "port" 8413) */}}
{{- define "durable-agents.metricsService" -}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "durable-agents.componentName" . }}
  labels:
    {{- include "durable-agents.componentLabels" . | nindent 4 }}
    durable-agents/metrics: "true"
spec:
  clusterIP: None
  selector:
    {{- include "durable-agents.selectorLabels" . | nindent 4 }}
  ports:
    - {name: metrics, port: {{ .port }}, targetPort: metrics, protocol: TCP}
{{- end -}}

{{- define "durable-agents.pdb" -}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "durable-agents.componentName" . }}
  labels:
    {{- include "durable-agents.componentLabels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .root.Values.podDisruptionBudget.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "durable-agents.selectorLabels" . | nindent 6 }}
{{- end -}}


{{/* ---- Fleet conventions every workload adopts (new templates too) ---- */}}

{{/* Topology spread of a workload's pods, after podCommon (dict "root" $ "selector" <selector labels YAML>). */}}
{{- define "durable-agents.topologySpread" -}}
{{- $t := .root.Values.topologySpread -}}
{{- if $t.enabled }}
topologySpreadConstraints:
  {{- range $t.topologyKeys }}
  - maxSkew: {{ $t.maxSkew }}
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $t.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- $.selector | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Env every main container gets after its own (the release's extraEnv), then envFrom; include
under `env:` with the component's extraEnv after it. */}}
{{- define "durable-agents.extraEnv" -}}
{{- with .Values.extraEnv }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "durable-agents.envFrom" -}}
{{- with .Values.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "durable-agents.extraVolumeMounts" -}}
{{- with .Values.extraVolumeMounts }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{- define "durable-agents.extraVolumes" -}}
{{- with .Values.extraVolumes }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Sidecars, listed after the main container under `containers:`. */}}
{{- define "durable-agents.sidecars" -}}
{{- with .Values.sidecars }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* ---- Agent versions (deploy/helm/durable-agents/README.md, "Rollouts") ---- */}}

{{/* The agent versions of the release as JSON {"versions": [{buildId, image, key}]}: agent.versions,
or one version from agent.image. key is a DNS-safe, unique name part (a slug and a hash). */}}
{{- define "durable-agents.agentVersions" -}}
{{- $a := .Values.agent -}}
{{- $list := $a.versions -}}
{{- if not $list -}}
{{- $list = list (dict "buildId" ($a.image.tag | default .Chart.AppVersion | toString) "image" (dict)) -}}
{{- end -}}
{{- $out := list -}}
{{- $seen := dict -}}
{{- range $list -}}
{{- $id := toString .buildId -}}
{{- if not $id }}{{ fail "every entry of agent.versions needs a buildId" }}{{ end -}}
{{- if hasKey $seen $id }}{{ fail (printf "agent.versions lists build id %q twice" $id) }}{{ end -}}
{{- $_ := set $seen $id true -}}
{{- $img := .image | default dict -}}
{{- $image := dict "repository" ($img.repository | default $a.image.repository) "tag" ($img.tag | default $id | toString) "digest" ($img.digest | default (ternary $a.image.digest "" (not $a.versions))) -}}
{{- $slug := regexReplaceAll "[^a-z0-9]+" (lower $id) "-" | trunc 10 | trimAll "-" -}}
{{- $key := printf "%s-%s" $slug (sha256sum $id | trunc 5) | trimPrefix "-" -}}
{{- $out = append $out (dict "buildId" $id "image" $image "key" $key) -}}
{{- end -}}
{{- toJson (dict "versions" $out) -}}
{{- end -}}

{{/* Where new conversations go, as JSON {"current", "ramp", "percentage"}; refuses routing to a
version the release does not run. */}}
{{- define "durable-agents.agentRouting" -}}
{{- $versions := (include "durable-agents.agentVersions" . | fromJson).versions -}}
{{- $ids := list -}}
{{- range $versions }}{{ $ids = append $ids .buildId }}{{ end -}}
{{- $r := .Values.agent.rollout -}}
{{- $current := toString $r.current -}}
{{- if not $current -}}
{{- if gt (len $ids) 1 }}{{ fail (printf "agent.rollout.current must name the version new conversations go to, one of %s" (join ", " $ids)) }}{{ end -}}
{{- $current = first $ids -}}
{{- end -}}
{{- if not (has $current $ids) }}{{ fail (printf "agent.rollout.current %q is not in agent.versions (%s): a version must run before it takes traffic" $current (join ", " $ids)) }}{{ end -}}
{{- $ramp := toString $r.ramp.buildId -}}
{{- if $ramp -}}
{{- if not (has $ramp $ids) }}{{ fail (printf "agent.rollout.ramp.buildId %q is not in agent.versions (%s)" $ramp (join ", " $ids)) }}{{ end -}}
{{- if eq $ramp $current }}{{ fail (printf "agent.rollout.ramp.buildId %q is already current; ramp another version" $ramp) }}{{ end -}}
{{- end -}}
{{- toJson (dict "current" $current "ramp" $ramp "percentage" $r.ramp.percentage "ids" $ids) -}}
{{- end -}}
