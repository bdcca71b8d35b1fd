package deploycheck

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const (
	annPLSName          = annPrefix + "azure-pls-name"
	annPLSResourceGroup = annPrefix + "azure-pls-resource-group"
)

// resourceGroupName is Azure's rule for resource group names
// (Microsoft.Resources/resourcegroups in "Naming rules and restrictions for
// Azure resources", MicrosoftDocs azure-docs resource-name-rules.md): 1 to
// 90 characters, letters, digits, underscores, hyphens, periods and
// parentheses, not ending in a period. Azure also admits other Unicode
// letters; an ASCII-only name is what the templates and az scripts here
// expect, so anything else is flagged.
var resourceGroupName = regexp.MustCompile(`^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$`)

// networkResourceName is the rule the same page gives every named
// Microsoft.Network resource (loadBalancers, privateEndpoints, ...): 1 to
// 80 characters, alphanumerics, underscores, periods and hyphens, starting
// with an alphanumeric and ending with an alphanumeric or underscore. The
// page lists privateLinkServices as "Not specified", so this is the
// closest documented rule, not a guarantee that Azure accepts the name.
var networkResourceName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$`)

// checkPLSLifecycle: the cloud provider creates the PLS with the load
// balancer frontend of the Service and deletes it with it. Without
// azure-pls-name it is called pls-<frontend name>, a name derived from the
// Service's UID, and without azure-pls-resource-group it lands in the
// cluster's node resource group (MC_…), which AKS owns. Both matter when
// the PLS is recreated (Service deleted, cluster rebuilt): the alias and
// every consumer's LinkID change, and whoever approves the new connections
// needs rights where the PLS lives. So every Service that creates a PLS
// names it and puts it in a team-owned resource group.
func checkPLSLifecycle(s *Set) error {
	var errs []error
	for _, svc := range typedOf[*corev1.Service](s) {
		if svc.Annotations[annPLSCreate] != "true" {
			continue
		}
		errs = append(errs, plsLifecycleErrors(svc)...)
	}
	return errors.Join(errs...)
}

func plsLifecycleErrors(svc *corev1.Service) []error {
	var errs []error
	name, hasName := svc.Annotations[annPLSName]
	switch {
	case !hasName:
		errs = append(errs, fmt.Errorf("service %s creates a PLS without %s: it gets a name derived from the load balancer frontend, so after a recreation (Service deleted, cluster rebuilt; alias and every consumer's LinkID change) scripts and runbooks cannot find it by name; set a stable name", svc.Name, annPLSName))
	case !networkResourceName.MatchString(name):
		errs = append(errs, fmt.Errorf("service %s: %s %q is not a valid Azure network resource name (1 to 80 letters, digits, underscores, periods, hyphens; starts with a letter or digit, ends with one or an underscore)", svc.Name, annPLSName, name))
	}
	rg, hasRG := svc.Annotations[annPLSResourceGroup]
	switch {
	case !hasRG:
		errs = append(errs, fmt.Errorf("service %s creates a PLS without %s: it lands in the node resource group (MC_…), which AKS owns, so connection approvals and locks run against a group the team does not control, and a cluster rebuild deletes it with the alias and every consumer's LinkID; set a resource group your team owns (docs/deploy.md, \"The PLS lifecycle\")", svc.Name, annPLSResourceGroup))
	case !resourceGroupName.MatchString(rg):
		errs = append(errs, fmt.Errorf("service %s: %s %q is not a valid resource group name (1 to 90 letters, digits, underscores, hyphens, periods, parentheses; not ending in a period)", svc.Name, annPLSResourceGroup, rg))
	case strings.HasPrefix(strings.ToUpper(rg), "MC_"):
		errs = append(errs, fmt.Errorf("service %s: %s %q looks like AKS's node resource group (MC_…); name a resource group your team owns, which outlives the cluster", svc.Name, annPLSResourceGroup, rg))
	}
	return errs
}
