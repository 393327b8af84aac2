{{/* Labels of every object: the same as manifests/ plus Helm's own. */}}
{{- define "k8sco.labels" -}}
app.kubernetes.io/name: k8sco
app.kubernetes.io/part-of: k8sco
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "k8sco.controllerLabels" -}}
{{ include "k8sco.labels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "k8sco.selectorLabels" -}}
app.kubernetes.io/name: k8sco
app.kubernetes.io/component: controller
{{- end -}}

{{- define "k8sco.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default "k8sco-controller" }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* The controller's rights on the namespaces it watches. */}}
{{- define "k8sco.controllerRules" -}}
- apiGroups: ["k8sco.io"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["k8sco.io"]
  resources: ["pipelines/status"]
  verbs: ["get", "patch", "update"]
# Jobs carry ownerReferences with blockOwnerDeletion; where the
# OwnerReferencesPermissionEnforcement admission plugin runs, that needs this right.
- apiGroups: ["k8sco.io"]
  resources: ["pipelines/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
