package inject

import (
	"encoding/json"
	"fmt"
	"path"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// shapeReader hands out small choices from fuzz bytes, then zeros.
type shapeReader struct{ b []byte }

func (r *shapeReader) next(n int) int {
	if len(r.b) == 0 {
		return 0
	}
	v := int(r.b[0]) % n
	r.b = r.b[1:]
	return v
}

// podFromShape builds a pod as the API server would send it, from the
// corner cases the mutation has rules for: explicit, equal and valueFrom
// variables, duplicates, the reserved volume name, and a foreign mount on
// the CA path.
func podFromShape(shape []byte) corev1.Pod {
	r := &shapeReader{b: shape}
	var pod corev1.Pod
	pod.APIVersion, pod.Kind = "v1", "Pod"
	pod.GenerateName = "web-"
	if r.next(4) != 0 {
		pod.Labels = map[string]string{"network": "filtered"}
	}
	switch r.next(4) {
	case 1:
		pod.Annotations = map[string]string{AnnotationInject: "true"}
	case 2:
		pod.Annotations = map[string]string{"example.com/a~b": "x"}
	case 3:
		pod.Annotations = map[string]string{AnnotationStatus: "stale"}
	}
	switch r.next(4) {
	case 1:
		pod.Spec.Volumes = []corev1.Volume{{Name: "egressd-inject-ca", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	case 2:
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	case 3:
		pod.Spec.Volumes = []corev1.Volume{newMutator(testConfig()).ca.volume}
	}
	names := []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "SSL_CERT_FILE", "MODE"}
	values := []string{testProxy, "http://other:1", testNoProxy, testCAFile, ""}
	container := func(name string) corev1.Container {
		c := corev1.Container{Name: name, Image: "x"}
		for range r.next(5) {
			e := corev1.EnvVar{Name: names[r.next(len(names))]}
			if v := r.next(len(values) + 1); v == len(values) {
				e.ValueFrom = &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}
			} else {
				e.Value = values[v]
			}
			c.Env = append(c.Env, e)
		}
		switch r.next(5) {
		case 1:
			c.VolumeMounts = []corev1.VolumeMount{{Name: "egressd-inject-ca", MountPath: "/old"}}
		case 4:
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/etc/egressd/ca/"}, {Name: "egressd-inject-ca", MountPath: "/old"}}
		case 2:
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/etc/egressd/ca"}}
		case 3:
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "egressd-inject-ca", MountPath: "/etc/egressd/ca", ReadOnly: true}}
		}
		return c
	}
	for i := range r.next(3) {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, container(fmt.Sprintf("init%d", i)))
	}
	for i := range r.next(3) + 1 {
		pod.Spec.Containers = append(pod.Spec.Containers, container(fmt.Sprintf("c%d", i)))
	}
	return pod
}

// FuzzMutate checks the properties the API server relies on: the patch
// applies to the pod it was computed for, the result is a valid pod shape
// (no duplicate volume names, no second mount on a path), and a second pass
// over the result returns no patch.
func FuzzMutate(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 0}, false)
	f.Add([]byte{1, 2, 1, 1, 3, 0, 1, 2, 5, 3, 1, 2, 2}, false)
	f.Add([]byte{1, 3, 3, 2, 4, 2, 0, 5, 1, 1, 3, 0, 4, 2, 1}, true)
	f.Add([]byte{2, 1, 1, 0, 2, 6, 1, 4, 3, 1, 1, 2, 0}, true)
	// An init container with a foreign volume on the CA path and the
	// reserved name mounted elsewhere: moving the latter onto the path
	// once produced two mounts at one path.
	f.Add([]byte{1, 0, 0, 1, 0, 4, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, shape []byte, override bool) {
		cfg := testConfig()
		cfg.Override = override
		m := newMutator(cfg)
		pod := podFromShape(shape)
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		in := decodePodStrict(t, string(raw))
		first, err := m.mutate(&in)
		if err != nil {
			t.Fatalf("mutate: %v", err)
		}
		if len(first.ops) == 0 {
			return
		}
		patch, err := json.Marshal(first.ops)
		if err != nil {
			t.Fatal(err)
		}
		out := decodePodStrict(t, applyPatch(t, string(raw), patch))

		volumes := map[string]int{}
		for _, v := range out.Spec.Volumes {
			volumes[v.Name]++
		}
		if volumes["egressd-inject-ca"] > 1 {
			t.Fatalf("two volumes named egressd-inject-ca: %s", patch)
		}
		for _, c := range append(out.Spec.InitContainers, out.Spec.Containers...) {
			paths := map[string]int{}
			for _, vm := range c.VolumeMounts {
				paths[path.Clean(vm.MountPath)]++
			}
			if paths["/etc/egressd/ca"] > 1 {
				t.Fatalf("container %s: two mounts on the CA path: %s", c.Name, patch)
			}
		}

		again, err := m.mutate(&out)
		if err != nil {
			t.Fatalf("second mutate: %v", err)
		}
		if len(again.ops) != 0 {
			b, _ := json.Marshal(again.ops)
			t.Fatalf("second pass not empty:\nfirst %s\nsecond %s", patch, b)
		}
	})
}
