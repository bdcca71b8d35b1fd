package deploycheck

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// CheckRoutesAgree compares the two workload routes: the webhook's set
// (deploy/workload) and the static set (deploy/workload/static). A pod must
// get the same proxy and the same NO_PROXY entries whichever route
// configured it; otherwise moving a namespace from one to the other changes
// which traffic goes direct. The webhook side is what the webhook really
// injects, not its config read by hand.
func CheckRoutesAgree(webhook, static *Set) error {
	cfg, _, err := injectConfig(webhook)
	if err != nil {
		return fmt.Errorf("webhook route: %w", err)
	}
	injected, err := injectedEnv(cfg)
	if err != nil {
		return fmt.Errorf("webhook route: %w", err)
	}
	cm, err := configMap(static, ProxyEnvConfigMap)
	if err != nil {
		return fmt.Errorf("static route: %w", err)
	}
	var errs []error
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY"} {
		inj, injErr := ProxyEndpoint(injected[k])
		st, stErr := ProxyEndpoint(cm.Data[k])
		if injErr != nil || stErr != nil || inj != st {
			errs = append(errs, fmt.Errorf("%s: the webhook injects %q, ConfigMap %s has %q: pods would use a different proxy depending on the route", k, injected[k], cm.Name, cm.Data[k]))
		}
	}
	onlyStatic, onlyWebhook := diffEntries(splitNoProxy(cm.Data["NO_PROXY"]), splitNoProxy(injected["NO_PROXY"]))
	if len(onlyStatic)+len(onlyWebhook) > 0 {
		errs = append(errs, fmt.Errorf("NO_PROXY differs: only in ConfigMap %s: [%s]; only injected by the webhook (%s no_proxy): [%s]",
			cm.Name, strings.Join(onlyStatic, ","), InjectConfigMap, strings.Join(onlyWebhook, ",")))
	}
	return errors.Join(errs...)
}

// splitNoProxy splits a NO_PROXY value, lower-cases it (host names are
// case-insensitive) and writes CIDRs in canonical form, as the webhook
// does, so "fd00:0::/64" and "fd00::/64" compare equal. Order is not
// compared: clients test every entry.
func splitNoProxy(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		if p, err := netip.ParsePrefix(e); err == nil {
			e = p.String()
		}
		if e != "" && !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// diffEntries returns the entries only in a and only in b, each in its
// list's order.
func diffEntries(a, b []string) (onlyA, onlyB []string) {
	for _, e := range a {
		if !slices.Contains(b, e) {
			onlyA = append(onlyA, e)
		}
	}
	for _, e := range b {
		if !slices.Contains(a, e) {
			onlyB = append(onlyB, e)
		}
	}
	return onlyA, onlyB
}
