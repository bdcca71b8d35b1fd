package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "512", want: 512},
		{in: "512B", want: 512},
		{in: "64KiB", want: 64 << 10},
		{in: "16MiB", want: 16 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "17GiB", wantErr: true},
		{in: "-1MiB", wantErr: true},
		{in: "1MB", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSize(tc.in)
			if tc.wantErr {
				want := `--size "` + tc.in + `": want a non-negative integer with an optional B, KiB, MiB or GiB, at most 16GiB`
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v, want %q", err, want)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
