package deploycheck

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/egressd/egressd/inject"
)

// ProxyVars are the variables both routes set, in both spellings.
func ProxyVars() []string {
	return []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"}
}

// checkInjectConfig runs the webhook on a bare selected pod and checks
// what it injects, so the check sees the NO_PROXY the webhook really
// builds rather than a re-implementation of it.
func checkInjectConfig(s *Set) error {
	cfg, _, err := injectConfig(s)
	if err != nil {
		return err
	}
	env, err := injectedEnv(cfg)
	if err != nil {
		return err
	}
	var errs []error
	ep, err := ProxyEndpoint(env["HTTP_PROXY"])
	if err != nil {
		errs = append(errs, fmt.Errorf("injected HTTP_PROXY: %w", err))
	} else if ep.Port() != 3128 {
		errs = append(errs, fmt.Errorf("injected proxy port %d, the PLS forwards 3128", ep.Port()))
	}
	for _, k := range []string{"HTTPS_PROXY", "http_proxy", "https_proxy"} {
		if env[k] != env["HTTP_PROXY"] {
			errs = append(errs, fmt.Errorf("injects %s=%q but HTTP_PROXY=%q: every spelling must name the same endpoint (egressd serves CONNECT on the proxy port)", k, env[k], env["HTTP_PROXY"]))
		}
	}
	if env["NODE_USE_ENV_PROXY"] != "1" {
		errs = append(errs, fmt.Errorf("injects no NODE_USE_ENV_PROXY=1: Node.js ignores the proxy variables without it"))
	}
	if m := MissingNoProxy(strings.Split(env["NO_PROXY"], ",")); len(m) > 0 {
		errs = append(errs, fmt.Errorf("injected NO_PROXY lacks %s: that traffic would be sent to the proxy and refused", strings.Join(m, ",")))
	}
	return errors.Join(errs...)
}

// checkWebhookConfiguration checks the MutatingWebhookConfiguration against
// the webhook it calls and the config that webhook runs.
func checkWebhookConfiguration(s *Set) error {
	mwc, wh, err := mutatingWebhook(s)
	if err != nil {
		return err
	}
	cfg, cm, err := injectConfig(s)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("MutatingWebhookConfiguration %s: "+format, append([]any{mwc.Name}, args...)...))
	}

	d, c, err := injectDeployment(s)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.ConfigMap != nil && v.ConfigMap.Name == cm.Name
	}) {
		errs = append(errs, fmt.Errorf("deployment %s mounts no ConfigMap %s: the webhook would run another config than the one checked here", d.Name, cm.Name))
	}
	if err := checkWebhookService(s, wh, c, cfg.Listen); err != nil {
		bad("%v", err)
	}
	if sel := wh.ObjectSelector; sel == nil || len(sel.MatchExpressions) > 0 || !maps.Equal(sel.MatchLabels, cfg.Selector) {
		bad("objectSelector %s, config selector %v: they must be equal, or labelled pods are never sent to the webhook, or sent and skipped", describeSelector(sel), cfg.Selector)
	}
	if wh.FailurePolicy == nil || string(*wh.FailurePolicy) != cfg.FailurePolicy {
		bad("failurePolicy %s, config failure_policy %s: keep them equal (docs/inject.md)", ptrString(wh.FailurePolicy), cfg.FailurePolicy)
	}
	if wh.ClientConfig.Service != nil {
		own := map[string]string{corev1.LabelMetadataName: wh.ClientConfig.Service.Namespace}
		if nsSel, err := webhookSelector(wh.NamespaceSelector); err != nil || nsSel.Matches(labels.Set(own)) {
			bad("namespaceSelector %s admits the webhook's own namespace %s: with failurePolicy Fail its pods would wait on themselves", describeSelector(wh.NamespaceSelector), own[corev1.LabelMetadataName])
		}
	}
	if wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone {
		bad("sideEffects must be None: the webhook writes nothing, and dry-run requests are refused otherwise")
	}
	if len(wh.Rules) != 1 || !slices.Equal(wh.Rules[0].Resources, []string{"pods"}) ||
		!slices.Equal(wh.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) {
		bad("rules must be pods CREATE only (pod specs are immutable on UPDATE)")
	}
	return errors.Join(errs...)
}

// injectDeployment returns the webhook's Deployment and its single container.
func injectDeployment(s *Set) (*appsv1.Deployment, *corev1.Container, error) {
	for _, d := range typedOf[*appsv1.Deployment](s) {
		if d.Name == InjectDeployment && len(d.Spec.Template.Spec.Containers) == 1 {
			return d, &d.Spec.Template.Spec.Containers[0], nil
		}
	}
	return nil, nil, fmt.Errorf("deployment %s with one container: not in the rendered set", InjectDeployment)
}

// checkWebhookService follows clientConfig.service to the Service, its port
// to the container port, and that to the config's listen address.
func checkWebhookService(s *Set, wh *admissionregistrationv1.MutatingWebhook, c *corev1.Container, listen string) error {
	ref := wh.ClientConfig.Service
	if ref == nil {
		return errors.New("clientConfig.service is not set: cert-manager's caBundle injection and the Service are how the API server reaches the webhook")
	}
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	var svc *corev1.Service
	for _, x := range typedOf[*corev1.Service](s) {
		if x.Name == ref.Name && x.Namespace == ref.Namespace {
			svc = x
		}
	}
	if svc == nil {
		return fmt.Errorf("clientConfig.service %s/%s is not in the rendered set", ref.Namespace, ref.Name)
	}
	want, err := listenPort(listen)
	if err != nil {
		return fmt.Errorf("config listen: %w", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port != port {
			continue
		}
		if got, ok := resolvePort(c, p.TargetPort); !ok || got != want {
			return fmt.Errorf("service %s port %d targets %s, which is not the webhook's listen port %d", svc.Name, port, p.TargetPort.String(), want)
		}
		return nil
	}
	return fmt.Errorf("service %s has no port %d for clientConfig.service.port", svc.Name, port)
}

// checkWebhookWorkloads checks that every filtered Deployment is one the
// webhook will mutate and that leaves the proxy settings to it.
func checkWebhookWorkloads(s *Set) error {
	cfg, _, err := injectConfig(s)
	if err != nil {
		return err
	}
	mwc, wh, err := mutatingWebhook(s)
	if err != nil {
		return err
	}
	filtered := filteredDeployments(s)
	if len(filtered) == 0 {
		return fmt.Errorf("no Deployment has pods labelled %s: %s; the example must show how a workload opts in", FilteredLabel, FilteredValue)
	}
	objSel, objErr := webhookSelector(wh.ObjectSelector)
	nsSel, nsErr := webhookSelector(wh.NamespaceSelector)
	if err := errors.Join(objErr, nsErr); err != nil {
		return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mwc.Name, err)
	}
	managed := append(ProxyVars(), cfg.CA.Env...)
	var errs []error
	for _, d := range filtered {
		where := fmt.Sprintf("Deployment %s/%s", d.Namespace, d.Name)
		if !objSel.Matches(labels.Set(d.Spec.Template.Labels)) {
			errs = append(errs, fmt.Errorf("%s: pod labels %v do not match the webhook's objectSelector %s: its pods start without proxy settings and reach nothing", where, d.Spec.Template.Labels, describeSelector(wh.ObjectSelector)))
		}
		if !nsSel.Matches(labels.Set(namespaceLabels(s, d.Namespace))) {
			errs = append(errs, fmt.Errorf("%s: namespace %s is excluded by the webhook's namespaceSelector %s", where, d.Namespace, describeSelector(wh.NamespaceSelector)))
		}
		ps := d.Spec.Template.Spec
		for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
			for _, e := range c.Env {
				if slices.Contains(managed, e.Name) {
					errs = append(errs, fmt.Errorf("%s container %s sets %s itself: the webhook leaves explicit settings alone, so this pod would not follow %s", where, c.Name, e.Name, InjectConfigMap))
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == ProxyEnvConfigMap {
					errs = append(errs, fmt.Errorf("%s container %s takes envFrom %s, the static route's ConfigMap: the injected env shadows it; use one route", where, c.Name, ProxyEnvConfigMap))
				}
			}
		}
		if cfg.CA.ConfigMap == "" {
			continue
		}
		cm, ok := configMapIn(s, d.Namespace, cfg.CA.ConfigMap)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: ConfigMap %s (ca.config_map) is not in namespace %s: its pods wait in ContainerCreating", where, cfg.CA.ConfigMap, d.Namespace))
		case cm.Data[cfg.CA.Key] == "":
			errs = append(errs, fmt.Errorf("%s: ConfigMap %s has no key %s (ca.key): its pods wait in ContainerCreating", where, cm.Name, cfg.CA.Key))
		}
	}
	return errors.Join(errs...)
}

// checkInjectedPods runs the real webhook on every filtered Deployment's
// pod and checks the result as the kubelet would run it: every container
// names the endpoint and finds the CA bundle file on a volume that exists.
func checkInjectedPods(s *Set) error {
	cfg, _, err := injectConfig(s)
	if err != nil {
		return err
	}
	ep, where, err := workloadEndpoint(s)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range filteredDeployments(s) {
		pod, _, err := InjectedPod(cfg, PodFromTemplate(d))
		if err != nil {
			errs = append(errs, fmt.Errorf("deployment %s/%s: %w", d.Namespace, d.Name, err))
			continue
		}
		for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
			errs = append(errs, checkInjectedContainer(s, cfg, pod, &c, ep, where)...)
		}
	}
	return errors.Join(errs...)
}

func checkInjectedContainer(s *Set, cfg inject.Config, pod *corev1.Pod, c *corev1.Container, ep netip.AddrPort, where string) []error {
	at := fmt.Sprintf("deployment %s container %s after injection", strings.TrimSuffix(pod.GenerateName, "-"), c.Name)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value // the kubelet keeps the last of duplicate names
	}
	var errs []error
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		if got, err := ProxyEndpoint(env[k]); err != nil || got != ep {
			errs = append(errs, fmt.Errorf("%s: %s=%q, want http://%s (%s)", at, k, env[k], ep, where))
		}
	}
	if env["NO_PROXY"] != env["no_proxy"] {
		errs = append(errs, fmt.Errorf("%s: NO_PROXY and no_proxy differ", at))
	}
	if m := MissingNoProxy(strings.Split(env["NO_PROXY"], ",")); len(m) > 0 {
		errs = append(errs, fmt.Errorf("%s: NO_PROXY lacks %s", at, strings.Join(m, ",")))
	}
	if cfg.CA.ConfigMap == "" {
		return errs
	}
	for _, k := range cfg.CA.Env {
		if env[k] == "" {
			errs = append(errs, fmt.Errorf("%s: %s is not set", at, k))
			continue
		}
		if err := configMapFile(s, pod.Namespace, pod.Spec, c, env[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s=%s: %w", at, k, env[k], err))
		}
	}
	return errs
}

// configMapFile checks that file p exists in c: on a mount of a ConfigMap
// volume whose ConfigMap is in the set, in namespace ns, with the key that
// projects to p. Other volume kinds go through fileOnVolume.
func configMapFile(s *Set, ns string, ps corev1.PodSpec, c *corev1.Container, p string) error {
	vm, ok := underMount(c, p)
	if !ok {
		return fmt.Errorf("not on any volume mount of the container")
	}
	i := slices.IndexFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
	if i < 0 || ps.Volumes[i].ConfigMap == nil {
		return fileOnVolume(ps, c, p)
	}
	src := ps.Volumes[i].ConfigMap
	cm, ok := configMapIn(s, ns, src.Name)
	if !ok {
		return fmt.Errorf("volume %s: ConfigMap %s is not in namespace %s", vm.Name, src.Name, ns)
	}
	rel := strings.TrimPrefix(path.Clean(p), path.Clean(vm.MountPath)+"/")
	key := rel
	if len(src.Items) > 0 {
		key = ""
		for _, it := range src.Items {
			if path.Clean(it.Path) == rel {
				key = it.Key
			}
		}
		if key == "" {
			return fmt.Errorf("volume %s projects no item to %s", vm.Name, rel)
		}
	}
	if _, ok := cm.Data[key]; !ok {
		return fmt.Errorf("ConfigMap %s has no key %s", cm.Name, key)
	}
	return nil
}

// configMapIn finds a ConfigMap by namespace and name.
func configMapIn(s *Set, ns, name string) (*corev1.ConfigMap, bool) {
	for _, cm := range typedOf[*corev1.ConfigMap](s) {
		if cm.Namespace == ns && cm.Name == name {
			return cm, true
		}
	}
	return nil, false
}

// namespaceLabels are the labels the API server will see on namespace ns:
// those in the rendered Namespace object plus kubernetes.io/metadata.name,
// which it sets itself.
func namespaceLabels(s *Set, ns string) map[string]string {
	out := map[string]string{}
	for _, n := range typedOf[*corev1.Namespace](s) {
		if n.Name == ns {
			maps.Copy(out, n.Labels)
		}
	}
	out[corev1.LabelMetadataName] = ns
	return out
}

// webhookSelector reads a webhook's objectSelector or namespaceSelector
// the way the API server does: unset selects everything (it defaults to
// {}), unlike LabelSelectorAsSelector(nil), which selects nothing.
func webhookSelector(sel *metav1.LabelSelector) (labels.Selector, error) {
	if sel == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(sel)
}

func describeSelector(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "<none>"
	}
	return metav1.FormatLabelSelector(sel)
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return "<unset>"
	}
	return string(*p)
}
