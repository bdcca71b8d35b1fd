package acl

import (
	"os"
	"strings"
	"testing"
)

// replayCandidate is the "new" policy: pypi is now allowed, GitHub content
// and the lab's metadata access are not, the lab leaves report-only, and
// LinkID 77 is a new consumer.
func replayCandidate(t *testing.T) *Policy {
	return compileYAML(t, `
tenants:
  - name: team-a
    link_ids: [1001]
    nat_cidrs: [10.0.1.0/24]
    rules:
      - {name: github, domains: [.github.com]}
      - {name: pypi, domains: [pypi.org, files.pythonhosted.org]}
  - name: lab
    source_cidrs: [10.9.0.0/16]
  - name: team-u
    users: [{name: u, bcrypt: "`+hashOf(t, "pw")+`"}]
    require_auth: true
    rules:
      - {name: github, domains: [.github.com]}
  - name: newcomer
    link_ids: [77]
    default: allow
`)
}

func TestReplay(t *testing.T) {
	p := replayCandidate(t)
	log, err := os.Open("testdata/access.log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var out strings.Builder
	if _, err := Replay(p, log, &out); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	want := `replayed 12 access entries: 5 changed, 1 skipped (auth, no credentials in log), 1 skipped (dial-time ssrf, depends on DNS), 1 skipped (not a policy decision), 1 unparsable; 2 other lines skipped (not access entries)

allowed -> denied:
  tenant lab, rule default: 1
    GET http://169.254.169.254:80/latest (was allow by metadata)
  tenant team-a, rule default: 2
    CONNECT https://objects.githubusercontent.com:443 (was allow by github-content)

denied -> allowed:
  tenant newcomer, rule default: 1
    CONNECT https://api.github.com:443 (was deny by no-tenant)
  tenant team-a, rule pypi: 1
    CONNECT https://pypi.org:443 (was deny by default)
`
	if got := out.String(); got != want {
		t.Fatalf("Replay output:\n%s\nwant:\n%s", got, want)
	}
}

func TestReplayNoChangesAndErrors(t *testing.T) {
	p := replayCandidate(t)
	tests := []struct {
		name    string
		log     string
		want    string
		wantErr string
	}{
		{
			name: "unchanged",
			log:  `{"tenant":"team-a","link_id":1001,"client":"10.2.0.5:1","lb":"10.0.1.4:1","method":"CONNECT","scheme":"https","host":"api.github.com","port":443,"decision":"allow","rule":"github"}` + "\n",
			want: "replayed 1 access entries: 0 changed, 0 skipped (auth, no credentials in log), 0 skipped (dial-time ssrf, depends on DNS), 0 skipped (not a policy decision), 0 unparsable; 0 other lines skipped (not access entries)\n",
		},
		{
			name: "empty log",
			log:  "",
			want: "replayed 0 access entries: 0 changed, 0 skipped (auth, no credentials in log), 0 skipped (dial-time ssrf, depends on DNS), 0 skipped (not a policy decision), 0 unparsable; 0 other lines skipped (not access entries)\n",
		},
		{
			name:    "line too long",
			log:     "{" + strings.Repeat("x", maxLogLine+1) + "\n",
			wantErr: "replay: read log: bufio.Scanner: token too long",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			_, err := Replay(p, strings.NewReader(tc.log), &out)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Fatalf("got %q, want %q", out.String(), tc.want)
			}
		})
	}
}
