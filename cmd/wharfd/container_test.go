package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfd/wharfd/internal/testimage"
)

// ctrDaemon is a daemon for the container tests, on a directory of its
// own, restartable, with the busybox test image loaded.
type ctrDaemon struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
}

// newCtrDaemon starts a daemon (in a network namespace of its own) and
// loads busybox:latest, built from busybox-static, into it.
func newCtrDaemon(t *testing.T) *ctrDaemon {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	d := &ctrDaemon{t: t, dir: t.TempDir()}
	writeConfig(t, d.dir, `{}`)
	d.start()
	archive := testimage.DockerArchive(t, busyboxWithUsers(t))
	if _, errOut, code := d.docker(archive, "load"); code != 0 {
		t.Fatalf("docker load: %s", errOut)
	}
	return d
}

// busyboxWithUsers is busybox:latest with an /etc/passwd and /etc/group
// naming root, nobody and app (1000:1000, groups app and staff).
func busyboxWithUsers(t *testing.T) testimage.Image {
	entries := append(testimage.RootFSEntries(t),
		testimage.Entry{Name: "etc/passwd", Body: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n")},
		testimage.Entry{Name: "etc/group", Body: []byte("root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n")},
	)
	return testimage.NewImage(t, testimage.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		[]string{"busybox:latest"}, testimage.Tar(t, entries...))
}

func (d *ctrDaemon) start() {
	d.t.Helper()
	d.cmd = serveDaemon(d.t, d.dir)
}

// stop stops the daemon with SIGTERM and waits for it.
func (d *ctrDaemon) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	if err := d.cmd.Wait(); err != nil {
		d.t.Fatalf("daemon exit: %v", err)
	}
}

func (d *ctrDaemon) env() []string {
	return []string{"DOCKER_HOST=unix://" + filepath.Join(d.dir, "wharfd.sock"), "DOCKER_CONFIG=" + filepath.Join(d.dir, "docker-config"),
		"PATH=" + os.Getenv("PATH"), "HOME=" + d.dir}
}

// docker runs the CLI with stdin and returns stdout, stderr and the exit
// code.
func (d *ctrDaemon) docker(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	return runDocker(d.t, d.dir, stdin, args...)
}

// ok runs the CLI, fails the test unless it succeeds, and returns stdout
// trimmed.
func (d *ctrDaemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs the CLI, expects the exit code, and returns stderr.
func (d *ctrDaemon) fails(wantCode int, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(nil, args...)
	if code != wantCode {
		d.t.Fatalf("docker %v: exit %d, want %d\n%s%s", args, code, wantCode, out, errOut)
	}
	return errOut
}

func TestContainerRun(t *testing.T) {
	d := newCtrDaemon(t)
	if got := d.ok("run", "--rm", "busybox", "echo", "hi"); got != "hi" {
		t.Errorf("run --rm echo hi printed %q", got)
	}
	d.fails(3, "run", "--rm", "busybox", "sh", "-c", "exit 3")
	if got := d.ok("ps", "-aq"); got != "" {
		t.Errorf("--rm left containers: %q", got)
	}
}

// dockerPTY runs the CLI under script(1), which gives it a pseudo-terminal,
// feeding input; it returns the output and the exit code.
func (d *ctrDaemon) dockerPTY(input string, args ...string) (string, int) {
	d.t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		d.t.Skip("script (util-linux) not installed: no pseudo-terminal for -it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qfec", "docker "+strings.Join(args, " "), "/dev/null")
	cmd.Env = d.env()
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.Output()
	var ee *exec.ExitError
	code := 0
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		d.t.Fatalf("script docker %v: %v", args, err)
	}
	return string(out), code
}

// eventually polls cond every 50ms for up to timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestContainerRunOptions(t *testing.T) {
	d := newCtrDaemon(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("FROM_FILE=yes\n# comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		giveArgs []string
		want     string
	}{
		{name: "env", giveArgs: []string{"-e", "A=1", "--env-file", envFile, "busybox", "sh", "-c", "echo $A $FROM_FILE"}, want: "1 yes"},
		{name: "hostname env", giveArgs: []string{"--hostname", "box", "busybox", "sh", "-c", "echo $HOSTNAME $(hostname)"}, want: "box box"},
		{name: "entrypoint", giveArgs: []string{"--entrypoint", "echo", "busybox", "from", "entrypoint"}, want: "from entrypoint"},
		{name: "workdir", giveArgs: []string{"--workdir", "/made/here", "busybox", "sh", "-c", "cd . && echo $PWD"}, want: "/made/here"},
		{name: "user by name", giveArgs: []string{"--user", "app", "busybox", "id"}, want: "uid=1000(app) gid=1000(app) groups=50(staff)"},
		{name: "user uid:gid", giveArgs: []string{"--user", "1234:5678", "busybox", "id", "-u"}, want: "1234"},
		{name: "user home", giveArgs: []string{"--user", "app", "busybox", "sh", "-c", "echo $HOME"}, want: "/home/app"},
		{name: "read-only", giveArgs: []string{"--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null && echo writable || echo read-only"}, want: "read-only"},
		{name: "writable by default", giveArgs: []string{"busybox", "sh", "-c", "touch /x && echo writable"}, want: "writable"},
		{name: "hosts file", giveArgs: []string{"--add-host", "db:10.1.2.3", "busybox", "sh", "-c", "cat /etc/hosts | grep db"}, want: "10.1.2.3\tdb"},
		{name: "network none", giveArgs: []string{"--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"}, want: "lo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.ok(append([]string{"run", "--rm"}, tt.giveArgs...)...)
			if got != tt.want {
				t.Errorf("docker run %v printed %q, want %q", tt.giveArgs, got, tt.want)
			}
		})
	}
	t.Run("pids-limit", func(t *testing.T) {
		// The limit counts threads, the container init's Go threads
		// included until it execs the command: too low a limit fails the
		// init itself now and then, so 16, with 40 children to refuse.
		forks := "i=0; while [ $i -lt 40 ]; do sleep 1 & i=$((i+1)); done; wait"
		_, errOut, code := d.docker(nil, "run", "--rm", "--pids-limit", "16", "busybox", "sh", "-c", forks)
		if code == 0 || !strings.Contains(errOut, "can't fork") {
			t.Errorf("40 processes under --pids-limit 16: exit %d, stderr %q", code, errOut)
		}
		d.ok("run", "--rm", "--pids-limit", "64", "busybox", "sh", "-c", forks)
	})
	t.Run("unknown user", func(t *testing.T) {
		errOut := d.fails(125, "run", "--rm", "--user", "nosuch", "busybox", "true")
		if !strings.Contains(errOut, "unable to find user nosuch") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("missing command", func(t *testing.T) {
		d.fails(127, "run", "--rm", "busybox", "/nosuch")
	})
	if got := d.ok("ps", "-aq"); got != "" {
		t.Errorf("--rm left containers: %q", got)
	}
}

func TestContainerLifecycle(t *testing.T) {
	d := newCtrDaemon(t)
	id := d.ok("run", "-d", "--name", "web", "--label", "tier=front", "busybox", "sh", "-c",
		"trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64 hex ID", id)
	}
	eventually(t, 10*time.Second, "the container's first line", func() bool { return d.ok("logs", "web") == "ready" })

	t.Run("logs -f follows until exit", func(t *testing.T) {
		d.ok("run", "-d", "--name", "talker", "busybox", "sh", "-c", "echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three")
		cmd := exec.Command("docker", "logs", "-f", "-t", "talker")
		cmd.Env = d.env()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("logs -f: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || !strings.HasSuffix(lines[0], " one") || !strings.HasSuffix(lines[1], " three") ||
			!strings.HasPrefix(lines[0], time.Now().UTC().Format("2006-01-02T")) {
			t.Errorf("logs -f -t stdout: %q", out)
		}
		if got := d.ok("logs", "--tail", "1", "talker"); got != "three" {
			t.Errorf("logs --tail 1: %q", got)
		}
		d.ok("rm", "talker")
	})
	t.Run("exec", func(t *testing.T) {
		if got := d.ok("exec", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", "echo $X $PWD"); got != "1 /tmp" {
			t.Errorf("exec printed %q", got)
		}
		d.fails(5, "exec", "web", "sh", "-c", "exit 5")
		out, code := d.dockerPTY("tty; exit 4\n", "exec", "-it", "web", "sh")
		if code != 4 || !strings.Contains(out, "/dev/pts/") {
			t.Errorf("exec -it: exit %d, output %q", code, out)
		}
	})
	t.Run("top", func(t *testing.T) {
		out := d.ok("top", "web")
		if !strings.Contains(out, "PID") || !strings.Contains(out, "while true") {
			t.Errorf("top: %q", out)
		}
	})
	t.Run("stats", func(t *testing.T) {
		out := d.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "web")
		if !strings.HasPrefix(out, "web ") || strings.HasSuffix(out, " 0") {
			t.Errorf("stats: %q", out)
		}
	})
	t.Run("cp", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("into the container\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.ok("cp", filepath.Join(dir, "in.txt"), "web:/tmp/")
		if got := d.ok("exec", "web", "cat", "/tmp/in.txt"); got != "into the container" {
			t.Errorf("after cp in: %q", got)
		}
		d.ok("exec", "web", "sh", "-c", "echo out of it > /tmp/out.txt")
		d.ok("cp", "web:/tmp/out.txt", dir)
		if b, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(b) != "out of it\n" {
			t.Errorf("after cp out: %q, %v", b, err)
		}
		errOut := d.fails(1, "cp", "web:/nosuch", dir)
		if !strings.Contains(errOut, "Could not find the file /nosuch in container web") {
			t.Errorf("cp of a missing path: %q", errOut)
		}
	})
	t.Run("pause", func(t *testing.T) {
		d.ok("pause", "web")
		if got := d.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "web"); got != "paused true" {
			t.Errorf("after pause: %q", got)
		}
		if errOut := d.fails(1, "exec", "web", "true"); !strings.Contains(errOut, "is paused") {
			t.Errorf("exec in a paused container: %q", errOut)
		}
		d.ok("unpause", "web")
		if got := d.ok("inspect", "-f", "{{.State.Status}}", "web"); got != "running" {
			t.Errorf("after unpause: %q", got)
		}
	})
	t.Run("rename and filters", func(t *testing.T) {
		d.ok("rename", "web", "web2")
		d.ok("create", "--name", "idle", "busybox", "true")
		tests := []struct {
			name     string
			giveArgs []string
			want     string
		}{
			{name: "running", giveArgs: []string{"--filter", "status=running"}, want: "web2"},
			{name: "created", giveArgs: []string{"--filter", "status=created"}, want: "idle"},
			{name: "label", giveArgs: []string{"--filter", "label=tier=front"}, want: "web2"},
			{name: "name", giveArgs: []string{"--filter", "name=idl"}, want: "idle"},
			{name: "ancestor", giveArgs: []string{"--filter", "ancestor=busybox", "--filter", "name=web"}, want: "web2"},
			{name: "id", giveArgs: []string{"--filter", "id=" + id[:12]}, want: "web2"},
			{name: "before", giveArgs: []string{"--filter", "before=idle"}, want: "web2"},
			{name: "since", giveArgs: []string{"--filter", "since=web2"}, want: "idle"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := d.ok(append([]string{"ps", "-a", "--format", "{{.Names}}"}, tt.giveArgs...)...); got != tt.want {
					t.Errorf("ps %v: %q, want %q", tt.giveArgs, got, tt.want)
				}
			})
		}
		if got := d.ok("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}"); got != "2 1 1" {
			t.Errorf("info counts: %q", got)
		}
		d.ok("rm", "idle")
	})
	t.Run("stop and restart", func(t *testing.T) {
		if got := d.ok("stop", "web2"); got != "web2" {
			t.Errorf("stop printed %q", got)
		}
		if got := d.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web2"); got != "exited 0" {
			t.Errorf("after stop: %q", got)
		}
		if got := d.ok("logs", "--tail", "1", "web2"); got != "bye" {
			t.Errorf("last line after stop: %q", got)
		}
		d.ok("restart", "web2")
		if got := d.ok("inspect", "-f", "{{.State.Status}}", "web2"); got != "running" {
			t.Errorf("after restart: %q", got)
		}
		if errOut := d.fails(1, "rm", "web2"); !strings.Contains(errOut, `cannot remove container "/web2": container is running: stop the container before removing or force remove`) {
			t.Errorf("rm of a running container: %q", errOut)
		}
	})
	t.Run("wait", func(t *testing.T) {
		d.ok("run", "-d", "--name", "waiter", "busybox", "sh", "-c", "sleep 0.3; exit 9")
		if got := d.ok("wait", "waiter"); got != "9" {
			t.Errorf("wait printed %q", got)
		}
		d.ok("rm", "waiter")
	})
	d.ok("rm", "-f", "web2")
	if got := d.ok("ps", "-aq"); got != "" {
		t.Errorf("containers left: %q", got)
	}
}

func TestContainerInteractive(t *testing.T) {
	d := newCtrDaemon(t)
	out, code := d.dockerPTY("echo in-tty; tty; exit 7\n", "run", "-it", "--rm", "busybox", "sh")
	if code != 7 || !strings.Contains(out, "in-tty") || !strings.Contains(out, "/dev/pts/0") {
		t.Errorf("run -it: exit %d, output %q", code, out)
	}
	cmd := exec.Command("docker", "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done")
	cmd.Env = d.env()
	cmd.Stdin = strings.NewReader("piped\n")
	b, err := cmd.Output()
	if err != nil || string(b) != "piped\ndone\n" {
		t.Errorf("run -i with piped stdin: %q, %v", b, err)
	}
}

func TestContainerOOM(t *testing.T) {
	d := newCtrDaemon(t)
	d.fails(137, "run", "--name", "hog", "--memory", "8m", "busybox", "sh", "-c", "x=0123456789abcdef; while true; do x=$x$x; done")
	if got := d.ok("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"); got != "true 137" {
		t.Errorf("hog state: %q, want OOMKilled true, exit 137", got)
	}
}

// api sends one request to the daemon's API and returns the status and
// body.
func (d *ctrDaemon) api(method, path, body string) (int, string) {
	d.t.Helper()
	c := unixClient(filepath.Join(d.dir, "wharfd.sock"))
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://wharfd/v1.51"+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestContainerBadInput(t *testing.T) {
	d := newCtrDaemon(t)
	web := d.ok("run", "-d", "--name", "web", "busybox", "sleep", "1000")
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveBody   string
		wantStatus int
		wantBody   string
	}{
		{name: "empty body", giveMethod: "POST", givePath: "/containers/create", wantStatus: 400, wantBody: `{"message":"invalid JSON: EOF"}`},
		{name: "empty config", giveMethod: "POST", givePath: "/containers/create", giveBody: `{}`, wantStatus: 400, wantBody: `{"message":"config cannot be empty in order to create a container"}`},
		{name: "name in use", giveMethod: "POST", givePath: "/containers/create?name=web", giveBody: `{"Image":"busybox"}`, wantStatus: 409,
			wantBody: `{"message":"Conflict. The container name \"/web\" is already in use by container \"` + web + `\". You have to remove (or rename) that container to be able to reuse that name."}`},
		{name: "bad name", giveMethod: "POST", givePath: "/containers/create?name=-x", giveBody: `{"Image":"busybox"}`, wantStatus: 400,
			wantBody: `{"message":"Invalid container name (-x), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}`},
		{name: "bad port key", giveMethod: "POST", givePath: "/containers/create", giveBody: `{"Image":"busybox","HostConfig":{"PortBindings":{"99999/tcp":[{"HostPort":"8080"}]}}}`, wantStatus: 400, wantBody: "invalid"},
		{name: "bad host port", giveMethod: "POST", givePath: "/containers/create", giveBody: `{"Image":"busybox","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"x"}]}}}`, wantStatus: 400, wantBody: `{"message":"invalid port specification: \"x\""}`},
		{name: "always with retries", giveMethod: "POST", givePath: "/containers/create", giveBody: `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always","MaximumRetryCount":3}}}`, wantStatus: 400,
			wantBody: `{"message":"invalid restart policy: maximum retry count can only be used with 'on-failure'"}`},
		{name: "unknown image", giveMethod: "POST", givePath: "/containers/create", giveBody: `{"Image":"nope"}`, wantStatus: 404, wantBody: `{"message":"No such image: nope"}`},
		{name: "memory too low", giveMethod: "POST", givePath: "/containers/create", giveBody: `{"Image":"busybox","HostConfig":{"Memory":1024}}`, wantStatus: 400, wantBody: "Minimum memory limit allowed is 6MB"},
		{name: "start missing", giveMethod: "POST", givePath: "/containers/nope/start", wantStatus: 404, wantBody: `{"message":"No such container: nope"}`},
		{name: "remove running", giveMethod: "DELETE", givePath: "/containers/web", wantStatus: 409,
			wantBody: `{"message":"cannot remove container \"/web\": container is running: stop the container before removing or force remove"}`},
		{name: "start running", giveMethod: "POST", givePath: "/containers/web/start", wantStatus: 304},
		{name: "bad signal", giveMethod: "POST", givePath: "/containers/web/kill?signal=NOPE", wantStatus: 400, wantBody: `{"message":"Invalid signal: NOPE"}`},
		{name: "bad wait condition", giveMethod: "POST", givePath: "/containers/web/wait?condition=never", wantStatus: 400, wantBody: "invalid condition"},
		{name: "exec no command", giveMethod: "POST", givePath: "/containers/web/exec", giveBody: `{"Cmd":[]}`, wantStatus: 400, wantBody: `{"message":"No exec command specified"}`},
		{name: "exec missing", giveMethod: "GET", givePath: "/exec/nope/json", wantStatus: 404, wantBody: `{"message":"No such exec instance: nope"}`},
		{name: "logs without streams", giveMethod: "GET", givePath: "/containers/web/logs", wantStatus: 400, wantBody: `{"message":"Bad parameters: you must choose at least one stream"}`},
		{name: "unknown list filter", giveMethod: "GET", givePath: `/containers/json?filters={"nope":["x"]}`, wantStatus: 400, wantBody: `{"message":"invalid filter 'nope'"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := d.api(tt.giveMethod, tt.givePath, tt.giveBody)
			if status != tt.wantStatus || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s: %d %s, want %d %s", tt.giveMethod, tt.givePath, status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	if got := d.ok("ps", "-aq", "--no-trunc"); got != web {
		t.Errorf("failed creates left containers: %q", got)
	}
	d.ok("rm", "-f", "web")
}

func TestContainerRestartPolicies(t *testing.T) {
	d := newCtrDaemon(t)
	// sleep as PID 1 ignores SIGTERM: the shutdown kills these after
	// their one-second stop timeout.
	d.ok("run", "-d", "--name", "always", "--stop-timeout", "1", "--restart", "always", "busybox", "sleep", "1000")
	d.ok("run", "-d", "--name", "unless", "--stop-timeout", "1", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.ok("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.ok("stop", "-t", "0", "stopped")
	d.ok("run", "-d", "--name", "plain", "busybox", "sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.1; done")
	d.ok("create", "--name", "removed", "--rm", "busybox", "true")
	d.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1")
	eventually(t, 20*time.Second, "on-failure:2 to give up", func() bool {
		return d.ok("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", "flaky") == "exited 2"
	})

	d.stop()
	d.start()
	tests := []struct {
		name string
		want string
	}{
		{name: "always", want: "running"},
		{name: "unless", want: "running"},
		{name: "stopped", want: "exited"},
		{name: "plain", want: "exited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.ok("inspect", "-f", "{{.State.Status}}", tt.name); got != tt.want {
				t.Errorf("%s after a daemon restart: %s, want %s", tt.name, got, tt.want)
			}
		})
	}
	if _, _, code := d.docker(nil, "inspect", "removed"); code == 0 {
		t.Error("an AutoRemove container survived the daemon restart")
	}
	// Stopped by the daemon's shutdown with its stop signal, which it
	// traps; the others were killed after their stop timeout.
	if got := d.ok("inspect", "-f", "{{.State.ExitCode}}", "plain"); got != "3" {
		t.Errorf("plain's exit code after shutdown: %s, want 3", got)
	}
	d.ok("rm", "-f", "always", "unless", "stopped", "plain", "flaky")
}

func TestContainerSurvivesCrash(t *testing.T) {
	d := newCtrDaemon(t)
	d.ok("run", "-d", "--name", "before", "busybox", "sleep", "1000")
	sock := filepath.Join(d.dir, "wharfd.sock")
	c := unixClient(sock)
	created := make(chan struct{}, 20)
	for i := range 20 {
		go func() {
			req, _ := http.NewRequest("POST", "http://wharfd/v1.51/containers/create?name=c"+strconv.Itoa(i), strings.NewReader(`{"Image":"busybox","Cmd":["true"]}`))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
			created <- struct{}{}
		}()
	}
	<-created // at least one create went through; others are mid-way
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	d.cmd.Wait() //nolint:errcheck // killed
	for range 19 {
		<-created
	}
	c.CloseIdleConnections()

	d.start()
	if got := d.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "before"); got != "exited 137" {
		t.Errorf("container running at the crash: %s, want exited 137", got)
	}
	ids := strings.Fields(d.ok("ps", "-aq"))
	if len(ids) < 2 {
		t.Errorf("containers after the crash: %v, want before and at least one create", ids)
	}
	for _, id := range ids {
		d.ok("start", id)
	}
	d.ok(append([]string{"rm", "-f"}, ids...)...)
	// Every layer went with its container: none left in the store.
	b, err := os.ReadFile(filepath.Join(d.dir, "root", "storage", "overlay-containers", "containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("container layers left in the store: %s", b)
	}
}

// daemonResources counts what a container could leak in the daemon:
// open fds, mounts under the test's directory, child processes and the
// cgroups of the given container IDs.
func daemonResources(t *testing.T, pid int, dir string, ids []string) (fds, mounts, children, cgroups int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	fds = len(ents)
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	mounts = strings.Count(string(mi), dir)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			children++
		}
	}
	for _, id := range ids {
		m, _ := filepath.Glob("/sys/fs/cgroup/*/wharfd/" + id)
		m2, _ := filepath.Glob("/sys/fs/cgroup/wharfd/" + id)
		cgroups += len(m) + len(m2)
	}
	return fds, mounts, children, cgroups
}

func TestContainerNoLeaks(t *testing.T) {
	d := newCtrDaemon(t)
	c := unixClient(filepath.Join(d.dir, "wharfd.sock"))
	call := func(method, path, body string, want int) string {
		req, _ := http.NewRequest(method, "http://wharfd/v1.51"+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return string(b)
	}
	var ids []string
	cycle := func() {
		var cr struct{ Id string }
		if err := json.Unmarshal([]byte(call("POST", "/containers/create", `{"Image":"busybox","Cmd":["true"]}`, 201)), &cr); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cr.Id)
		call("POST", "/containers/"+cr.Id+"/start", "", 204)
		call("POST", "/containers/"+cr.Id+"/wait", "", 200)
		call("DELETE", "/containers/"+cr.Id, "", 204)
	}
	for range 5 { // warm up: first-use files, pools, connections
		cycle()
	}
	pid := d.cmd.Process.Pid
	fds0, mounts0, children0, _ := daemonResources(t, pid, d.dir, nil)
	n := 200
	if testing.Short() {
		n = 20
	}
	for range n {
		cycle()
	}
	eventually(t, 10*time.Second, "the daemon's resources to settle", func() bool {
		fds, mounts, children, cgroups := daemonResources(t, pid, d.dir, ids)
		return fds <= fds0 && mounts == mounts0 && children == children0 && cgroups == 0
	})
	fds, mounts, children, cgroups := daemonResources(t, pid, d.dir, ids)
	t.Logf("after %d create/start/wait/rm cycles: %d fds (%d before), %d mounts (%d), %d children (%d), %d cgroups",
		n, fds, fds0, mounts, mounts0, children, children0, cgroups)
}
