package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// volumeCLI runs the docker CLI against the daemon whose paths are in dir
// and returns its output and exit code (0 on success).
func volumeCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runDocker(t, dir, nil, args...)
}

// ok runs the CLI and fails the test unless it succeeds; it returns the
// trimmed output.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := volumeCLI(t, dir, args...)
	if code != 0 {
		t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// startVolumeDaemon starts the daemon on dir and waits for its API.
func startVolumeDaemon(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd, log := startDaemon(t, dir)
	waitLine(t, log, "api serving")
	go func() {
		for log.Scan() {
		}
	}()
	return cmd
}

// stopDaemon stops the daemon with SIGTERM and waits for it to exit.
func stopDaemon(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
}

func TestVolumeCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon refuses to start otherwise")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	d := startVolumeDaemon(t, dir)

	if got := ok(t, dir, "volume", "create", "data"); got != "data" {
		t.Errorf("create printed %q", got)
	}
	ok(t, dir, "volume", "create", "--label", "app=web", "--label", "tier=front", "web")
	ok(t, dir, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "tmp")
	anon := ok(t, dir, "volume", "create")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("anonymous volume name %q", anon)
	}

	lines := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"all", []string{"volume", "ls", "-q"}, anon + " data tmp web"},
		{"label", []string{"volume", "ls", "-q", "--filter", "label=app=web"}, "web"},
		{"label key", []string{"volume", "ls", "-q", "--filter", "label=tier"}, "web"},
		{"name", []string{"volume", "ls", "-q", "--filter", "name=at", "--filter", "name=mp"}, "data tmp"},
		{"dangling", []string{"volume", "ls", "-q", "--filter", "dangling=false"}, ""},
		{"driver", []string{"volume", "ls", "-q", "--filter", "driver=local", "--filter", "name=^w"}, "web"},
		{"inspect", []string{"volume", "inspect", "--format", "{{.Driver}} {{.Scope}} {{.Labels.app}} {{.Mountpoint}}", "web"},
			"local local web " + filepath.Join(dir, "root", "volumes", "web", "_data")},
		{"options", []string{"volume", "inspect", "--format", "{{.Options.type}} {{.Options.o}}", "tmp"}, "tmpfs size=1m"},
		{"anonymous label", []string{"volume", "inspect", "--format", "{{json .Labels}}", anon}, `{"com.docker.volume.anonymous":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lines(ok(t, dir, tt.give...)); got != tt.want {
				t.Errorf("docker %v = %q, want %q", tt.give, got, tt.want)
			}
		})
	}

	errs := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{"short name", []string{"volume", "create", "a"},
			"Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters"},
		{"bad name", []string{"volume", "create", "a:b"}, `"a:b" includes invalid characters for a local volume name`},
		{"unknown driver", []string{"volume", "create", "-d", "nfs", "x1"},
			`Error response from daemon: create x1: error looking up volume plugin nfs: plugin "nfs" not found`},
		{"unknown option", []string{"volume", "create", "-o", "foo=bar", "x1"}, `Error response from daemon: create x1: invalid option: "foo"`},
		{"missing option", []string{"volume", "create", "-o", "type=tmpfs", "x1"}, `create x1: missing required option: "device"`},
		{"rm missing", []string{"volume", "rm", "nosuch"}, "Error response from daemon: get nosuch: no such volume"},
		{"bad filter", []string{"volume", "ls", "--filter", "until=1h"}, "invalid filter 'until'"},
		{"bad prune filter", []string{"volume", "prune", "-f", "--filter", "name=x"}, "invalid filter 'name'"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := volumeCLI(t, dir, tt.give...)
			if code == 0 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("docker %v: exit %d, stderr %q; want %q", tt.give, code, stderr, tt.wantErr)
			}
		})
	}
	if got := lines(ok(t, dir, "volume", "ls", "-q")); got != anon+" data tmp web" {
		t.Errorf("failed commands changed the volumes: %q", got)
	}
	ok(t, dir, "volume", "rm", "-f", "nosuch")

	// /system/df counts the volumes without mount options.
	if got := ok(t, dir, "system", "df", "--format", "{{.Type}} {{.TotalCount}}"); !strings.Contains(got, "Local Volumes 3") {
		t.Errorf("system df:\n%s", got)
	}

	// Prune: anonymous volumes only, then named ones with -a and a label.
	dataPath := filepath.Join(dir, "root", "volumes", "data", "_data")
	if err := os.WriteFile(filepath.Join(dataPath, "f"), []byte("survives"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ok(t, dir, "volume", "prune", "-f"); !strings.Contains(got, anon) || strings.Contains(got, "data") {
		t.Errorf("prune:\n%s", got)
	}
	if got := ok(t, dir, "volume", "prune", "-f", "-a", "--filter", "label=app"); !strings.Contains(got, "web") || strings.Contains(got, "data") {
		t.Errorf("prune -a --filter label=app:\n%s", got)
	}
	created := ok(t, dir, "volume", "inspect", "--format", "{{.CreatedAt}}", "data")

	// Volumes and their data survive a restart.
	stopDaemon(t, d)
	d = startVolumeDaemon(t, dir)
	if got := lines(ok(t, dir, "volume", "ls", "-q")); got != "data tmp" {
		t.Errorf("volumes after restart: %q", got)
	}
	if got := ok(t, dir, "volume", "inspect", "--format", "{{.CreatedAt}}", "data"); got != created {
		t.Errorf("CreatedAt after restart %q, want %q", got, created)
	}
	if b, err := os.ReadFile(filepath.Join(dataPath, "f")); string(b) != "survives" {
		t.Errorf("data after restart: %q, %v", b, err)
	}
	ok(t, dir, "volume", "rm", "data", "tmp")
	if got := ok(t, dir, "volume", "ls", "-q"); got != "" {
		t.Errorf("volumes after rm: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "root", "volumes")); len(entries) != 0 {
		t.Errorf("volumes directory after rm holds %d entries", len(entries))
	}
	stopDaemon(t, d)
}
