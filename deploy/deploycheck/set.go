package deploycheck

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Object is one rendered manifest. Typed holds a pointer to its k8s.io/api
// type (*appsv1.Deployment, ...), or nil for CRD kinds, whose content is
// only in Raw.
type Object struct {
	APIVersion, Kind, Name, Namespace string
	Typed                             any
	Raw                               map[string]any
}

// Set is the output of one kustomization.
type Set struct {
	// Source is the kustomization directory, used in messages.
	Source  string
	Objects []Object
	raw     []byte
}

// Clone decodes the set's rendered stream again: a deep copy that a test
// can break without touching the original.
func (s *Set) Clone() (*Set, error) { return Decode(s.raw, s.Source) }

// typedOf returns every object of Go type T (a pointer type) in the set.
func typedOf[T any](s *Set) []T {
	var out []T
	for _, o := range s.Objects {
		if t, ok := o.Typed.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// rawOf returns the CRD objects of one kind.
func rawOf(s *Set, kind string) []Object {
	var out []Object
	for _, o := range s.Objects {
		if o.Typed == nil && o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func configMap(s *Set, name string) (*corev1.ConfigMap, error) {
	for _, cm := range typedOf[*corev1.ConfigMap](s) {
		if cm.Name == name {
			return cm, nil
		}
	}
	return nil, fmt.Errorf("ConfigMap %q: not in the rendered set", name)
}

// appLabel is the label every egressd object carries and selects on.
const appLabel = "app.kubernetes.io/name"

// egressdDeployment returns the Deployment labelled app.kubernetes.io/name:
// egressd and its container named egressd.
func egressdDeployment(s *Set) (*appsv1.Deployment, *corev1.Container, error) {
	var found []*appsv1.Deployment
	for _, d := range typedOf[*appsv1.Deployment](s) {
		if d.Labels[appLabel] == "egressd" {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return nil, nil, fmt.Errorf("want exactly one Deployment labelled %s: egressd, found %d", appLabel, len(found))
	}
	d := found[0]
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == "egressd" {
			return d, c, nil
		}
	}
	return nil, nil, fmt.Errorf("deployment %s: no container named egressd", d.Name)
}

// HasEgressd reports whether the set deploys egressd (the corporate side).
func (s *Set) HasEgressd() bool {
	_, _, err := egressdDeployment(s)
	return err == nil
}
