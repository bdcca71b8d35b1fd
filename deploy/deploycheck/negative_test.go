package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Helpers that reach into a cloned set to break one thing.

func deployment(t *testing.T, s *Set) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d, c, err := egressdDeployment(s)
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func editConfig(t *testing.T, s *Set, old, new string) {
	t.Helper()
	cm, err := configMap(s, "egressd-config")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.yaml"], old) {
		t.Fatalf("config.yaml has no %q to replace", old)
	}
	cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], old, new, 1)
}

func pls(t *testing.T, s *Set) *corev1.Service {
	t.Helper()
	svc, ok := plsService(s)
	if !ok {
		t.Fatal("no PLS Service")
	}
	return svc
}

func policy(t *testing.T, s *Set, name string) *networkingv1.NetworkPolicy {
	t.Helper()
	for _, np := range typedOf[*networkingv1.NetworkPolicy](s) {
		if np.Name == name {
			return np
		}
	}
	t.Fatalf("no NetworkPolicy %s", name)
	return nil
}

func ptr[T any](v T) *T { return &v }

// Each case breaks one rendered object the way an operator could, and the
// check must fail with a message that says what to fix.
// breakCase is one deliberate break of a valid rendered set and the error
// the check must then report.
type breakCase struct {
	name    string
	check   func(*Set) error
	breakIt func(t *testing.T, s *Set)
	wantErr string
}

// runBreakCases proves each check can fail: it passes on an unbroken copy
// of base, and after the break it fails with the wanted message.
func runBreakCases(t *testing.T, base *Set, tests []breakCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := clone(t, base)
			if err := tc.check(s); err != nil {
				t.Fatalf("the unbroken set already fails: %v", err)
			}
			tc.breakIt(t, s)
			err := tc.check(s)
			if err == nil {
				t.Fatal("check passed a broken set")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tc.wantErr)
			}
		})
	}
}

func TestChecksCatchBrokenCorporateSets(t *testing.T) {
	aks := render(t, dirAKS)
	tests := []breakCase{
		{
			name:    "config with a typo",
			check:   checkConfigValid,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "drain_timeout: 25s", "drain_timout: 25s") },
			wantErr: "proxy.drain_timout: unknown key (did you mean drain_timeout?)",
		},
		{
			name:    "config that fails validation",
			check:   checkConfigValid,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "tcp_keepalive: 60s", "tcp_keepalive: 300s") },
			wantErr: "proxy.tcp_keepalive: 5m0s: must be well under the Private Link idle cutoff",
		},
		{
			name:  "config mounted with subPath",
			check: checkConfigMounted,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				for i := range c.VolumeMounts {
					if c.VolumeMounts[i].Name == "config" {
						c.VolumeMounts[i].SubPath = "config.yaml"
					}
				}
			},
			wantErr: `volume mount "config" uses subPath: a subPath mount never sees ConfigMap updates`,
		},
		{
			name:  "CA Secret not mounted",
			check: checkConfigMounted,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "ca" })
			},
			wantErr: "tls_inspection.ca_cert: /etc/egressd/ca/tls.crt is on no volume mount of container egressd",
		},
		{
			name:  "CA Secret projects the wrong key",
			check: checkConfigMounted,
			breakIt: func(t *testing.T, s *Set) {
				d, _ := deployment(t, s)
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Secret != nil && v.Secret.SecretName == "egressd-ca" {
						v.Secret.Items[1].Path = "ca.key"
					}
				}
			},
			wantErr: `tls_inspection.ca_key: /etc/egressd/ca/tls.key is not among the items projected by volume "ca"; add an item with path "tls.key"`,
		},
		{
			name:  "-config points nowhere",
			check: checkConfigValid,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.Args = []string{"serve", "-config", "/etc/egressd/config.yaml"}
			},
			wantErr: "container egressd: no volume is mounted at /etc/egressd/, the directory of -config /etc/egressd/config.yaml",
		},
		{
			name:    "admin listen port differs from the container port",
			check:   checkPorts,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, `listen: ":9090"`, `listen: ":9091"`) },
			wantErr: `container port "admin" is 9090 but config admin.listen is ":9091": make them agree`,
		},
		{
			name:  "readiness probe on the proxy port",
			check: checkProbes,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.ReadinessProbe.HTTPGet.Port = intstr.FromString("proxy")
			},
			wantErr: "readinessProbe: port proxy is not the admin port 9090; kubelet sends no PROXY header",
		},
		{
			name:  "liveness as a TCP probe",
			check: checkProbes,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.LivenessProbe.HTTPGet = nil
				c.LivenessProbe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromString("admin")}
			},
			wantErr: "livenessProbe: must be httpGet /healthz on port admin",
		},
		{
			name:    "drain_timeout longer than the grace period allows",
			check:   checkDrain,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "drain_timeout: 25s", "drain_timeout: 60s") },
			wantErr: "terminationGracePeriodSeconds is 50s, less than preStop 5s + proxy.drain_delay 10s + proxy.drain_timeout 1m0s + 5s to exit: tunnels would be killed before the drain ends; raise it to 80",
		},
		{
			name:  "preStop with a shell in a distroless image",
			check: checkDrain,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}
			},
			wantErr: "preStop runs a command, but the image is distroless",
		},
		{
			name:  "writable root filesystem",
			check: checkHardening,
			breakIt: func(t *testing.T, s *Set) {
				_, c := deployment(t, s)
				c.SecurityContext.ReadOnlyRootFilesystem = ptr(false)
			},
			wantErr: "readOnlyRootFilesystem must be true",
		},
		{
			name:  "service account token mounted",
			check: checkHardening,
			breakIt: func(t *testing.T, s *Set) {
				d, _ := deployment(t, s)
				d.Spec.Template.Spec.AutomountServiceAccountToken = nil
			},
			wantErr: "automountServiceAccountToken must be false",
		},
		{
			name:  "single replica",
			check: checkAvailability,
			breakIt: func(t *testing.T, s *Set) {
				d, _ := deployment(t, s)
				d.Spec.Replicas = ptr(int32(1))
			},
			wantErr: "Deployment replicas is 1: run at least 2",
		},
		{
			name:  "no zone spread",
			check: checkAvailability,
			breakIt: func(t *testing.T, s *Set) {
				d, _ := deployment(t, s)
				d.Spec.Template.Spec.TopologySpreadConstraints = d.Spec.Template.Spec.TopologySpreadConstraints[1:]
			},
			wantErr: "pods are not spread over topology.kubernetes.io/zone",
		},
		{
			name:  "admin port open to every namespace",
			check: checkAdminIngress,
			breakIt: func(t *testing.T, s *Set) {
				np := policy(t, s, "egressd-admin")
				np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels = nil
			},
			wantErr: "a NetworkPolicy rule admits the admin port 9090 from namespaceSelector <none>; only a namespaceSelector naming the monitoring namespace may",
		},
		{
			name:  "ServiceMonitor scrapes a port the admin Service lacks",
			check: checkMonitoring,
			breakIt: func(t *testing.T, s *Set) {
				for _, svc := range typedOf[*corev1.Service](s) {
					if svc.Name == "egressd-admin" {
						svc.Spec.Ports[0].Name = "metrics"
					}
				}
			},
			wantErr: `ServiceMonitor egressd scrapes port "admin", but no Service it selects has a port of that name targeting the admin port 9090`,
		},
		{
			name:    "PLS proxy protocol on, config optional",
			check:   checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "proxy_protocol: required", "proxy_protocol: optional") },
			wantErr: `proxy.proxy_protocol is "optional" but the PLS sends a PROXY header on every connection: set it to required`,
		},
		{
			name:    "PLS proxy protocol off",
			check:   checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) { pls(t, s).Annotations[annProxyProtocol] = "false" },
			wantErr: `azure-pls-proxy-protocol is not "true": without the PROXY v2 header egressd sees no LinkID`,
		},
		{
			name:    "NAT IP outside trusted_proxies",
			check:   checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) { pls(t, s).Annotations[annNATIPs] = "10.240.8.4 10.240.9.5" },
			wantErr: "proxy.trusted_proxies does not cover PLS NAT IP 10.240.9.5",
		},
		{
			name:    "probe source not trusted",
			check:   checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "- 168.63.129.16/32", "") },
			wantErr: "proxy.trusted_proxies does not cover 168.63.129.16: the Azure LB health probes",
		},
		{
			name:  "tenant scoped to another NAT subnet",
			check: checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) {
				editConfig(t, s, `nat_cidrs: ["10.240.8.0/28"]`, `nat_cidrs: ["10.240.9.0/28"]`)
			},
			wantErr: "tenants[0] (team-a).nat_cidrs does not cover PLS NAT IP 10.240.8.4",
		},
		{
			name:    "NAT IPs not all static",
			check:   checkPLSProxyProtocol,
			breakIt: func(t *testing.T, s *Set) { pls(t, s).Annotations[annNATCount] = "3" },
			wantErr: "azure-pls-ip-configuration-ip-address lists 2 IPs but service.beta.kubernetes.io/azure-pls-ip-configuration-ip-address-count is 3",
		},
		{
			name:  "externalTrafficPolicy Cluster",
			check: checkProbeDesign,
			breakIt: func(t *testing.T, s *Set) {
				pls(t, s).Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
			},
			wantErr: `externalTrafficPolicy is "Cluster": with Cluster the socket peer becomes a node address`,
		},
		{
			name:    "Local without the probe port annotation",
			check:   checkProbeDesign,
			breakIt: func(t *testing.T, s *Set) { delete(pls(t, s).Annotations, probeAnnotation(3128, "port")) },
			wantErr: `port_3128_health-probe_port is "": point the LB probe at the proxy port (3128 or "proxy") itself, or it probes kube-proxy's health-check node port`,
		},
		{
			name:    "https probe",
			check:   checkProbeDesign,
			breakIt: func(t *testing.T, s *Set) { pls(t, s).Annotations[probeAnnotation(3128, "protocol")] = "https" },
			wantErr: `port_3128_health-probe_protocol is "https": use http (sees the drain) or tcp`,
		},
		{
			name:    "auto-approval for everyone",
			check:   checkPLSApproval,
			breakIt: func(t *testing.T, s *Set) { pls(t, s).Annotations[annAutoApproval] = "*" },
			wantErr: `azure-pls-auto-approval is "*": any subscription could connect without approval`,
		},
		{
			name:  "auto-approval of a subscription that cannot see the alias",
			check: checkPLSApproval,
			breakIt: func(t *testing.T, s *Set) {
				pls(t, s).Annotations[annVisibility] = "11111111-1111-1111-1111-111111111111"
			},
			wantErr: "azure-pls-auto-approval lists 00000000-0000-0000-0000-000000000000, which service.beta.kubernetes.io/azure-pls-visibility does not make visible",
		},
		{
			name:    "too few NAT IPs for max_connections",
			check:   checkNATCapacity,
			breakIt: func(t *testing.T, s *Set) { editConfig(t, s, "max_connections: 10000", "max_connections: 120000") },
			wantErr: "proxy.max_connections 120000 × 1 pod(s) per node = 120000 connections, but 2 NAT IP(s) give 102400 SNAT ports per node (80% of 64000 each)",
		},
		{
			name:  "pods may share a node",
			check: checkNATCapacity,
			breakIt: func(t *testing.T, s *Set) {
				editConfig(t, s, "max_connections: 10000", "max_connections: 40000")
				d, _ := deployment(t, s)
				d.Spec.Template.Spec.Affinity = nil
			},
			wantErr: "proxy.max_connections 40000 × 6 pod(s) per node = 240000 connections",
		},
		{
			name:  "proxy NetworkPolicy misses the probe source",
			check: checkProxyIngress,
			breakIt: func(t *testing.T, s *Set) {
				np := policy(t, s, "egressd-proxy")
				np.Spec.Ingress[0].From = np.Spec.Ingress[0].From[:1]
			},
			wantErr: "the proxy port NetworkPolicy does not admit 168.63.129.16",
		},
		{
			name:  "proxy NetworkPolicy open to pods",
			check: checkProxyIngress,
			breakIt: func(t *testing.T, s *Set) {
				np := policy(t, s, "egressd-proxy")
				np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})
			},
			wantErr: "the proxy port NetworkPolicy admits podSelector <none>; behind a PLS admit only ipBlocks",
		},
	}
	runBreakCases(t, aks, tests)
}

func TestChecksCatchBrokenStaticRouteSets(t *testing.T) {
	wl := render(t, dirStatic)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	tests := []breakCase{
		{
			name:  "HTTPS_PROXY names another address",
			check: checkProxyEnv,
			breakIt: func(t *testing.T, s *Set) {
				cm, _ := configMap(s, ProxyEnvConfigMap)
				cm.Data["HTTPS_PROXY"] = "http://10.2.128.101:3128"
			},
			wantErr: `HTTPS_PROXY is "http://10.2.128.101:3128" but HTTP_PROXY is "http://10.2.128.100:3128"`,
		},
		{
			name:  "NO_PROXY without IMDS",
			check: checkProxyEnv,
			breakIt: func(t *testing.T, s *Set) {
				cm, _ := configMap(s, ProxyEnvConfigMap)
				for _, k := range []string{"NO_PROXY", "no_proxy"} {
					cm.Data[k] = strings.Replace(cm.Data[k], ",169.254.169.254", "", 1)
				}
			},
			wantErr: "NO_PROXY lacks 169.254.169.254",
		},
		{
			name:  "proxy given by name",
			check: checkProxyEnv,
			breakIt: func(t *testing.T, s *Set) {
				cm, _ := configMap(s, ProxyEnvConfigMap)
				cm.Data["HTTP_PROXY"] = "http://egressd.corp:3128"
			},
			wantErr: `proxy URL "http://egressd.corp:3128": want the private endpoint's static IP and port`,
		},
		{
			name:  "NetworkPolicy names another IP than the proxy variables",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Spec.Egress[0].To[0].IPBlock.CIDR = "10.2.128.0/24"
			},
			wantErr: "egress[0]: ipBlock 10.2.128.0/24: the only address allowed is the private endpoint 10.2.128.100/32",
		},
		{
			name:  "endpoint rule opens every port",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Spec.Egress[0].Ports = nil
			},
			wantErr: "egress[0]: the private endpoint rule must allow TCP 3128 only",
		},
		{
			name:  "extra rule to the internet",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				np := policy(t, s, ForceProxyPolicy)
				np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
					To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromInt32(443))}},
				})
			},
			wantErr: "egress[3]: ipBlock 0.0.0.0/0: the only address allowed is the private endpoint",
		},
		{
			name:  "DNS rule without TCP",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Spec.Egress[1].Ports = []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: ptr(intstr.FromInt32(53))}}
			},
			wantErr: "egress[1]: the DNS rule must allow UDP 53 and TCP 53 only",
		},
		{
			name:  "in-cluster rule narrowed to ports",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Spec.Egress[2].Ports = []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr(intstr.FromInt32(80))}}
			},
			wantErr: "egress[2]: the in-cluster rule must be exactly to: [namespaceSelector: {}] with no ports",
		},
		{
			name:  "policy also isolates ingress",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				np := policy(t, s, ForceProxyPolicy)
				np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			},
			wantErr: "policyTypes must be [Egress], is [Egress Ingress]",
		},
		{
			name:  "example workload without the proxy variables",
			check: checkWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				for _, d := range typedOf[*appsv1.Deployment](s) {
					d.Spec.Template.Spec.Containers[0].EnvFrom = nil
				}
			},
			wantErr: "Deployment egress-example container app: no envFrom configMapRef egressd-proxy-env",
		},
		{
			name:  "CA bundle nobody writes",
			check: checkWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				for _, d := range typedOf[*appsv1.Deployment](s) {
					d.Spec.Template.Spec.InitContainers = nil
				}
			},
			wantErr: `SSL_CERT_FILE=/trust/ca-bundle.crt: on emptyDir "trust", but no init container writes ca-bundle.crt`,
		},
	}
	runBreakCases(t, wl, tests)
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{
			name:    "unknown field in a Deployment",
			yaml:    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
			wantErr: `x: document 0: apps/v1 Deployment x: strict decode: json: unknown field "replica"`,
		},
		{
			name:    "wrong type",
			yaml:    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: \"eighty\"}]}\n",
			wantErr: "v1 Service x: strict decode: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32",
		},
		{
			name:    "kind without a decoder",
			yaml:    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {}\n",
			wantErr: "example.com/v1 Widget x: no decoder for this kind",
		},
		{
			name:    "ServiceMonitor without endpoints",
			yaml:    "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {selector: {}}\n",
			wantErr: "monitoring.coreos.com/v1 ServiceMonitor x: spec.endpoints: missing or empty",
		},
		{
			name:    "PrometheusRule without expr",
			yaml:    "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec: {groups: [{name: g, rules: [{alert: A}]}]}\n",
			wantErr: "spec.groups[0].rules[0]: expr: missing or not a string",
		},
		{
			name:    "object without a name",
			yaml:    "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
			wantErr: "v1 ConfigMap: metadata.name is empty",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.yaml), "x")
			if err == nil {
				t.Fatal("Decode accepted it")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tc.wantErr)
			}
		})
	}
}

func TestIaCChecksFail(t *testing.T) {
	wl := render(t, dirWorkload)
	ep, _, err := workloadEndpoint(wl)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bicep := filepath.Join(dir, "pe.bicep")
	src, err := os.ReadFile(filepath.Join(dirWorkload, "bicep", "private-endpoint.bicep"))
	if err != nil {
		t.Fatal(err)
	}
	// An automatic connection has no request message and stays pending
	// forever across tenants.
	broken := strings.Replace(string(src), "          requestMessage: requestMessage\n", "", 1)
	if err := os.WriteFile(bicep, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	files := WorkloadIaC(dirWorkload, ep)[:1]
	files[0].Path = bicep
	err = CheckIaC(files)
	if want := bicep + ": nothing matches requestMessage: requestMessage"; err == nil || err.Error() != want {
		t.Errorf("CheckIaC: %v, want %s", err, want)
	}

	proxyCfg := filepath.Join(dir, "proxy.json")
	if err := os.WriteFile(proxyCfg, []byte(`{"httpProxy":"http://10.2.128.100:3128/","httpsProxy":"http://10.9.9.9:3128/","noProxy":["localhost"],"trustedCa":"x","extra":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = CheckHTTPProxyConfig(proxyCfg, ep)
	if want := `json: unknown field "extra"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckHTTPProxyConfig: %v, want %s", err, want)
	}
	if err := os.WriteFile(proxyCfg, []byte(`{"httpProxy":"http://10.2.128.100:3128/","httpsProxy":"http://10.9.9.9:3128/","noProxy":["localhost"],"trustedCa":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err = CheckHTTPProxyConfig(proxyCfg, ep)
	for _, want := range []string{
		`httpsProxy is "http://10.9.9.9:3128/", want http://10.2.128.100:3128/`,
		"noProxy lacks 127.0.0.1,.cluster.local,.svc,kubernetes.default,169.254.169.254",
		"trustedCa is empty",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckHTTPProxyConfig: %v, want it to contain %s", err, want)
		}
	}
	if regexp.MustCompile(`httpProxy is`).MatchString(err.Error()) {
		t.Errorf("the correct httpProxy was flagged: %v", err)
	}
}
