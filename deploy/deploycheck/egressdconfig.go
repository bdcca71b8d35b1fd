package deploycheck

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/config"
)

// mounted is the egressd config file as the pod sees it: the -config path,
// the volume mount holding it, and the ConfigMap behind that volume.
type mounted struct {
	path  string
	mount corev1.VolumeMount
	cm    *corev1.ConfigMap
	key   string
}

// configFile follows the egressd container's -config argument to the
// ConfigMap key that provides the file.
func configFile(s *Set) (mounted, error) {
	d, c, err := egressdDeployment(s)
	if err != nil {
		return mounted{}, err
	}
	args := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(args, "-config")
	if i < 0 || i+1 >= len(args) {
		return mounted{}, fmt.Errorf("container egressd: args %q have no -config FILE; set args: [serve, -config, /etc/egressd/config/config.yaml]", args)
	}
	m := mounted{path: args[i+1]}
	dir, file := path.Split(m.path)
	var found bool
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == path.Clean(dir) {
			m.mount, found = vm, true
		}
	}
	if !found {
		return m, fmt.Errorf("container egressd: no volume is mounted at %s, the directory of -config %s", dir, m.path)
	}
	var vol *corev1.Volume
	for i := range d.Spec.Template.Spec.Volumes {
		if v := &d.Spec.Template.Spec.Volumes[i]; v.Name == m.mount.Name {
			vol = v
		}
	}
	if vol == nil || vol.ConfigMap == nil {
		return m, fmt.Errorf("volume %q (mounted at %s): want a configMap volume holding the egressd config", m.mount.Name, dir)
	}
	m.key = file
	for _, it := range vol.ConfigMap.Items {
		if it.Path == file {
			m.key = it.Key
		}
	}
	if m.cm, err = configMap(s, vol.ConfigMap.Name); err != nil {
		return m, fmt.Errorf("volume %q: %w", m.mount.Name, err)
	}
	if _, ok := m.cm.Data[m.key]; !ok {
		return m, fmt.Errorf("ConfigMap %s has no key %q for -config %s", m.cm.Name, m.key, m.path)
	}
	return m, nil
}

// egressdConfig parses the mounted config exactly as `egressd check` and a
// reload do.
func egressdConfig(s *Set) (config.Config, error) {
	m, err := configFile(s)
	if err != nil {
		return config.Config{}, err
	}
	name := fmt.Sprintf("ConfigMap %s key %s", m.cm.Name, m.key)
	return config.Parse([]byte(m.cm.Data[m.key]), name)
}

// listenPort returns the port of a listen address such as ":3128".
func listenPort(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: port: %w", addr, err)
	}
	return int32(n), nil
}

// parsePrefixes reads IPs and CIDRs with the parser egressd itself uses,
// so deploycheck can never accept a range the proxy refuses.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := acl.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func covered(a netip.Addr, list []netip.Prefix) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// configPaths lists every file the config makes egressd read, by YAML path.
func configPaths(cfg config.Config) map[string]string {
	out := map[string]string{}
	add := func(key, p string) {
		if p != "" {
			out[key] = p
		}
	}
	add("tls_inspection.ca_cert", cfg.TLS.CACert)
	add("tls_inspection.ca_key", cfg.TLS.CAKey)
	add("tls_inspection.chain", cfg.TLS.Chain)
	for i, p := range cfg.TLS.UpstreamRoots {
		add(fmt.Sprintf("tls_inspection.upstream_roots[%d]", i), p)
	}
	for i, t := range cfg.ACL.Tenants {
		for j, u := range t.Users {
			add(fmt.Sprintf("tenants[%d].users[%d].password_file", i, j), u.PasswordFile)
		}
	}
	if o := cfg.Log.Output; o != "stdout" && o != "stderr" {
		add("log.output", o)
	}
	return out
}

// underMount returns the mount whose directory contains p.
func underMount(c *corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(path.Clean(p), path.Clean(vm.MountPath)+"/") {
			return vm, true
		}
	}
	return corev1.VolumeMount{}, false
}
