package deploycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	sigsjson "sigs.k8s.io/json"
)

// ErrNoKubectl means kubectl, which renders the kustomizations, is not on PATH.
var ErrNoKubectl = errors.New("deploycheck: kubectl not found on PATH (it ships in the project's machine image; apt-get install kubectl)")

// renderTimeout bounds one `kubectl kustomize`; rendering is local file work.
const renderTimeout = 60 * time.Second

// Render runs `kubectl kustomize dir` and decodes the result strictly.
// kubectl is used rather than the kustomize Go API because it is part of
// the machine image, and its embedded kustomize is the one operators run.
func Render(ctx context.Context, dir string) (*Set, error) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return nil, ErrNoKubectl
	}
	ctx, cancel := context.WithTimeout(ctx, renderTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("render %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return Decode(stdout.Bytes(), dir)
}

// Decode splits a YAML stream into objects and decodes each strictly into
// its Go type: a field the type does not have is an error, as it would be
// for `kubectl apply --validate=strict`. source names the stream in errors.
func Decode(stream []byte, source string) (*Set, error) {
	s := &Set{Source: source, raw: bytes.Clone(stream)}
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	var errs []error
	for i := 0; ; i++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if doc == nil {
			continue
		}
		obj, err := decodeObject(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", source, i, err))
			continue
		}
		s.Objects = append(s.Objects, obj)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeObject goes through JSON because the k8s.io/api types carry JSON
// tags only (what sigs.k8s.io/yaml.YAMLToJSON does, with the YAML parser
// the project already uses).
func decodeObject(doc any) (Object, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return Object{}, fmt.Errorf("not a mapping but %T", doc)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return Object{}, fmt.Errorf("convert to JSON: %w", err)
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Object{}, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	obj := Object{APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Namespace: head.Metadata.Namespace, Raw: m}
	id := obj.APIVersion + " " + obj.Kind + " " + obj.Name
	if obj.Name == "" {
		return obj, fmt.Errorf("%s %s: metadata.name is empty", obj.APIVersion, obj.Kind)
	}
	typed, ok := newTyped(obj.APIVersion, obj.Kind)
	if !ok {
		if err := checkCustom(obj); err != nil {
			return obj, fmt.Errorf("%s: %w", id, err)
		}
		return obj, nil
	}
	// sigs.k8s.io/json is the decoder the API server uses: field names
	// match case-sensitively (encoding/json would take
	// terminationgraceperiodseconds for terminationGracePeriodSeconds, and
	// a real apply would drop it), unknown and duplicate fields are errors.
	strict, err := sigsjson.UnmarshalStrict(data, typed)
	if err != nil {
		return obj, fmt.Errorf("%s: strict decode: %w", id, err)
	}
	if len(strict) > 0 {
		return obj, fmt.Errorf("%s: strict decode: %w", id, errors.Join(strict...))
	}
	obj.Typed = typed
	return obj, nil
}
