package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
)

const manifestDir = "../deploy/workload/inject"

// manifests holds every object in manifestDir, decoded strictly.
type manifests struct {
	kustomization map[string]any
	config        Config
	namespace     corev1.Namespace
	serviceAcct   corev1.ServiceAccount
	deployment    appsv1.Deployment
	service       corev1.Service
	pdb           policyv1.PodDisruptionBudget
	webhook       admissionregistrationv1.MutatingWebhookConfiguration
	// certManager holds Issuers and Certificates by kind/name; their Go
	// types are not among our dependencies, so they stay maps.
	certManager map[string]map[string]any
}

// decodeStrict converts one YAML document to JSON and decodes it into out,
// rejecting unknown fields, so a misspelled or misplaced key fails here
// rather than being dropped silently by the API server.
func decodeStrict(doc []byte, out any) error {
	j, err := yamlToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// yamlToJSON is what kubectl does before decoding: YAML to generic values,
// then JSON, so the k8s.io/api json tags apply.
func yamlToJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// splitDocs splits a multi-document YAML file.
func splitDocs(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("split YAML: %v", err)
		}
		out, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, out)
	}
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	m := manifests{certManager: map[string]map[string]any{}}
	kust, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(kust, &m.kustomization); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if m.config, err = LoadConfig(filepath.Join(manifestDir, "config.yaml")); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}

	seen := map[string]bool{}
	for _, res := range stringList(t, m.kustomization["resources"]) {
		data, err := os.ReadFile(filepath.Join(manifestDir, res))
		if err != nil {
			t.Fatalf("resource %s: %v", res, err)
		}
		for i, doc := range splitDocs(t, data) {
			var meta struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s[%d]: %v", res, i, err)
			}
			key := meta.APIVersion + " " + meta.Kind
			if meta.Kind != "Issuer" && meta.Kind != "Certificate" && seen[key] {
				t.Fatalf("%s[%d]: second %s; the test expects one", res, i, key)
			}
			seen[key] = true
			var target any
			switch key {
			case "v1 Namespace":
				target = &m.namespace
			case "v1 ServiceAccount":
				target = &m.serviceAcct
			case "apps/v1 Deployment":
				target = &m.deployment
			case "v1 Service":
				target = &m.service
			case "policy/v1 PodDisruptionBudget":
				target = &m.pdb
			case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
				target = &m.webhook
			case "cert-manager.io/v1 Issuer", "cert-manager.io/v1 Certificate":
				var obj map[string]any
				if err := yaml.Unmarshal(doc, &obj); err != nil {
					t.Fatalf("%s[%d]: %v", res, i, err)
				}
				name := str(obj, "metadata", "name")
				m.certManager[meta.Kind+"/"+name] = obj
				continue
			default:
				t.Fatalf("%s[%d]: unexpected %s", res, i, key)
			}
			if err := decodeStrict(doc, target); err != nil {
				t.Fatalf("%s[%d] %s: strict decode: %v", res, i, key, err)
			}
		}
	}
	return m
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if m.deployment.Name == "" || m.service.Name == "" || m.pdb.Name == "" || m.webhook.Name == "" ||
		m.namespace.Name == "" || m.serviceAcct.Name == "" {
		t.Fatal("a required manifest is missing from kustomization resources")
	}
	for _, want := range []string{"Issuer/egressd-inject-selfsigned", "Certificate/egressd-inject-ca", "Issuer/egressd-inject-ca", "Certificate/egressd-inject-serving"} {
		if m.certManager[want] == nil {
			t.Errorf("cert-manager %s missing", want)
		}
	}
}

// Every YAML file in the directory is either a kustomize resource or the
// generated config, so nothing is written and then forgotten.
func TestKustomizationListsEveryFile(t *testing.T) {
	m := loadManifests(t)
	for k := range m.kustomization {
		if !slices.Contains([]string{"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator"}, k) {
			t.Errorf("kustomization.yaml: unexpected key %q", k)
		}
	}
	if m.kustomization["kind"] != "Kustomization" || m.kustomization["namespace"] != m.namespace.Name {
		t.Errorf("kustomization kind %v namespace %v, want Kustomization and %s", m.kustomization["kind"], m.kustomization["namespace"], m.namespace.Name)
	}
	listed := stringList(t, m.kustomization["resources"])
	gens, _ := m.kustomization["configMapGenerator"].([]any)
	if len(gens) != 1 {
		t.Fatalf("configMapGenerator: %v, want one generator", gens)
	}
	gen := gens[0].(map[string]any)
	genFiles := stringList(t, gen["files"])
	if gen["name"] != "egressd-inject-config" || !slices.Equal(genFiles, []string{"config.yaml"}) {
		t.Errorf("configMapGenerator %v: want egressd-inject-config from config.yaml", gen)
	}
	listed = append(listed, genFiles...)
	entries, err := os.ReadDir(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" {
			onDisk = append(onDisk, e.Name())
		}
	}
	sort.Strings(listed)
	if !slices.Equal(onDisk, listed) {
		t.Errorf("files %q, kustomization lists %q", onDisk, listed)
	}
}

// The manifests name each other (ports, secrets, paths, selectors); a
// rename in one file must not silently break the wiring.
func TestManifestsAgree(t *testing.T) {
	m := loadManifests(t)
	ns := m.namespace.Name
	dep := m.deployment
	pod := dep.Spec.Template
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("deployment containers %d, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if len(m.webhook.Webhooks) != 1 {
		t.Fatalf("webhooks %d, want 1", len(m.webhook.Webhooks))
	}
	wh := m.webhook.Webhooks[0]
	serving := m.certManager["Certificate/egressd-inject-serving"]

	mountOf := func(volume string) string {
		for _, vm := range c.VolumeMounts {
			if vm.Name == volume {
				if !vm.ReadOnly || vm.SubPath != "" {
					t.Errorf("mount %s: want read-only without subPath (subPath mounts miss updates)", volume)
				}
				return vm.MountPath
			}
		}
		t.Fatalf("container mounts no volume %q", volume)
		return ""
	}
	volumeOf := func(name string) corev1.Volume {
		for _, v := range pod.Spec.Volumes {
			if v.Name == name {
				return v
			}
		}
		t.Fatalf("deployment has no volume %q", name)
		return corev1.Volume{}
	}
	portOf := func(name string) int32 {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		t.Fatalf("container has no port %q", name)
		return 0
	}

	checks := []struct {
		name string
		ok   bool
		got  any
	}{
		{name: "the egressd-inject image runs with the mounted config",
			ok: strings.HasPrefix(c.Image, "egressd-inject:") &&
				slices.Equal(c.Args, []string{"-config", path.Join(mountOf("config"), "config.yaml")}) && volumeOf("config").ConfigMap.Name == "egressd-inject-config",
			got: []any{c.Image, c.Args}},
		{name: "config tls files live in the mounted serving Secret",
			ok: m.config.TLS.CertFile == path.Join(mountOf("tls"), "tls.crt") && m.config.TLS.KeyFile == path.Join(mountOf("tls"), "tls.key") &&
				volumeOf("tls").Secret.SecretName == str(serving, "spec", "secretName"),
			got: m.config.TLS},
		{name: "https port is config listen", ok: ":"+itoa(portOf("https")) == m.config.Listen, got: m.config.Listen},
		{name: "metrics port is config admin_listen", ok: ":"+itoa(portOf("metrics")) == m.config.AdminListen, got: m.config.AdminListen},
		{name: "two replicas, one may be disrupted",
			ok:  dep.Spec.Replicas != nil && *dep.Spec.Replicas == 2 && m.pdb.Spec.MinAvailable != nil && m.pdb.Spec.MinAvailable.IntValue() == 1,
			got: []any{dep.Spec.Replicas, m.pdb.Spec.MinAvailable}},
		{name: "selectors match the pod labels",
			ok: labelsMatch(dep.Spec.Selector.MatchLabels, pod.Labels) && labelsMatch(m.service.Spec.Selector, pod.Labels) &&
				labelsMatch(m.pdb.Spec.Selector.MatchLabels, pod.Labels),
			got: pod.Labels},
		{name: "grace period exceeds shutdown_delay + shutdown_timeout",
			ok:  pod.Spec.TerminationGracePeriodSeconds != nil && time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second > m.config.ShutdownDelay+m.config.ShutdownTimeout,
			got: pod.Spec.TerminationGracePeriodSeconds},
		{name: "readiness is HTTPS /healthz on the webhook port",
			ok: c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/healthz" &&
				c.ReadinessProbe.HTTPGet.Port.String() == "https" && c.ReadinessProbe.HTTPGet.Scheme == corev1.URISchemeHTTPS,
			got: c.ReadinessProbe},
		{name: "liveness is /healthz on the admin port",
			ok:  c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path == "/healthz" && c.LivenessProbe.HTTPGet.Port.String() == "metrics",
			got: c.LivenessProbe},
		{name: "service 443 targets the https port", ok: servicePort(m.service, 443) == "https", got: m.service.Spec.Ports},
		{name: "webhook calls the service on /mutate",
			ok: wh.ClientConfig.Service != nil && wh.ClientConfig.Service.Name == m.service.Name && wh.ClientConfig.Service.Namespace == ns &&
				wh.ClientConfig.Service.Path != nil && *wh.ClientConfig.Service.Path == "/mutate" &&
				wh.ClientConfig.Service.Port != nil && *wh.ClientConfig.Service.Port == 443,
			got: wh.ClientConfig},
		{name: "serving certificate names the service",
			ok:  slices.Contains(stringList(t, serving["spec"].(map[string]any)["dnsNames"]), m.service.Name+"."+ns+".svc"),
			got: serving["spec"]},
		{name: "cainjector reads the serving certificate",
			ok:  m.webhook.Annotations["cert-manager.io/inject-ca-from"] == ns+"/"+str(serving, "metadata", "name"),
			got: m.webhook.Annotations},
		{name: "serving certificate is issued by the CA issuer backed by the CA certificate",
			ok: str(serving, "spec", "issuerRef", "name") == "egressd-inject-ca" &&
				str(m.certManager["Issuer/egressd-inject-ca"], "spec", "ca", "secretName") == str(m.certManager["Certificate/egressd-inject-ca"], "spec", "secretName"),
			got: serving["spec"]},
		{name: "objectSelector is the config selector",
			ok:  wh.ObjectSelector != nil && len(wh.ObjectSelector.MatchExpressions) == 0 && labelsMatch(wh.ObjectSelector.MatchLabels, m.config.Selector) && len(wh.ObjectSelector.MatchLabels) == len(m.config.Selector),
			got: wh.ObjectSelector},
		{name: "namespaceSelector excludes the webhook's own namespace and kube-system",
			ok:  excludesNamespaces(wh, ns, "kube-system"),
			got: wh.NamespaceSelector},
		{name: "failurePolicy matches config failure_policy",
			ok:  wh.FailurePolicy != nil && string(*wh.FailurePolicy) == m.config.FailurePolicy,
			got: wh.FailurePolicy},
		{name: "webhook settings",
			ok: wh.SideEffects != nil && *wh.SideEffects == admissionregistrationv1.SideEffectClassNone &&
				wh.ReinvocationPolicy != nil && *wh.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy &&
				slices.Equal(wh.AdmissionReviewVersions, []string{"v1"}) &&
				wh.TimeoutSeconds != nil && *wh.TimeoutSeconds >= 1 && *wh.TimeoutSeconds <= 10,
			got: wh},
		{name: "rules are pods CREATE only",
			ok: len(wh.Rules) == 1 && slices.Equal(wh.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) &&
				slices.Equal(wh.Rules[0].Resources, []string{"pods"}) && slices.Equal(wh.Rules[0].APIGroups, []string{""}),
			got: wh.Rules},
		{name: "pod runs hardened", ok: hardened(pod.Spec), got: []any{pod.Spec.SecurityContext, c.SecurityContext}},
		{name: "no service account token", ok: m.serviceAcct.AutomountServiceAccountToken != nil && !*m.serviceAcct.AutomountServiceAccountToken &&
			pod.Spec.ServiceAccountName == m.serviceAcct.Name, got: m.serviceAcct},
	}
	for _, ck := range checks {
		t.Run(ck.name, func(t *testing.T) {
			if !ck.ok {
				got, _ := json.Marshal(ck.got)
				t.Errorf("failed; relevant part: %s", got)
			}
		})
	}
}

func hardened(spec corev1.PodSpec) bool {
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		return false
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			return false
		}
	}
	return true
}

func excludesNamespaces(wh admissionregistrationv1.MutatingWebhook, names ...string) bool {
	if wh.NamespaceSelector == nil {
		return false
	}
	for _, e := range wh.NamespaceSelector.MatchExpressions {
		if e.Key == corev1.LabelMetadataName && e.Operator == "NotIn" {
			for _, n := range names {
				if !slices.Contains(e.Values, n) {
					return false
				}
			}
			return true
		}
	}
	return false
}

func servicePort(svc corev1.Service, port int32) string {
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			return p.TargetPort.String()
		}
	}
	return ""
}

// labelsMatch reports whether every selector label is in labels.
func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// str walks nested maps and returns the string at the end, "" if absent.
func str(obj map[string]any, keys ...string) string {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}

func stringList(t *testing.T, v any) []string {
	t.Helper()
	items, ok := v.([]any)
	if !ok {
		t.Fatalf("want a list, got %T", v)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			t.Fatalf("want strings, got %T", it)
		}
		out = append(out, s)
	}
	return out
}

func itoa(n int32) string {
	b, _ := json.Marshal(n)
	return string(b)
}
