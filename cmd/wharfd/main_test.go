package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// wharfdBin is the daemon binary, built once: the container init is the
// daemon re-executed, so tests run the real binary, never the test binary.
var wharfdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "wharfd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wharfdBin = filepath.Join(dir, "wharfd")
	out, err := exec.Command("go", "build", "-o", wharfdBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build wharfd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemonArgs are the flags that keep a test daemon's paths in dir.
func daemonArgs(dir string, extra ...string) []string {
	return append([]string{
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "wharfd.pid"),
		"-H", "unix://" + filepath.Join(dir, "wharfd.sock"),
	}, extra...)
}

func writeConfig(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wharfd runs the binary to completion and returns its exit code and output.
func wharfd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wharfdBin, args...)
	isolate(cmd)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run wharfd %v: %v", args, err)
	}
	return code, o.String(), e.String()
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"labels":["a=b"]}`)
	bad := t.TempDir()
	writeConfig(t, bad, `{"mtu":-1}`)
	tests := []struct {
		name       string
		giveArgs   []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", giveArgs: []string{"--help"}, wantStdout: "Usage:\twharfd [OPTIONS]"},
		{name: "help lists data-root", giveArgs: []string{"-h"}, wantStdout: "--data-root"},
		{name: "version", giveArgs: []string{"--version"}, wantStdout: "wharfd version "},
		{name: "unknown flag", giveArgs: []string{"--nosuch"}, wantCode: 1, wantStderr: "See 'wharfd --help'."},
		{name: "positional argument", giveArgs: []string{"serve"}, wantCode: 1, wantStderr: "See 'wharfd --help'."},
		{name: "validate good", giveArgs: daemonArgs(dir, "--validate"), wantStderr: "configuration OK"},
		{name: "validate bad", giveArgs: daemonArgs(bad, "--validate"), wantCode: 1, wantStderr: "invalid default MTU: -1"},
		{name: "dump graph", giveArgs: daemonArgs(dir, "--dump-graph"), wantStdout: `"3.2 verify-settings"`},
		{name: "dump graph bad config", giveArgs: daemonArgs(bad, "--dump-graph"), wantCode: 1, wantStderr: "invalid default MTU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := wharfd(t, tt.giveArgs...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantStderr)
			}
		})
	}
	// --validate and --dump-graph touch nothing.
	for _, p := range []string{"root", "exec", "wharfd.pid", "wharfd.sock"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after --validate/--dump-graph (err %v)", p, err)
		}
	}
}

func TestDumpGraphGolden(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	for _, format := range []string{"dot", "json"} {
		t.Run(format, func(t *testing.T) {
			code, stdout, stderr := wharfd(t, daemonArgs(dir, "--dump-graph="+format)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			golden := filepath.Join("testdata", "graph."+format)
			if *update {
				if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if stdout != string(want) {
				t.Errorf("--dump-graph=%s differs from %s; run `go test ./cmd/wharfd -run Golden -update` after checking the change", format, golden)
			}
			if format == "json" && !json.Valid([]byte(stdout)) {
				t.Error("--dump-graph=json is not valid JSON")
			}
			if format == "dot" {
				if _, err := exec.LookPath("dot"); err != nil {
					t.Skip("graphviz dot not installed: rendering not checked")
				}
				cmd := exec.Command("dot", "-Tsvg")
				cmd.Stdin = strings.NewReader(stdout)
				if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("<svg")) {
					t.Errorf("dot -Tsvg: %v\n%.300s", err, out)
				}
			}
		})
	}
}

// TestValidateApp checks fx's own view of the whole daemon graph: every
// dependency resolvable, no cycle, without running a constructor.
func TestValidateApp(t *testing.T) {
	flags, err := config.ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := bootGraph(flags)
	if err != nil {
		t.Fatal(err)
	}
	rec := pipeline.NewRecorder(g, zap.NewNop())
	log := zap.NewNop()
	if err := fx.ValidateApp(
		fx.NopLogger,
		fx.Supply(log, zap.NewAtomicLevel(), rec, g),
		g.Options(rec),
		fx.Invoke(g.Root(rec)),
	); err != nil {
		t.Fatal(err)
	}
}

// isolate runs cmd in a network namespace of its own when we are root: a
// daemon's default bridge, networks, nftables table and ip_forward live
// and die with it, and the host's network is never touched. The API
// socket is a file, reachable from the host as usual.
func isolate(cmd *exec.Cmd) {
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	}
}

// startDaemon starts the binary in a network namespace of its own (see
// isolate) and returns it with a scanner over its log (stderr).
func startDaemon(t *testing.T, dir string, extra ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(wharfdBin, daemonArgs(dir, extra...)...)
	isolate(cmd)
	return runDaemon(t, cmd)
}

// startDaemonHostNet starts the binary in the host's network namespace,
// for tests that reach it over TCP on loopback, with everything that
// would change the host's network turned off.
func startDaemonHostNet(t *testing.T, dir string, extra ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	args := append([]string{"--bridge=none", "--iptables=false", "--ip-forward=false"}, extra...)
	return runDaemon(t, exec.Command(wharfdBin, daemonArgs(dir, args...)...))
}

// serveDaemon starts the daemon of dir in a network namespace of its own,
// waits until its API serves, and drains its log. At cleanup it stops it
// with SIGTERM, so that its stages unmount what they mounted; that runs
// before startDaemon's kill.
func serveDaemon(t *testing.T, dir string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd, log := startDaemonNetNS(t, dir, extra...)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // Wait reports
			cmd.Wait()                          //nolint:errcheck // exit status irrelevant at cleanup
		}
	})
	waitLine(t, log, "api serving")
	go func() {
		for log.Scan() {
		}
	}()
	return cmd
}

// runDaemon starts cmd and kills it at the end of the test if it is still
// running.
func runDaemon(t *testing.T, cmd *exec.Cmd) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(stderr)
}

// runDocker runs the real docker CLI against the test daemon whose paths
// are in dir (socket dir/wharfd.sock), with no user or host configuration
// (DOCKER_CONFIG and HOME in dir), stdin from stdin, for three minutes at
// most. It returns stdout, stderr and the exit code, skips the test when
// the CLI is not installed, and fails it when the CLI could not run.
func runDocker(t testing.TB, dir string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, docker, args...)
	cmd.Env = []string{"DOCKER_HOST=unix://" + filepath.Join(dir, "wharfd.sock"), "DOCKER_CONFIG=" + filepath.Join(dir, "docker-config"),
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("docker %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// waitLine reads log lines until one contains want, and returns it.
func waitLine(t *testing.T, sc *bufio.Scanner, want string) string {
	t.Helper()
	var seen []string
	for sc.Scan() {
		if strings.Contains(sc.Text(), want) {
			return sc.Text()
		}
		seen = append(seen, sc.Text())
	}
	t.Fatalf("log ended without %q:\n%s", want, strings.Join(seen, "\n"))
	return ""
}

func TestBootAndCleanStop(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	cmd, log := startDaemon(t, dir)
	line := waitLine(t, log, "boot complete")
	if !strings.Contains(line, "critical path ") {
		t.Errorf("boot line has no critical path: %s", line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine(t, log, "stopped")
	for log.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}

// TestLogFormatFromFile: daemon.json's log-format reaches the very first
// log lines, as with dockerd.
func TestLogFormatFromFile(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `{"log-format":"json"}`)
	cmd, log := startDaemon(t, dir)
	line := waitLine(t, log, "boot complete")
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] != "boot complete" {
		t.Errorf("boot line is not a JSON record (%v): %s", err, line)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for log.Scan() {
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// TestFailedBootLeavesNothingMounted: a stage that fails after 3.11
// graphdriver mounted its store (here 2.2 listeners, on a socket path
// under a file) leaves no mount behind: the recorder's Abort runs the
// store's stop-only hook that fx never ran.
func TestFailedBootLeavesNothingMounted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	args := daemonArgs(dir)
	args[len(args)-1] = "unix://" + filepath.Join(notADir, "wharfd.sock")
	code, _, stderr := wharfd(t, args...)
	if code != 1 || !strings.Contains(stderr, "stage 2.2 listeners failed") {
		t.Fatalf("exit %d, want 1 naming 2.2 listeners:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "store opened") {
		t.Fatalf("3.11 graphdriver did not open its store before the failure, so this proves nothing:\n%s", stderr)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), dir) {
		t.Errorf("mounts left under %s after a failed boot:\n%s", dir, mi)
	}
	if _, err := os.Stat(filepath.Join(dir, "wharfd.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pidfile left after a failed boot (err %v)", err)
	}
}

func TestFailedBootNamesStage(t *testing.T) {
	dir := t.TempDir()
	// Loads fine, refused by 3.2 verify-settings.
	writeConfig(t, dir, `{"icc":false,"iptables":false}`)
	code, _, stderr := wharfd(t, daemonArgs(dir)...)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, "stage 3.2 verify-settings failed") {
		t.Errorf("stderr does not name the stage:\n%s", stderr)
	}
}
