package deploycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Microsoft does not support a static Private Endpoint IP for a
// customer-owned Private Link Service: a template that pins the address by
// default, or drops the request-message limit, fails.
func TestIaCThatPinsTheEndpointIPByDefaultFails(t *testing.T) {
	s := render(t, dirWorkload)
	ep, _, err := workloadEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	files := WorkloadIaC(dirWorkload, ep)
	if err := CheckIaC(files); err != nil {
		t.Fatalf("shipped templates fail: %v", err)
	}
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"bicep requires a static IP", "bicep/private-endpoint.bicep", "param privateIpAddress string = ''", "param privateIpAddress string", "param privateIpAddress string = ''"},
		{"bicep always pins the IP", "bicep/private-endpoint.bicep", "ipConfigurations: empty(privateIpAddress) ? [] : [", "ipConfigurations: [", "ipConfigurations: empty"},
		{"bicep without the 140-character limit", "bicep/private-endpoint.bicep", "@maxLength(140)\n", "", "@maxLength"},
		{"bicepparam sets the static IP", "bicep/private-endpoint.bicepparam", "// param privateIpAddress", "param privateIpAddress", "// param privateIpAddress"},
		{"terraform defaults to a static IP", "terraform/private-endpoint.tf", "default     = null", `default     = "10.2.128.100"`, "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var broken []IaCFile
			for _, f := range files {
				if !strings.HasSuffix(filepath.ToSlash(f.Path), tc.file) {
					continue
				}
				b, err := os.ReadFile(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), tc.old) {
					t.Fatalf("%s has no %q", tc.file, tc.old)
				}
				p := filepath.Join(t.TempDir(), filepath.Base(f.Path))
				if err := os.WriteFile(p, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o600); err != nil {
					t.Fatal(err)
				}
				broken = append(broken, IaCFile{Path: p, Wants: f.Wants})
			}
			err := CheckIaC(broken)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
