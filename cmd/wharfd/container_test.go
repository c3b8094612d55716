package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	cmd, log := startDaemonNetNS(d.t, d.dir)
	d.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // Wait reports
			cmd.Wait()                          //nolint:errcheck // exit status irrelevant at cleanup
		}
	})
	waitLine(d.t, log, "api serving")
	go func() {
		for log.Scan() {
		}
	}()
	d.cmd = cmd
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = d.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		d.t.Fatalf("docker %v: %v", args, err)
	}
	return o.String(), e.String(), code
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
		_, errOut, code := d.docker(nil, "run", "--rm", "--pids-limit", "4", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6; do sleep 1 & done; wait")
		if code == 0 || !strings.Contains(errOut, "can't fork") {
			t.Errorf("6 processes under --pids-limit 4: exit %d, stderr %q", code, errOut)
		}
		d.ok("run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6; do sleep 1 & done; wait")
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
