package acl

// aksEgressSource is Microsoft Learn's list of what AKS needs outbound;
// every set below is transcribed from one of its sections. When the page
// changes, update the set and its Revised date together.
const aksEgressSource = "https://learn.microsoft.com/azure/aks/outbound-rules-control-egress"

// builtinRevised is when these sets were last compared with the source
// (MicrosoftDocs/azure-aks-docs, articles/aks/outbound-rules-control-egress.md).
const builtinRevised = "2026-12-02"

var https443 = []string{"443"}

// builtinSets is keyed by name without BuiltinPrefix. The page lists HTTPS
// FQDN rules on 443 and a few HTTP ones on 80; only FQDN rules are here,
// since the UDP/TCP network rules (1194, 9000, 123) never pass an HTTP proxy.
var builtinSets = map[string]Builtin{
	"aks-required": {
		Name:    "aks-required",
		Summary: "what every AKS cluster needs: API server tunnel, MCR, ARM, Entra ID, packages",
		Source:  aksEgressSource + "#azure-global-required-fqdn--application-rules",
		Revised: builtinRevised,
		Clouds: map[string][]BuiltinRule{
			CloudPublic: {
				{Name: "apiserver", Domains: []string{"*.hcp.<region>.azmk8s.io"}, Ports: https443,
					Note: "node to API server (konnectivity, relies on ALPN: never inspected)"},
				{Name: "mcr", Domains: []string{"mcr.microsoft.com", "*.data.mcr.microsoft.com", "mcr-0001.mcr-msedge.net"}, Ports: https443,
					Note: "Microsoft Container Registry and its CDN storage"},
				{Name: "arm", Domains: []string{"management.azure.com"}, Ports: https443, Note: "Kubernetes operations against the Azure API"},
				{Name: "entra", Domains: []string{"login.microsoftonline.com"}, Ports: https443, Note: "Microsoft Entra ID authentication"},
				{Name: "packages", Domains: []string{"packages.microsoft.com"}, Ports: https443, Note: "cached apt-get operations (Moby, PowerShell, Azure CLI)"},
				// packages.aks.azure.com replaced acs-mirror.azureedge.net for
				// node binaries after 2025-05-31 (Azure/AKS#4792); node images
				// fall back to the old CDN, so both stay.
				{Name: "binaries", Domains: []string{"packages.aks.azure.com", "acs-mirror.azureedge.net"}, Ports: https443,
					Note: "kubenet, Azure CNI and other node binaries"},
			},
			CloudChina: {
				{Name: "apiserver", Domains: []string{"*.hcp.<region>.cx.prod.service.azk8s.cn", "*.tun.<region>.cx.prod.service.azk8s.cn"}, Ports: https443,
					Note: "node to API server"},
				{Name: "mcr", Domains: []string{"mcr.microsoft.com", ".data.mcr.microsoft.com"}, Ports: https443, Note: "Microsoft Container Registry and its CDN storage"},
				{Name: "arm", Domains: []string{"management.chinacloudapi.cn"}, Ports: https443, Note: "Kubernetes operations against the Azure API"},
				{Name: "entra", Domains: []string{"login.chinacloudapi.cn"}, Ports: https443, Note: "Microsoft Entra ID authentication"},
				{Name: "packages", Domains: []string{"packages.microsoft.com"}, Ports: https443, Note: "cached apt-get operations"},
				{Name: "binaries", Domains: []string{"*.azk8s.cn"}, Ports: https443, Note: "kubenet, Azure CNI and other node binaries"},
			},
			CloudUSGov: {
				{Name: "apiserver", Domains: []string{"*.hcp.<region>.cx.aks.containerservice.azure.us"}, Ports: https443, Note: "node to API server"},
				{Name: "mcr", Domains: []string{"mcr.microsoft.com", "*.data.mcr.microsoft.com"}, Ports: https443, Note: "Microsoft Container Registry and its CDN storage"},
				{Name: "arm", Domains: []string{"management.usgovcloudapi.net"}, Ports: https443, Note: "Kubernetes operations against the Azure API"},
				{Name: "entra", Domains: []string{"login.microsoftonline.us"}, Ports: https443, Note: "Microsoft Entra ID authentication"},
				{Name: "packages", Domains: []string{"packages.microsoft.com"}, Ports: https443, Note: "cached apt-get operations"},
				{Name: "binaries", Domains: []string{"acs-mirror.azureedge.net"}, Ports: https443, Note: "kubenet, Azure CNI and other node binaries"},
			},
		},
	},
	"aks-ubuntu-updates": {
		Name:    "aks-ubuntu-updates",
		Summary: "optional: Ubuntu security patches for Linux nodes between node image upgrades",
		Source:  aksEgressSource + "#optional-recommended-fqdn--application-rules-for-aks-clusters",
		Revised: builtinRevised,
		Clouds: sameInEveryCloud([]BuiltinRule{
			{Name: "archive", Domains: []string{"security.ubuntu.com", "azure.archive.ubuntu.com", "changelogs.ubuntu.com"}, Ports: []string{"80"},
				Note: "security patches and updates (plain HTTP)"},
			{Name: "snapshot", Domains: []string{"snapshot.ubuntu.com"}, Ports: https443, Note: "Ubuntu snapshot service"},
		}),
	},
	"aks-gpu": {
		Name:    "aks-gpu",
		Summary: "GPU node pools: driver installation",
		Source:  aksEgressSource + "#gpu-enabled-aks-clusters-required-fqdn--application-rules",
		Revised: builtinRevised,
		Clouds: sameInEveryCloud([]BuiltinRule{
			{Name: "drivers", Domains: []string{"nvidia.github.io", "us.download.nvidia.com", "download.docker.com"}, Ports: https443,
				Note: "driver installation and operation on GPU nodes"},
		}),
	},
	"aks-windows": {
		Name:    "aks-windows",
		Summary: "Windows Server node pools: Windows binaries",
		Source:  aksEgressSource + "#windows-server-based-node-pools-required-fqdn--application-rules",
		Revised: builtinRevised,
		Clouds: sameInEveryCloud([]BuiltinRule{
			{Name: "binaries", Domains: []string{"onegetcdn.azureedge.net", "go.microsoft.com"}, Ports: https443, Note: "Windows-related binaries"},
			{Name: "updates", Domains: []string{"*.mp.microsoft.com", "www.msftconnecttest.com", "ctldl.windowsupdate.com"}, Ports: []string{"80"},
				Note: "Windows-related binaries (plain HTTP)"},
		}),
	},
	"defender": {
		Name:    "defender",
		Summary: "Microsoft Defender for Containers",
		Source:  aksEgressSource + "#microsoft-defender-for-containers",
		Revised: builtinRevised,
		Clouds: map[string][]BuiltinRule{
			CloudPublic: defenderRules("login.microsoftonline.com", "azure.com"),
			CloudUSGov:  defenderRules("login.microsoftonline.us", "azure.us"),
			CloudChina:  defenderRules("login.microsoftonline.cn", "azure.cn"),
		},
	},
	"keyvault-csi": {
		Name:    "keyvault-csi",
		Summary: "Secrets Store CSI driver talking to Azure Key Vault",
		Source:  aksEgressSource + "#csi-secret-store",
		Revised: builtinRevised,
		Clouds: map[string][]BuiltinRule{
			// The page writes "vault.azure.net"; vaults live below it
			// (NAME.vault.azure.net), so the Squid form covers both.
			CloudPublic: {{Name: "vault", Domains: []string{".vault.azure.net"}, Ports: https443, Note: "CSI Secret Store pods to Azure Key Vault"}},
			CloudUSGov:  {{Name: "vault", Domains: []string{"*.vault.usgovcloudapi.net"}, Ports: https443, Note: "CSI Secret Store pods to Azure Key Vault"}},
		},
	},
	"azure-monitor": {
		Name:    "azure-monitor",
		Summary: "Azure Monitor for containers (Container Insights, managed Prometheus)",
		Source:  aksEgressSource + "#azure-monitor-for-containers",
		Revised: builtinRevised,
		Clouds: map[string][]BuiltinRule{
			CloudPublic: {
				{Name: "telemetry", Domains: []string{"dc.services.visualstudio.com"}, Ports: https443, Note: "agent telemetry"},
				{Name: "log-analytics", Domains: []string{"*.ods.opinsights.azure.com", "*.oms.opinsights.azure.com"}, Ports: https443,
					Note: "Log Analytics ingestion and authentication"},
				{Name: "metrics", Domains: []string{"*.monitoring.azure.com"}, Ports: https443, Note: "metrics to Azure Monitor"},
				{Name: "prometheus", Domains: []string{"<region>.ingest.monitor.azure.com"}, Ports: https443, Note: "managed Prometheus ingestion"},
				{Name: "dcr", Domains: []string{"<region>.handler.control.monitor.azure.com"}, Ports: https443, Note: "data collection rules for the cluster"},
			},
			CloudChina: {
				{Name: "telemetry", Domains: []string{"dc.services.visualstudio.cn"}, Ports: https443, Note: "agent telemetry"},
				{Name: "log-analytics", Domains: []string{"*.ods.opinsights.azure.cn", "*.oms.opinsights.azure.cn"}, Ports: https443,
					Note: "Log Analytics ingestion and authentication"},
				{Name: "control", Domains: []string{"global.handler.control.monitor.azure.cn"}, Ports: https443, Note: "control service"},
				{Name: "dcr", Domains: []string{"<region>.handler.control.monitor.azure.cn"}, Ports: https443, Note: "data collection rules for the cluster"},
			},
			CloudUSGov: {
				{Name: "telemetry", Domains: []string{"dc.services.visualstudio.us"}, Ports: https443, Note: "agent telemetry"},
				{Name: "log-analytics", Domains: []string{"*.ods.opinsights.azure.us", "*.oms.opinsights.azure.us"}, Ports: https443,
					Note: "Log Analytics ingestion and authentication"},
				{Name: "control", Domains: []string{"global.handler.control.monitor.azure.us"}, Ports: https443, Note: "control service"},
				{Name: "dcr", Domains: []string{"<region>.handler.control.monitor.azure.us"}, Ports: https443, Note: "data collection rules for the cluster"},
			},
		},
	},
}

func sameInEveryCloud(rules []BuiltinRule) map[string][]BuiltinRule {
	return map[string][]BuiltinRule{CloudPublic: rules, CloudChina: rules, CloudUSGov: rules}
}

func defenderRules(login, suffix string) []BuiltinRule {
	return []BuiltinRule{
		{Name: "entra", Domains: []string{login}, Ports: https443, Note: "Active Directory authentication"},
		{Name: "events", Domains: []string{"*.ods.opinsights." + suffix}, Ports: https443, Note: "security events upload"},
		{Name: "workspace", Domains: []string{"*.oms.opinsights." + suffix}, Ports: https443, Note: "Log Analytics workspace authentication"},
	}
}

// neverInspect is spliced for every tenant in mode bump unless its own
// bump list names the host with a pattern other than "*": these clients
// fail under interception whatever CA they are given.
var neverInspect = []struct {
	Domain string // may contain regionToken; without a region the whole zone below it
	Why    string
}{
	{"*.hcp.<region>.azmk8s.io", "AKS API server tunnel (konnectivity) relies on ALPN; rewriting it breaks nodes (" + aksEgressSource + ")"},
	{"*.tun.<region>.cx.prod.service.azk8s.cn", "AKS API server tunnel, Azure China"},
	{"*.hcp.<region>.cx.prod.service.azk8s.cn", "AKS API server, Azure China"},
	{"*.hcp.<region>.cx.aks.containerservice.azure.us", "AKS API server, Azure US Government"},
	{".update.microsoft.com", "Windows Update pins its service certificates; Microsoft documents SSL inspection as unsupported"},
	{".windowsupdate.com", "Windows Update content and certificate trust lists"},
	{".delivery.mp.microsoft.com", "Windows Update delivery optimisation"},
	{".endpoint.security.microsoft.com", "Microsoft Defender for Endpoint: SSL inspection is unsupported by the vendor"},
	{".push.apple.com", "Apple Push Notification service pins its certificates"},
	{".signal.org", "Signal pins its own certificate authority"},
	{".whatsapp.net", "WhatsApp pins its certificates"},
	{".dropbox.com", "Dropbox desktop clients pin their certificates"},
}
