package inject

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Pod annotations the webhook reads and writes.
const (
	// AnnotationInject set to "false" opts a selected pod out.
	AnnotationInject = "egressd.io/inject"
	// AnnotationStatus records what the webhook injected, as JSON (statusV1).
	AnnotationStatus = "egressd.io/inject-status"
)

// proxyVarNames are every spelling the webhook manages. Clients disagree on
// case (curl reads only lower-case http_proxy; Go and Python read both), so
// both are set.
var proxyVarNames = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", nodeUseEnvProxy}

// nodeUseEnvProxy makes Node.js (>= 24) honour the variables above; without
// it Node's http and fetch ignore them and a Node pod reaches nothing.
const nodeUseEnvProxy = "NODE_USE_ENV_PROXY"

// envGroup is a set of names that carry one value. A group is left alone as
// a whole when a container sets any member explicitly, so a container that
// chose HTTPS_PROXY does not end up with a different https_proxy beside it.
type envGroup struct {
	names []string
	value string
}

// mutator turns a pod into the patch that injects the configured settings.
// It is built once from a validated Config and is safe for concurrent use.
type mutator struct {
	selector map[string]string
	override bool
	proxy    []envGroup
	// proxyShown is the HTTP proxy URL with any password redacted, for the
	// status annotation and logs.
	proxyShown string
	ca         *caSpec
}

// caSpec is the CA volume, its mount and the variables pointing into it.
type caSpec struct {
	volume corev1.Volume
	mount  corev1.VolumeMount
	env    []envGroup
	// ref is "configmap/key", recorded in the status annotation.
	ref string
}

func newMutator(cfg Config) *mutator {
	noProxy := buildNoProxy(cfg.NoProxy)
	m := &mutator{
		selector: cfg.Selector,
		override: cfg.Override,
		proxy: []envGroup{
			{names: []string{"HTTP_PROXY", "http_proxy"}, value: cfg.Proxy.HTTPProxy},
			{names: []string{"HTTPS_PROXY", "https_proxy"}, value: cfg.Proxy.HTTPSProxy},
			{names: []string{"NO_PROXY", "no_proxy"}, value: noProxy},
			{names: []string{nodeUseEnvProxy}, value: "1"},
		},
		proxyShown: redactURL(cfg.Proxy.HTTPProxy),
	}
	if cfg.CA.ConfigMap != "" {
		// 0444 and optional=false are spelled out so the object the API
		// server defaults and hands back on re-invocation equals ours.
		mode := int32(0o444)
		optional := false
		file := path.Join(cfg.CA.MountPath, cfg.CA.Key)
		ca := &caSpec{
			volume: corev1.Volume{
				Name: cfg.CA.VolumeName,
				VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: cfg.CA.ConfigMap},
					Items:                []corev1.KeyToPath{{Key: cfg.CA.Key, Path: cfg.CA.Key}},
					DefaultMode:          &mode,
					Optional:             &optional,
				}},
			},
			mount: corev1.VolumeMount{Name: cfg.CA.VolumeName, MountPath: cfg.CA.MountPath, ReadOnly: true},
			ref:   cfg.CA.ConfigMap + "/" + cfg.CA.Key,
		}
		for _, name := range cfg.CA.Env {
			ca.env = append(ca.env, envGroup{names: []string{name}, value: file})
		}
		m.ca = ca
	}
	return m
}

// Skip reasons, logged and returned in outcome.skip.
const (
	skipNotSelected = "not_selected"
	skipOptedOut    = "opted_out"
	skipUnchanged   = "already_injected"
)

// outcome is what mutate decided for one pod.
type outcome struct {
	ops []patchOp
	// skip is set when ops is empty and says why.
	skip string
	// warnings go back to the client (kubectl prints them).
	warnings []string
}

// statusV1 is the value of AnnotationStatus. It is derived from the desired
// state only, never from what this particular pass changed, so a second
// pass over an injected pod computes the same value and patches nothing.
type statusV1 struct {
	Proxy string `json:"proxy"`
	// CA is "configmap/key" when the CA bundle is mounted.
	CA string `json:"ca,omitempty"`
	// Containers are the init and regular containers considered.
	Containers []string `json:"containers"`
	// Explicit lists "container:NAME" settings left as the container set
	// them (override: false), where NAME is a variable or "ca-mount".
	Explicit []string `json:"explicit,omitempty"`
}

// mutate returns the patch for pod. Ephemeral containers are not touched:
// they cannot exist at CREATE and are added later through the
// pods/ephemeralcontainers subresource, which this webhook does not watch.
func (m *mutator) mutate(pod *corev1.Pod) (outcome, error) {
	if !m.selects(pod.Labels) {
		return outcome{skip: skipNotSelected}, nil
	}
	var out outcome
	if v, ok := pod.Annotations[AnnotationInject]; ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			out.warnings = append(out.warnings, fmt.Sprintf("annotation %s=%q is not a boolean; injecting anyway", AnnotationInject, v))
		} else if !on {
			return outcome{skip: skipOptedOut}, nil
		}
	}

	st := statusV1{Proxy: m.proxyShown, Containers: []string{}}
	caMounted := false
	for i := range pod.Spec.InitContainers {
		ops, mounted := m.container(&pod.Spec.InitContainers[i], fmt.Sprintf("/spec/initContainers/%d", i), &st)
		out.ops = append(out.ops, ops...)
		caMounted = caMounted || mounted
	}
	for i := range pod.Spec.Containers {
		ops, mounted := m.container(&pod.Spec.Containers[i], fmt.Sprintf("/spec/containers/%d", i), &st)
		out.ops = append(out.ops, ops...)
		caMounted = caMounted || mounted
	}
	// The volume only exists to be mounted; a pod whose every container
	// owns the mount path gets none.
	if m.ca != nil && caMounted {
		st.CA = m.ca.ref
		out.ops = append(out.ops, m.volumeOps(pod.Spec.Volumes)...)
	}

	status, err := json.Marshal(st)
	if err != nil {
		return outcome{}, fmt.Errorf("encode status annotation: %w", err)
	}
	if pod.Annotations[AnnotationStatus] != string(status) {
		out.ops = append(out.ops, annotationOp(pod.Annotations, AnnotationStatus, string(status)))
	}
	if len(out.ops) == 0 {
		out.skip = skipUnchanged
	}
	return out, nil
}

func (m *mutator) selects(labels map[string]string) bool {
	for k, v := range m.selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// container returns the ops for one container at base and whether it mounts the CA.
func (m *mutator) container(c *corev1.Container, base string, st *statusV1) ([]patchOp, bool) {
	st.Containers = append(st.Containers, c.Name)
	groups := m.proxy
	var ops []patchOp
	mounted := false
	if m.ca != nil {
		mountOps, ok := m.mountOps(c, base)
		if ok {
			mounted = true
			ops = append(ops, mountOps...)
			groups = append(groups[:len(groups):len(groups)], m.ca.env...)
		} else {
			st.Explicit = append(st.Explicit, c.Name+":ca-mount")
		}
	}

	var add []corev1.EnvVar
	for _, g := range groups {
		groupAdd, groupOps, explicit := m.envGroupOps(c.Env, base, g)
		if explicit != "" {
			st.Explicit = append(st.Explicit, c.Name+":"+explicit)
			continue
		}
		add = append(add, groupAdd...)
		ops = append(ops, groupOps...)
	}
	ops = append(ops, appendOps(base+"/env", len(c.Env), add)...)
	return ops, mounted
}

// envGroupOps decides one group for one container: the variables to add,
// replace ops for differing values (override only), or the name of the
// explicit setting that makes the group the container's own.
func (m *mutator) envGroupOps(env []corev1.EnvVar, base string, g envGroup) (add []corev1.EnvVar, ops []patchOp, explicit string) {
	want := func(name string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: g.value} }
	if !m.override {
		for _, e := range env {
			if slices.Contains(g.names, e.Name) && (e.ValueFrom != nil || e.Value != g.value) {
				return nil, nil, e.Name
			}
		}
	}
	for _, name := range g.names {
		found := false
		// Every occurrence is checked: duplicate names are legal and the
		// last one wins in the kubelet.
		for j, e := range env {
			if e.Name != name {
				continue
			}
			found = true
			if e.ValueFrom != nil || e.Value != g.value {
				ops = append(ops, patchOp{Op: "replace", Path: fmt.Sprintf("%s/env/%d", base, j), Value: want(name)})
			}
		}
		if !found {
			add = append(add, want(name))
		}
	}
	return add, ops, ""
}

// mountOps returns the ops that mount the CA in c, and false when c already
// mounts a different volume at the CA path: then the path is the
// container's own and its CA variables are left alone too.
func (m *mutator) mountOps(c *corev1.Container, base string) ([]patchOp, bool) {
	want := m.ca.mount
	// Path first: moving our mount onto a path another volume already
	// uses would leave two mounts at one path, which is invalid.
	for _, vm := range c.VolumeMounts {
		if vm.Name != want.Name && path.Clean(vm.MountPath) == want.MountPath {
			return nil, false
		}
	}
	for j, vm := range c.VolumeMounts {
		if vm.Name == want.Name {
			if mountMatches(vm, want) {
				return nil, true
			}
			return []patchOp{{Op: "replace", Path: fmt.Sprintf("%s/volumeMounts/%d", base, j), Value: want}}, true
		}
	}
	return appendOps(base+"/volumeMounts", len(c.VolumeMounts), []corev1.VolumeMount{want}), true
}

// volumeOps adds the CA volume, or replaces a different volume of the same
// name: the name is reserved for the webhook (documented), and two volumes
// with one name would make the pod invalid.
func (m *mutator) volumeOps(volumes []corev1.Volume) []patchOp {
	want := m.ca.volume
	for i, v := range volumes {
		if v.Name == want.Name {
			if volumeMatches(v, want) {
				return nil
			}
			return []patchOp{{Op: "replace", Path: fmt.Sprintf("/spec/volumes/%d", i), Value: want}}
		}
	}
	return appendOps("/spec/volumes", len(volumes), []corev1.Volume{want})
}

// mountMatches compares the fields the webhook sets; the API server may
// fill others (e.g. recursiveReadOnly) when defaulting a re-invoked pod.
func mountMatches(have, want corev1.VolumeMount) bool {
	return have.MountPath == want.MountPath && have.ReadOnly == want.ReadOnly &&
		have.SubPath == "" && have.SubPathExpr == ""
}

// volumeMatches treats unset defaultMode and optional as the API server's
// defaults (0644, false) so a defaulted copy of our volume still matches.
func volumeMatches(have, want corev1.Volume) bool {
	h, w := have.ConfigMap, want.ConfigMap
	if h == nil || w == nil {
		return false
	}
	if have.VolumeSource != (corev1.VolumeSource{ConfigMap: h}) {
		return false
	}
	if h.Name != w.Name || len(h.Items) != len(w.Items) {
		return false
	}
	for i := range h.Items {
		hi, wi := h.Items[i], w.Items[i]
		if hi.Key != wi.Key || hi.Path != wi.Path || !int32PtrEqual(hi.Mode, wi.Mode, 0) {
			return false
		}
	}
	return int32PtrEqual(h.DefaultMode, w.DefaultMode, 0o644) && boolValue(h.Optional) == boolValue(w.Optional)
}

func int32PtrEqual(a, b *int32, def int32) bool {
	av, bv := def, def
	if a != nil {
		av = *a
	}
	if b != nil {
		bv = *b
	}
	return av == bv
}

func boolValue(b *bool) bool { return b != nil && *b }

// redactURL hides a password so the annotation and logs never carry it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Redacted()
}
