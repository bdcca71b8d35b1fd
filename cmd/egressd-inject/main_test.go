package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestMissingConfigIsAUsageError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), "-config FILE is required") {
		t.Fatalf("stderr %q", errb.String())
	}
}

func TestHelpExitsZeroWithAnExample(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "example:") {
		t.Fatalf("help %q", errb.String())
	}
}

func TestUnreadableConfigIsARuntimeFailure(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-config", t.TempDir() + "/missing.yaml"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), `"level":"error"`) {
		t.Fatalf("failure is not a JSON log line: %q", errb.String())
	}
}
