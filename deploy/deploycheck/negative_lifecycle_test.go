package deploycheck

import (
	"strings"
	"testing"
)

func TestPLSWithoutStableNameOrOwnResourceGroupFails(t *testing.T) {
	aks := render(t, dirAKS)
	for _, tc := range []struct {
		name string
		edit func(ann map[string]string)
		want string
	}{
		{name: "no PLS name", want: "creates a PLS without service.beta.kubernetes.io/azure-pls-name",
			edit: func(a map[string]string) { delete(a, annPLSName) }},
		{name: "no PLS resource group", want: "lands in the node resource group",
			edit: func(a map[string]string) { delete(a, annPLSResourceGroup) }},
		{name: "resource group ending in a period", want: `"rg-egressd." is not a valid resource group name`,
			edit: func(a map[string]string) { a[annPLSResourceGroup] = "rg-egressd." }},
		{name: "resource group with a space", want: "is not a valid resource group name",
			edit: func(a map[string]string) { a[annPLSResourceGroup] = "rg egressd" }},
		{name: "resource group of 91 characters", want: "is not a valid resource group name",
			edit: func(a map[string]string) { a[annPLSResourceGroup] = strings.Repeat("r", 91) }},
		{name: "empty resource group", want: "is not a valid resource group name",
			edit: func(a map[string]string) { a[annPLSResourceGroup] = "" }},
		{name: "the node resource group", want: "looks like AKS's node resource group",
			edit: func(a map[string]string) { a[annPLSResourceGroup] = "MC_rg-aks_aks-corp_westeurope" }},
		{name: "PLS name ending in a hyphen", want: `"pls-egressd-" is not a valid Azure network resource name`,
			edit: func(a map[string]string) { a[annPLSName] = "pls-egressd-" }},
		{name: "PLS name of 81 characters", want: "is not a valid Azure network resource name",
			edit: func(a map[string]string) { a[annPLSName] = strings.Repeat("p", 81) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkPLSLifecycle(aks); err != nil {
				t.Fatalf("shipped overlay fails: %v", err)
			}
			s := clone(t, aks)
			tc.edit(pls(t, s).Annotations)
			err := checkPLSLifecycle(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// The longest and most varied names Azure documents as valid pass.
func TestPLSLifecycleAcceptsValidAzureNames(t *testing.T) {
	s := clone(t, render(t, dirAKS))
	a := pls(t, s).Annotations
	for _, rg := range []string{"r", "rg_egressd-(pls).prod", strings.Repeat("r", 90)} {
		for _, name := range []string{"p", "pls_", "pls.egressd-prod", strings.Repeat("p", 80)} {
			a[annPLSResourceGroup], a[annPLSName] = rg, name
			if err := checkPLSLifecycle(s); err != nil {
				t.Errorf("rg %q name %q: %v", rg, name, err)
			}
		}
	}
}
