package main

import (
	"strings"
	"testing"
	"time"

	"github.com/wharfd/wharfd/internal/testimage"
	"github.com/wharfd/wharfd/modules/daemon"
)

// newCtrDaemonWith is newCtrDaemon with daemon.json holding config.
func newCtrDaemonWith(t *testing.T, config string) *ctrDaemon {
	t.Helper()
	d := &ctrDaemon{t: t, dir: t.TempDir()}
	writeConfig(t, d.dir, config)
	d.start()
	archive := testimage.DockerArchive(t, busyboxWithUsers(t))
	if _, errOut, code := d.docker(archive, "load"); code != 0 {
		t.Fatalf("docker load: %s", errOut)
	}
	return d
}

func TestContainerInit(t *testing.T) {
	if _, err := daemon.LookupInit(""); err != nil {
		t.Skipf("no init binary (apt-get install tini): %v", err)
	}
	d := newCtrDaemon(t)
	t.Run("docker-init is PID 1", func(t *testing.T) {
		out := d.ok("run", "--rm", "--init", "busybox", "ps")
		var pid1 string
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "1" {
				pid1 = line
			}
		}
		if !strings.HasSuffix(pid1, "/sbin/docker-init -- ps") {
			t.Errorf("PID 1 is %q, want docker-init -- ps; ps printed:\n%s", pid1, out)
		}
	})
	t.Run("exit code propagates", func(t *testing.T) {
		d.fails(7, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 7")
	})
	t.Run("stop signal reaches the shell", func(t *testing.T) {
		// A shell that is PID 1 ignores SIGTERM; under docker-init it is
		// not PID 1, so SIGTERM ends it long before the stop timeout.
		d.ok("run", "-d", "--init", "--name", "with-init", "busybox", "sh", "-c", "while true; do sleep 1; done")
		d.ok("run", "-d", "--name", "without-init", "busybox", "sh", "-c", "while true; do sleep 1; done")
		start := time.Now()
		d.ok("stop", "-t", "30", "with-init")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("docker stop of an --init shell took %v: SIGTERM was not forwarded", took)
		}
		if got := d.ok("inspect", "-f", "{{.State.ExitCode}}", "with-init"); got != "143" {
			t.Errorf("--init shell stopped by SIGTERM exited %s, want 143", got)
		}
		d.ok("stop", "-t", "1", "without-init")
		if got := d.ok("inspect", "-f", "{{.State.ExitCode}}", "without-init"); got != "137" {
			t.Errorf("a PID 1 shell exited %s after stop -t 1, want 137 (SIGTERM ignored, then SIGKILL)", got)
		}
		d.ok("rm", "with-init", "without-init")
	})
	t.Run("info reports the init", func(t *testing.T) {
		got := strings.Fields(d.ok("info", "--format", "{{.InitBinary}} {{.InitCommit.ID}}"))
		if len(got) != 2 || (got[0] != "docker-init" && got[0] != "tini-static" && got[0] != "tini") {
			t.Errorf("info InitBinary, InitCommit.ID = %q", got)
		}
	})
}

func TestContainerInitMissing(t *testing.T) {
	d := newCtrDaemonWith(t, `{"init-path":"/nonexistent/docker-init"}`)
	_, mounts0, _, _ := daemonResources(t, d.cmd.Process.Pid, d.dir, nil)
	errOut := d.fails(125, "run", "--init", "--name", "noinit", "busybox", "true")
	if !strings.Contains(errOut, `init-path "/nonexistent/docker-init" does not exist`) {
		t.Errorf("run --init without the binary: stderr %q, want it named", errOut)
	}
	id := d.ok("inspect", "-f", "{{.Id}}", "noinit")
	if got := d.ok("inspect", "-f", "{{.State.Status}} {{.State.Error}}", "noinit"); !strings.HasPrefix(got, "created ") || !strings.Contains(got, "/nonexistent/docker-init") {
		t.Errorf("state after the failed start: %q", got)
	}
	_, mounts, _, cgroups := daemonResources(t, d.cmd.Process.Pid, d.dir, []string{id})
	if mounts != mounts0 || cgroups != 0 {
		t.Errorf("failed start left %d mounts (had %d), %d cgroups", mounts, mounts0, cgroups)
	}
	// Without --init the same daemon runs containers.
	if got := d.ok("run", "--rm", "busybox", "echo", "ok"); got != "ok" {
		t.Errorf("run without --init printed %q", got)
	}
}
