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
# Every rule is used by k8sco/kube (tests/test_rbac.py checks both ways); each says why.
# The controller lists and watches Pipelines to reconcile them (kube/controller.py), and
# gets one again when its status write met a newer version (409 Conflict).
- apiGroups: ["k8sco.io"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch"]
# It writes a Pipeline's result as a merge patch of its status subresource, and nothing else
# of the Pipeline (spec changes are the user's).
- apiGroups: ["k8sco.io"]
  resources: ["pipelines/status"]
  verbs: ["patch"]
# With a data store (K8SCO_DATA_STORE), a merge patch of a Pipeline's metadata only: it adds
# the k8sco.io/data finalizer and annotation, and removes the finalizer once the deleted
# Pipeline's data and logs are gone from the store (kube/archive.py).
- apiGroups: ["k8sco.io"]
  resources: ["pipelines"]
  verbs: ["patch"]
# With a retention (K8SCO_PIPELINE_TTL or the k8sco.io/pipeline-ttl annotation), it deletes
# a finished Pipeline that long after its completionTime, and only then, once every log is
# archived; its Jobs follow by garbage collection (kube/retention.py).
- apiGroups: ["k8sco.io"]
  resources: ["pipelines"]
  verbs: ["delete"]
# No API call: Jobs carry ownerReferences with blockOwnerDeletion, which the
# OwnerReferencesPermissionEnforcement admission plugin allows only with this right
# (kubernetes plugin/pkg/admission/gc/gc_admission.go).
- apiGroups: ["k8sco.io"]
  resources: ["pipelines/finalizers"]
  verbs: ["update"]
# One Job per node: created when the node may start, deleted when a node is stopped or run
# again; listed and watched to see how each one ends; got when its creation says it exists
# already (made by an earlier life of the controller, or by someone else).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
# With a data store: a finished Job is annotated k8sco.io/log-archived once its log is in the
# store, so that it may be deleted (a rerun, or the Pipeline's job-retention).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["patch"]
# A Job whose pod cannot start (image pull, scheduling, quota): its pods' waiting reasons
# tell why; a co.Lazy Generate Job's pod prints the generated tree. List only: no pod is
# read by name, watched, or changed.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# A co.Lazy Generate node's log holds the tree it generated (kube/controller.py _expand);
# with a data store, a finished Job's pods' logs are archived so that they outlive the pods
# (kube/archive.py).
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# Events on a Pipeline tell `kubectl describe` what the controller did and why (create); a
# Job that made no pod says why in its FailedCreate Events (list).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "list"]
# What does not fit in a Pipeline object (kube/overflow.py): the controller creates and
# updates its status ConfigMaps and the ConfigMaps of co.Lazy's generated trees
# (kube/lazystore.py: a rerun replaces them in place), and reads them and the tree
# ConfigMaps `k8sco apply` wrote. No delete, list or watch: they go with their Pipeline
# through ownerReferences.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get", "update"]
# The namespace's Secret of k8sco secrets, that one only (resourceNames): before creating
# Jobs the controller reads its key names, as metadata (kube/secrets.py key_names), so that
# each secret beats the node's env. RBAC cannot limit a get to metadata; the controller asks
# for PartialObjectMetadata and never receives a value. The kubelet puts values into pods.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["k8sco-secrets"]
  verbs: ["get"]
{{- end -}}
