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
	archive := testimage.DockerArchive(t, testimage.BusyboxImage(t, "busybox:latest"))
	if _, errOut, code := d.docker(archive, "load"); code != 0 {
		t.Fatalf("docker load: %s", errOut)
	}
	return d
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
