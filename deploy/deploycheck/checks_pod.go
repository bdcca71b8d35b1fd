package deploycheck

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// shutdownMargin is what terminationGracePeriodSeconds must leave after
// preStop and drain_timeout for egressd to exit and flush its logs before
// the kubelet's SIGKILL.
const shutdownMargin = 5 * time.Second

func checkConfigValid(s *Set) error {
	_, err := egressdConfig(s)
	return err
}

func checkConfigMounted(s *Set) error {
	m, err := configFile(s)
	if err != nil {
		return err
	}
	var errs []error
	if m.mount.SubPath != "" || m.mount.SubPathExpr != "" {
		errs = append(errs, fmt.Errorf("volume mount %q uses subPath: a subPath mount never sees ConfigMap updates, so reloads stop working; mount the whole ConfigMap as a directory", m.mount.Name))
	}
	cfg, err := egressdConfig(s)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	d, c, _ := egressdDeployment(s)
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	paths := configPaths(cfg)
	for _, key := range sortedKeys(paths) {
		p := paths[key]
		vm, ok := underMount(c, p)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s is on no volume mount of container egressd (the root filesystem is read-only and has no such file); mount the Secret that holds it", key, p))
			continue
		}
		if vm.SubPath != "" {
			errs = append(errs, fmt.Errorf("%s: %s is mounted with subPath, so a rotated Secret never reaches the pod; mount the directory", key, p))
		}
		v := vols[vm.Name]
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		case key == "log.output" && v.EmptyDir != nil:
			continue
		default:
			errs = append(errs, fmt.Errorf("%s: %s is on volume %q, which is neither a Secret nor a ConfigMap", key, p, vm.Name))
			continue
		}
		rel := path.Clean(p)[len(path.Clean(vm.MountPath))+1:]
		if len(items) > 0 && !slices.ContainsFunc(items, func(it corev1.KeyToPath) bool { return it.Path == rel }) {
			errs = append(errs, fmt.Errorf("%s: %s is not among the items projected by volume %q; add an item with path %q", key, p, vm.Name, rel))
		}
	}
	return errors.Join(errs...)
}

// namedPort finds a container port by name.
func namedPort(c *corev1.Container, name string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// resolvePort turns a probe or Service target port into a number.
func resolvePort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, true
	}
	return namedPort(c, p.StrVal)
}

func checkPorts(s *Set) error {
	cfg, err := egressdConfig(s)
	if err != nil {
		return err
	}
	_, c, _ := egressdDeployment(s)
	var errs []error
	want := map[string]string{"proxy": cfg.Proxy.Listen, "admin": cfg.Admin.Listen}
	for _, name := range []string{"proxy", "admin"} {
		lp, err := listenPort(want[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cp, ok := namedPort(c, name)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("container egressd has no port named %q (config %s.listen %q)", name, name, want[name]))
		case cp != lp:
			errs = append(errs, fmt.Errorf("container port %q is %d but config %s.listen is %q: make them agree", name, cp, name, want[name]))
		}
	}
	for _, svc := range egressdServices(s) {
		for _, sp := range svc.Spec.Ports {
			if _, ok := resolvePort(c, sp.TargetPort); !ok {
				errs = append(errs, fmt.Errorf("service %s port %s: targetPort %s names no container port of egressd", svc.Name, sp.Name, sp.TargetPort.String()))
			}
		}
	}
	return errors.Join(errs...)
}

// egressdServices are the Services that select egressd pods.
func egressdServices(s *Set) []*corev1.Service {
	var out []*corev1.Service
	for _, svc := range typedOf[*corev1.Service](s) {
		if svc.Spec.Selector[appLabel] == "egressd" {
			out = append(out, svc)
		}
	}
	return out
}

func checkProbes(s *Set) error {
	_, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	admin, ok := namedPort(c, "admin")
	if !ok {
		return fmt.Errorf("container egressd has no port named admin")
	}
	var errs []error
	probes := []struct {
		kind, path string
		p          *corev1.Probe
		required   bool
	}{
		{"readinessProbe", "/readyz", c.ReadinessProbe, true},
		{"livenessProbe", "/healthz", c.LivenessProbe, true},
		{"startupProbe", "/healthz", c.StartupProbe, false},
	}
	for _, pr := range probes {
		switch {
		case pr.p == nil && pr.required:
			errs = append(errs, fmt.Errorf("%s: missing; add httpGet %s on port admin", pr.kind, pr.path))
		case pr.p == nil:
		case pr.p.HTTPGet == nil:
			errs = append(errs, fmt.Errorf("%s: must be httpGet %s on port admin (a TCP or exec probe cannot see a drain, and the image has no shell)", pr.kind, pr.path))
		default:
			port, ok := resolvePort(c, pr.p.HTTPGet.Port)
			if !ok || port != admin {
				errs = append(errs, fmt.Errorf("%s: port %s is not the admin port %d; kubelet sends no PROXY header, so probes belong on admin", pr.kind, pr.p.HTTPGet.Port.String(), admin))
			}
			if pr.p.HTTPGet.Path != pr.path {
				errs = append(errs, fmt.Errorf("%s: path %q, want %q", pr.kind, pr.p.HTTPGet.Path, pr.path))
			}
		}
	}
	return errors.Join(errs...)
}

func checkDrain(s *Set) error {
	cfg, err := egressdConfig(s)
	if err != nil {
		return err
	}
	d, c, _ := egressdDeployment(s)
	var preStop time.Duration
	if lc := c.Lifecycle; lc != nil && lc.PreStop != nil {
		switch {
		case lc.PreStop.Sleep != nil:
			preStop = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
		case lc.PreStop.Exec != nil:
			return fmt.Errorf("preStop runs a command, but the image is distroless with no shell or sleep binary; use lifecycle.preStop.sleep.seconds")
		}
	}
	if preStop == 0 {
		return fmt.Errorf("no preStop sleep: SIGTERM would arrive while kube-proxy and the load balancer still send new connections; add lifecycle.preStop.sleep.seconds (5)")
	}
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
		return fmt.Errorf("terminationGracePeriodSeconds unset (30s default); set it to at least preStop %s + drain_delay %s + drain_timeout %s + %s", preStop, cfg.Proxy.DrainDelay, cfg.Proxy.DrainTimeout, shutdownMargin)
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if need := preStop + cfg.Proxy.DrainDelay + cfg.Proxy.DrainTimeout + shutdownMargin; grace < need {
		return fmt.Errorf("terminationGracePeriodSeconds is %s, less than preStop %s + proxy.drain_delay %s + proxy.drain_timeout %s + %s to exit: tunnels would be killed before the drain ends; raise it to %d or lower drain_timeout", grace, preStop, cfg.Proxy.DrainDelay, cfg.Proxy.DrainTimeout, shutdownMargin, int(need.Seconds()))
	}
	return nil
}

func checkHardening(s *Set) error {
	d, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	ps := d.Spec.Template.Spec
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		bad("automountServiceAccountToken must be false: egressd never calls the API server")
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		bad("pod must not use host namespaces")
	}
	psc := ps.SecurityContext
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		bad("pod securityContext.seccompProfile.type must be RuntimeDefault")
	}
	sc := c.SecurityContext
	if sc == nil {
		return errors.Join(append(errs, fmt.Errorf("container egressd has no securityContext"))...)
	}
	nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	if !nonRoot {
		bad("runAsNonRoot must be true (the image runs as 65532)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("readOnlyRootFilesystem must be true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("allowPrivilegeEscalation must be false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		bad("privileged must not be set")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		bad("capabilities must drop ALL and add none (ports 3128 and 9090 need no NET_BIND_SERVICE)")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			bad("resources.requests.%s missing: the scheduler and the HPA need it", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			bad("resources.limits.%s missing", r)
		}
	}
	return errors.Join(errs...)
}
