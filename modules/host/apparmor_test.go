package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// fakeParser writes an apparmor_parser stand-in that records its
// arguments and the profile it is given, and exits with code.
func fakeParser(t *testing.T, code int) (parser, args, profile string) {
	t.Helper()
	dir := t.TempDir()
	parser = filepath.Join(dir, "apparmor_parser")
	args = filepath.Join(dir, "args")
	profile = filepath.Join(dir, "profile")
	script := "#!/bin/sh\necho \"$@\" > " + args + "\ncat > " + profile + "\n"
	if code != 0 {
		script += "echo 'profile rejected' >&2\nexit 1\n"
	}
	if err := os.WriteFile(parser, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return parser, args, profile
}

func TestLoadAppArmor(t *testing.T) {
	tests := []struct {
		name        string
		giveEnabled *string // sysfs content; nil for no file
		giveParser  string  // "ok", "fail" or "missing"
		wantProfile string
		wantSkip    string
		wantErr     string
	}{
		{name: "no apparmor module", giveParser: "ok", wantSkip: "AppArmor is not enabled in the kernel"},
		{name: "disabled", giveEnabled: ptr("N\n"), giveParser: "ok", wantSkip: "AppArmor is disabled in the kernel"},
		{name: "no parser", giveEnabled: ptr("Y\n"), giveParser: "missing", wantSkip: "is not installed"},
		{name: "enabled", giveEnabled: ptr("Y\n"), giveParser: "ok", wantProfile: "wharfd-default"},
		{name: "parser fails", giveEnabled: ptr("Y\n"), giveParser: "fail", wantErr: "profile rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := t.TempDir()
			paths := Paths{AppArmorEnabled: filepath.Join(sys, "enabled"), AppArmorParser: filepath.Join(sys, "no-parser")}
			if tt.giveEnabled != nil {
				os.WriteFile(paths.AppArmorEnabled, []byte(*tt.giveEnabled), 0o444)
			}
			var args, profile string
			switch tt.giveParser {
			case "ok":
				paths.AppArmorParser, args, profile = fakeParser(t, 0)
			case "fail":
				paths.AppArmorParser, _, _ = fakeParser(t, 1)
			}
			got, err := LoadAppArmor(paths, zap.NewNop())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Profile != tt.wantProfile || !strings.Contains(got.SkipReason(), tt.wantSkip) || (tt.wantSkip == "") != (got.SkipReason() == "") {
				t.Fatalf("got profile %q skip %q, want %q skip %q", got.Profile, got.SkipReason(), tt.wantProfile, tt.wantSkip)
			}
			loadedArgs, argsErr := os.ReadFile(args)
			if tt.wantProfile == "" {
				if argsErr == nil {
					t.Errorf("parser ran although AppArmor is skipped")
				}
				return
			}
			if strings.TrimSpace(string(loadedArgs)) != "-Kr" {
				t.Errorf("parser arguments %q, want -Kr", loadedArgs)
			}
			text, _ := os.ReadFile(profile)
			if !strings.Contains(string(text), "profile wharfd-default flags=(attach_disconnected,mediate_deleted) {") ||
				!strings.Contains(string(text), "deny mount,") ||
				!strings.Contains(string(text), "peer=wharfd-default") {
				t.Errorf("parser was given an unexpected profile:\n%s", text)
			}
		})
	}
}

func TestAppArmorProfileParses(t *testing.T) {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skip("apparmor_parser not installed: profile syntax not checked")
	}
	dir := t.TempDir()
	profile, err := AppArmorProfile("wharfd-test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "profile")
	os.WriteFile(path, profile, 0o644)
	// -Q: parse only, load nothing; -K: no cache.
	if out, err := exec.Command(parser, "-QK", path).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser rejects the profile: %v\n%s", err, out)
	}
}
