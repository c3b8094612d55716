package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// apiDaemon is a daemon a test started, serving on its own socket.
type apiDaemon struct {
	dir  string
	sock string
	cmd  *exec.Cmd
	log  *bufio.Scanner
	http *http.Client
}

// startAPIDaemon starts the daemon with its paths in a temporary
// directory and waits until the API serves.
func startAPIDaemon(t *testing.T, configJSON string, extra ...string) *apiDaemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon refuses to start otherwise")
	}
	d := &apiDaemon{dir: t.TempDir()}
	d.sock = filepath.Join(d.dir, "wharfd.sock")
	writeConfig(t, d.dir, configJSON)
	d.cmd, d.log = startDaemon(t, d.dir, extra...)
	waitLine(t, d.log, "api serving")
	d.http = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.sock)
	}}}
	t.Cleanup(d.http.CloseIdleConnections)
	return d
}

// drain consumes the rest of the daemon's log, so that it never blocks
// on a full pipe, and stops the daemon with SIGTERM at the end of the
// test, so that its stages clean up (mounts under the data root).
func (d *apiDaemon) drain(t *testing.T) {
	stopAtCleanup(t, d.cmd, d.log)
}

// stopAtCleanup drains the daemon's log and, when the test ends, stops
// it with SIGTERM and waits (killing it after a minute). It runs before
// startDaemon's kill and before the temporary directories go.
func stopAtCleanup(t *testing.T, cmd *exec.Cmd, log *bufio.Scanner) {
	t.Helper()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for log.Scan() {
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-drained:
		case <-time.After(time.Minute):
			t.Error("daemon did not stop within a minute of SIGTERM")
			_ = cmd.Process.Kill()
			<-drained
		}
		_ = cmd.Wait()
	})
}

// cli runs the real docker CLI against the daemon, with no user or host
// configuration.
func (d *apiDaemon) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runDocker(t, d.dir, nil, args...)
	if code != 0 {
		t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

func (d *apiDaemon) request(t *testing.T, method, path, ctype, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://wharfd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPIDockerCLI(t *testing.T) {
	d := startAPIDaemon(t, `{"labels":["team=api"]}`)
	d.drain(t)

	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("socket mode %v uid %d, want 0660 root", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}

	var v struct {
		Server struct {
			Platform      struct{ Name string }
			Version       string
			APIVersion    string `json:"ApiVersion"`
			MinAPIVersion string
			Os            string
			KernelVersion string
			Components    []struct{ Name, Version string }
		}
	}
	if err := json.Unmarshal([]byte(d.cli(t, "version", "--format", "{{json .}}")), &v); err != nil {
		t.Fatal(err)
	}
	s := v.Server
	if s.Platform.Name != "wharfd" || s.APIVersion != "1.56" || s.MinAPIVersion != "1.40" || s.Os != "linux" || s.KernelVersion == "" || s.Version == "" {
		t.Errorf("docker version server: %+v", s)
	}
	if len(s.Components) < 2 || s.Components[0].Name != "Engine" || s.Components[1].Name != "libcontainer" || s.Components[1].Version == "" {
		t.Errorf("components %+v", s.Components)
	}

	var info struct {
		OSType, KernelVersion, ServerVersion, CgroupDriver, DockerRootDir, LoggingDriver, DefaultRuntime string
		NCPU                                                                                             int
		MemTotal                                                                                         int64
		Labels                                                                                           []string
		Swarm                                                                                            struct{ LocalNodeState string }
		Containers, Images                                                                               int
		Plugins                                                                                          struct{ Volume, Network, Log []string }
	}
	if err := json.Unmarshal([]byte(d.cli(t, "info", "--format", "{{json .}}")), &info); err != nil {
		t.Fatal(err)
	}
	if info.OSType != "linux" || info.KernelVersion == "" || info.ServerVersion != s.Version || info.CgroupDriver != "cgroupfs" ||
		info.LoggingDriver != "json-file" || info.DefaultRuntime != "runc" || info.NCPU < 1 || info.MemTotal <= 0 ||
		info.Swarm.LocalNodeState != "inactive" || len(info.Labels) != 1 || info.Labels[0] != "team=api" ||
		!strings.HasPrefix(info.DockerRootDir, filepath.Join(d.dir, "root")) {
		t.Errorf("docker info: %+v", info)
	}
	if fmt.Sprint(info.Plugins.Volume, info.Plugins.Network, info.Plugins.Log) != "[local] [bridge host null] [json-file]" {
		t.Errorf("docker info plugins: %+v", info.Plugins)
	}
}

func TestAPIGoClient(t *testing.T) {
	d := startAPIDaemon(t, `{}`)
	d.drain(t)
	ctx := context.Background()

	c, err := client.New(client.WithHost("unix://"+d.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ping, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != "1.56" || ping.OSType != "linux" || ping.BuilderVersion != "1" {
		t.Errorf("ping %+v", ping)
	}
	if got := c.ClientVersion(); got != "1.56" {
		t.Errorf("negotiated %q, want 1.56", got)
	}
	sv, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || sv.APIVersion != "1.56" {
		t.Errorf("ServerVersion %+v, %v", sv, err)
	}

	// A client pinned to an older version is served at it.
	old, err := client.New(client.WithHost("unix://"+d.sock), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		t.Errorf("API 1.41: %v", err)
	}
}

func TestAPIErrors(t *testing.T) {
	d := startAPIDaemon(t, `{}`)
	d.drain(t)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveType   string
		giveBody   string
		wantStatus int
		wantBody   string
	}{
		{name: "too new", giveMethod: "GET", givePath: "/v9.99/version", wantStatus: 400, wantBody: `{"message":"client version 9.99 is too new. Maximum supported API version is 1.56"}`},
		{name: "too old", giveMethod: "GET", givePath: "/v1.11/version", wantStatus: 400, wantBody: `{"message":"client version 1.11 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version"}`},
		{name: "unknown path", giveMethod: "GET", givePath: "/nosuchthing", wantStatus: 404, wantBody: `{"message":"page not found"}`},
		{name: "wrong method", giveMethod: "GET", givePath: "/v1.45/containers/abc/start", wantStatus: 404, wantBody: `{"message":"page not found"}`},
		{name: "bad filters", giveMethod: "GET", givePath: "/events?filters=notjson", wantStatus: 400},
		{name: "bad since", giveMethod: "GET", givePath: "/events?since=yesterday", wantStatus: 400},
		{name: "boot report", giveMethod: "GET", givePath: "/debug/startup", wantStatus: 200},
		{name: "boot graph", giveMethod: "GET", givePath: "/debug/startup?format=dot", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := d.request(t, tt.giveMethod, tt.givePath, tt.giveType, tt.giveBody)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.wantBody != "" && strings.TrimSpace(body) != tt.wantBody {
				t.Errorf("body %s, want %s", body, tt.wantBody)
			}
			if status >= 400 && hdr.Get("Content-Type") != "application/json" {
				t.Errorf("error Content-Type %q", hdr.Get("Content-Type"))
			}
			if !strings.HasPrefix(hdr.Get("Server"), "wharfd/") || hdr.Get("Api-Version") != "1.56" {
				t.Errorf("headers %v", hdr)
			}
		})
	}
	// The boot report names this very boot's API stages.
	_, _, body := d.request(t, "GET", "/debug/startup", "", "")
	var rep struct {
		Done   bool
		Stages []struct{ ID, State string }
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range rep.Stages {
		states[s.ID] = s.State
	}
	for _, id := range []string{"2.2 listeners", "4 middlewares", "5 system", "5 routes", "2.2 apiserver"} {
		if states[id] != "ok" {
			t.Errorf("stage %s: state %q, want ok", id, states[id])
		}
	}
}

var listenRe = regexp.MustCompile(`"addr": "tcp://([0-9.:]+)"`)

func TestAPITCPNeedsTLS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	// vfs: a failed boot leaves the overlay mount of 3.11 behind (no
	// stop hook runs after a constructor failure).
	code, _, stderr := wharfd(t, daemonArgs(dir, "-H", "tcp://127.0.0.1:0", "-s", "vfs")...)
	if code != 1 || !strings.Contains(stderr, "stage 2.2 listeners failed") || !strings.Contains(stderr, "without TLS") {
		t.Fatalf("exit %d, want 1 naming the stage and the risk:\n%s", code, stderr)
	}

	cmd, log := startDaemonHostNet(t, dir, "-H", "tcp://127.0.0.1:0", "--tls=false")
	warn := waitLine(t, log, "without TLS")
	if !strings.Contains(warn, "WARN") {
		t.Errorf("not a warning: %s", warn)
	}
	var m []string
	for m == nil {
		m = listenRe.FindStringSubmatch(waitLine(t, log, "api serving"))
	}
	stopAtCleanup(t, cmd, log)
	resp, err := http.Get(fmt.Sprintf("http://%s/_ping", m[1]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/_ping over tcp: %d", resp.StatusCode)
	}
}

// TestAPIEventsReload checks that a SIGHUP reload shows in docker events
// bounded by --since and --until.
func TestAPIEventsReload(t *testing.T) {
	code, graph, _ := wharfd(t, "--dump-graph=json")
	if code != 0 || !strings.Contains(graph, `"3.18 events"`) {
		t.Skip("the event bus (3.18 events) is not wired into the daemon yet")
	}
	d := startAPIDaemon(t, `{"labels":["a=1"]}`)
	since := time.Now().Add(-time.Second).Unix()
	writeConfig(t, d.dir, `{"labels":["a=2"]}`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLine(t, d.log, "reloaded configuration")
	d.drain(t)
	until := time.Now().Add(time.Second).Unix()
	out := d.cli(t, "events", "--since", fmt.Sprint(since), "--until", fmt.Sprint(until), "--format", "{{.Type}} {{.Action}}")
	if !strings.Contains(out, "daemon reload") {
		t.Errorf("docker events: %q, want a daemon reload event", out)
	}
}

// TestAPISocketActivation passes the daemon a listening socket as systemd
// does (fd 3, LISTEN_FDS=1, LISTEN_PID its pid) and serves fd://.
func TestAPISocketActivation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	sock := filepath.Join(dir, "activated.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// sh sets LISTEN_PID to its own pid, which exec keeps for wharfd.
	args := append([]string{"-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`, wharfdBin}, daemonArgs(dir, "-H", "fd://")...)
	cmd := exec.Command("/bin/sh", args...)
	isolate(cmd)
	cmd.ExtraFiles = []*os.File{f}
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
	log := bufio.NewScanner(stderr)
	waitLine(t, log, `"addr": "fd://3"`)
	stopAtCleanup(t, cmd, log)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://wharfd/_ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/_ping on the activated socket: %d", resp.StatusCode)
	}

	// fd:// without sockets passed is a clear error.
	none := t.TempDir()
	writeConfig(t, none, `{}`)
	// vfs: a failed boot leaves the overlay mount of 3.11 behind (no
	// stop hook runs after a constructor failure).
	code, _, errOut := wharfd(t, daemonArgs(none, "-H", "fd://", "-s", "vfs")...)
	if code != 1 || !strings.Contains(errOut, "no sockets were passed by systemd") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}
}
