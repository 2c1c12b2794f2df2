package projects

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateApp(t *testing.T) {
	tests := []struct {
		domain string
		reason string // "" = valid
	}{
		{"matrix.example.com", ""},
		{"a.b", ""},
		{"localhost", ""},
		{"x-1.example.com", ""},
		{"0.example.com", ""},
		{strings.Repeat("a", 63) + ".com", ""},
		{"", "empty"},
		{".", "relative path component"},
		{"..", "relative path component"},
		{"a/b.com", "slash"},
		{`a\b.com`, "slash"},
		{"a\x00b.com", "NUL"},
		{"Matrix.example.com", "upper-case"},
		{"matrix..example.com", "empty label"},
		{".example.com", "empty label"},
		{"example.com.", "empty label"},
		{"-a.example.com", "starts or ends with '-'"},
		{"a-.example.com", "starts or ends with '-'"},
		{"a_b.example.com", "'_'"},
		{"a b.com", "' '"},
		{"ünicode.com", "not allowed"},
		{strings.Repeat("a", 64) + ".com", "longer than 63"},
		{strings.Repeat("abcdefghi.", 26) + "com", "longer than 253"},
	}
	for _, tt := range tests {
		err := ValidateApp(tt.domain)
		if tt.reason == "" {
			if err != nil {
				t.Errorf("ValidateApp(%q) = %v, want valid", tt.domain, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("ValidateApp(%q) = %v, want an ErrInvalidName saying %q", tt.domain, err, tt.reason)
		}
	}
}

func TestValidateProjectAndEnv(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"coop", true},
		{"coop-cloud", true},
		{"co_op", true},
		{"swarm.example.com", true},
		{"2026", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-dash", false},
		{"a..b", false},
		{"a/b", false},
		{"a\x00", false},
		{"Prod", false},
		{"a b", false},
		{strings.Repeat("p", 64), false},
	}
	for _, tt := range tests {
		for field, validate := range map[string]func(string) error{"project": ValidateProject, "env": ValidateEnv} {
			err := validate(tt.name)
			if (err == nil) != tt.valid {
				t.Errorf("validate %s %q = %v, want valid=%v", field, tt.name, err, tt.valid)
			}
			if err != nil && !strings.Contains(err.Error(), "invalid "+field) {
				t.Errorf("validate %s %q: error %q does not name the field", field, tt.name, err)
			}
		}
	}
}

func TestRecordPathRoundTrip(t *testing.T) {
	a := Address{Project: "coop", Env: "prod", App: "matrix.example.com"}
	at := time.Date(2026, 11, 30, 23, 30, 0, 0, time.FixedZone("east", 3600*5))
	p := RecordPath(a, "01JD5K4Z3N8E7QW2XG6H9T0ABC", at)
	if want := "projects/coop/prod/matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb"; p != want {
		t.Fatalf("RecordPath = %q, want %q (months are UTC)", p, want)
	}
	r, err := ParseRecordPath(p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Address != a || r.Month != "2026-11" || r.ID != "01JD5K4Z3N8E7QW2XG6H9T0ABC" {
		t.Fatalf("ParseRecordPath = %+v", r)
	}
}

func TestParseRecordPathRejects(t *testing.T) {
	for _, p := range []string{
		"meta.yaml",
		"projects/coop/prod/matrix.example.com/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"projects/coop/prod/matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.txt",
		"projects/coop/prod/matrix.example.com/2026-13/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"projects/coop/prod/matrix.example.com/26-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"projects/coop/prod/Matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"projects/coop/../matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"projects/coop/prod/matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0AB.pb",
		"projects/coop/prod/matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABU.pb",
		"projects/coop/prod/matrix.example.com/2026-11/81JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
		"other/coop/prod/matrix.example.com/2026-11/01JD5K4Z3N8E7QW2XG6H9T0ABC.pb",
	} {
		if _, err := ParseRecordPath(p); err == nil || !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseRecordPath(%q) = %v, want an error", p, err)
		}
	}
}

// A new app, env or project is refused a name Windows keeps for a device,
// with or without a dot and more after it; names that only begin alike
// are fine.
func TestPortableRefusesWindowsDeviceNames(t *testing.T) {
	tests := []struct {
		addr Address
		bad  string
	}{
		{Address{Project: "coop", Env: "prod", App: "con.example.com"}, `"con" is a name Windows keeps`},
		{Address{Project: "coop", Env: "nul", App: "a.example.com"}, `"nul" is a name Windows keeps`},
		{Address{Project: "lpt1", Env: "prod", App: "a.example.com"}, `"lpt1"`},
		{Address{Project: "coop", Env: "prod", App: "com9.example.org"}, `"com9"`},
		{Address{Project: "coop", Env: "prod", App: "console.example.com"}, ""},
		{Address{Project: "coop", Env: "prod", App: "a.con.example.com"}, ""},
		{Address{Project: "com10", Env: "auxiliary", App: "a.example.com"}, ""},
	}
	for _, tt := range tests {
		err := tt.addr.Portable()
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("%v: %v", tt.addr, err)
		case tt.bad != "" && (err == nil || !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), tt.bad)):
			t.Errorf("%v: got %v, want an invalid name saying %s", tt.addr, err, tt.bad)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref  string
		want Address
		bad  string
	}{
		{ref: "cloud.example.com", want: Address{App: "cloud.example.com"}},
		{ref: "coop/prod/cloud.example.com", want: Address{Project: "coop", Env: "prod", App: "cloud.example.com"}},
		{ref: "*/prod/cloud.example.com", want: Address{Env: "prod", App: "cloud.example.com"}},
		{ref: "coop//cloud.example.com", want: Address{Project: "coop", App: "cloud.example.com"}},
		{ref: "coop/cloud.example.com", bad: "neither a domain nor project/env/domain"},
		{ref: "a/b/c/cloud.example.com", bad: "neither a domain nor project/env/domain"},
		{ref: "../prod/cloud.example.com", bad: `invalid app "../prod/cloud.example.com": as project/env/domain, its project ".."`},
		{ref: "../../etc", bad: `invalid app "../../etc": as project/env/domain, its project ".."`},
		{ref: "coop/prod/Cloud.example.com", bad: "upper-case"},
		{ref: "", bad: "invalid app"},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.ref)
		switch {
		case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad) || !errors.Is(err, ErrInvalidName)):
			t.Errorf("ParseRef(%q) = %v, %v; want an invalid name error saying %q", tt.ref, got, err, tt.bad)
		case tt.bad == "" && (err != nil || got != tt.want):
			t.Errorf("ParseRef(%q) = %v, %v; want %v", tt.ref, got, err, tt.want)
		}
		if tt.bad == "" {
			if back, _ := ParseRef(Ref(got.Project, got.Env, got.App)); back != got {
				t.Errorf("Ref of %v reads back as %v", got, back)
			}
		}
	}
}

func TestRecipeLogPaths(t *testing.T) {
	at := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	id := "01KBGZ3M6Q0000000000000000"
	for _, tc := range []struct {
		a                 Address
		path              string
		releases, channel bool
	}{
		{ReleasesOf("nextcloud"), "projects/_recipes/nextcloud/_releases/2026-12/" + id + ".pb", true, false},
		{ChannelOf("matrix-synapse", "stable"), "projects/_recipes/matrix-synapse/stable/2026-12/" + id + ".pb", false, true},
	} {
		if err := tc.a.Validate(); err != nil {
			t.Fatalf("%v: %v", tc.a, err)
		}
		if got := RecordPath(tc.a, id, at); got != tc.path {
			t.Fatalf("RecordPath(%v) = %s, want %s", tc.a, got, tc.path)
		}
		r, err := ParseRecordPath(tc.path)
		if err != nil || r.Address != tc.a || r.ID != id {
			t.Fatalf("ParseRecordPath(%s) = %+v, %v", tc.path, r, err)
		}
		if !r.Address.IsRecipe() || r.Address.IsReleases() != tc.releases || r.Address.IsChannel() != tc.channel {
			t.Fatalf("%v: IsRecipe/IsReleases/IsChannel wrong", r.Address)
		}
	}
}

func TestRecipeLogPathsRefused(t *testing.T) {
	for _, p := range []string{
		"projects/_recipes/Nextcloud/stable/2026-12/01KBGZ3M6Q0000000000000000.pb",  // upper case recipe
		"projects/_recipes/nextcloud/_stable/2026-12/01KBGZ3M6Q0000000000000000.pb", // reserved-looking channel
		"projects/_recipes/nextcloud/sta.ble/2026-12/01KBGZ3M6Q0000000000000000.pb", // dot in a channel
		"projects/_recipes/-x/stable/2026-12/01KBGZ3M6Q0000000000000000.pb",
		"projects/_recipes/nextcloud/2026-12/01KBGZ3M6Q0000000000000000.pb", // no log
		"projects/_other/nextcloud/stable/2026-12/01KBGZ3M6Q0000000000000000.pb",
	} {
		if _, err := ParseRecordPath(p); err == nil {
			t.Errorf("ParseRecordPath(%s) accepted it", p)
		}
	}
	if _, err := ParseEnvPath("projects/_recipes/nextcloud/stable/stable.env"); err == nil {
		t.Error("a recipe log's env file was accepted")
	}
}

func TestParseChannelRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ChannelRef
		ok   bool
	}{
		{"nextcloud/stable", ChannelRef{"nextcloud", "stable"}, true},
		{"matrix-synapse/staging_2", ChannelRef{"matrix-synapse", "staging_2"}, true},
		{"nextcloud", ChannelRef{}, false},
		{"nextcloud/", ChannelRef{}, false},
		{"/stable", ChannelRef{}, false},
		{"nextcloud/stable/x", ChannelRef{}, false},
		{"nextcloud/_releases", ChannelRef{}, false},
		{"Nextcloud/stable", ChannelRef{}, false},
		{"nextcloud/st\x1bable", ChannelRef{}, false},
	} {
		got, err := ParseChannelRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseChannelRef(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ParseChannelRef(%q): %v does not match ErrInvalidName", tc.in, err)
		}
	}
}
