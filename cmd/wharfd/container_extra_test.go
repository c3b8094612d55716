package main

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
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

func TestContainerHealthcheck(t *testing.T) {
	d := newCtrDaemon(t)
	start := time.Now().Add(-time.Second).Unix()
	d.ok("run", "-d", "--name", "good", "--health-cmd", "true", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "1000")
	d.ok("run", "-d", "--name", "bad", "--health-cmd", "echo failing; exit 1", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "1000")
	d.ok("run", "-d", "--name", "slow", "--health-cmd", "sleep 10", "--health-timeout", "200ms", "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "1000")
	d.ok("run", "-d", "--name", "plain", "busybox", "sleep", "1000")
	// sleep as PID 1 ignores SIGTERM: remove them at once, not at the
	// daemon's shutdown.
	t.Cleanup(func() { d.ok("rm", "-f", "good", "bad", "slow", "plain") })
	status := func(name string) string { return d.ok("inspect", "-f", "{{.State.Health.Status}}", name) }
	eventually(t, 20*time.Second, "good to become healthy", func() bool { return status("good") == "healthy" })
	eventually(t, 20*time.Second, "bad to become unhealthy", func() bool { return status("bad") == "unhealthy" })
	eventually(t, 20*time.Second, "slow to become unhealthy", func() bool { return status("slow") == "unhealthy" })

	t.Run("inspect", func(t *testing.T) {
		var h struct {
			Status        string
			FailingStreak int
			Log           []struct {
				Start, End time.Time
				ExitCode   int
				Output     string
			}
		}
		if err := json.Unmarshal([]byte(d.ok("inspect", "-f", "{{json .State.Health}}", "bad")), &h); err != nil {
			t.Fatal(err)
		}
		last := h.Log[len(h.Log)-1]
		if h.FailingStreak < 2 || len(h.Log) < 2 || len(h.Log) > 5 || last.ExitCode != 1 || last.Output != "failing\n" || last.End.Before(last.Start) {
			t.Errorf("bad's health: %+v", h)
		}
		if err := json.Unmarshal([]byte(d.ok("inspect", "-f", "{{json .State.Health}}", "slow")), &h); err != nil {
			t.Fatal(err)
		}
		if last := h.Log[len(h.Log)-1]; last.ExitCode != -1 || last.Output != "Health check exceeded timeout (200ms)" {
			t.Errorf("slow's last probe: %+v", last)
		}
		if got := d.ok("inspect", "-f", "{{json .State.Health}}", "plain"); got != "null" {
			t.Errorf("a container without a healthcheck has health %s", got)
		}
	})
	t.Run("ps", func(t *testing.T) {
		if got := d.ok("ps", "--filter", "name=good", "--format", "{{.Status}}"); !strings.HasPrefix(got, "Up ") || !strings.HasSuffix(got, " (healthy)") {
			t.Errorf("ps status of good: %q", got)
		}
		tests := []struct {
			give string
			want string
		}{
			{give: "healthy", want: "good"},
			{give: "unhealthy", want: "bad slow"},
			{give: "none", want: "plain"},
			{give: "starting", want: ""},
		}
		for _, tt := range tests {
			got := strings.Fields(d.ok("ps", "--filter", "health="+tt.give, "--format", "{{.Names}}"))
			slices.Sort(got)
			if strings.Join(got, " ") != tt.want {
				t.Errorf("ps --filter health=%s: %q, want %q", tt.give, got, tt.want)
			}
		}
		errOut := d.fails(1, "ps", "--filter", "health=sick")
		if !strings.Contains(errOut, "sick") {
			t.Errorf("ps --filter health=sick: %q", errOut)
		}
	})
	t.Run("probes stop with the container", func(t *testing.T) {
		d.ok("stop", "-t", "0", "good")
		if got := status("good"); got != "healthy" {
			t.Errorf("health after stop: %q, want the last status kept", got)
		}
		d.ok("restart", "-t", "0", "bad") // a start begins again at starting
		eventually(t, 20*time.Second, "bad to become unhealthy again", func() bool { return status("bad") == "unhealthy" })
		// Well over one interval after good stopped: its events end with
		// the stop, no exec after it.
		out := d.ok("events", "--since", strconv.FormatInt(start, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "container=good", "--format", "{{.Action}}")
		actions := strings.Split(out, "\n")
		if !slices.Contains(actions, "health_status: healthy") || slices.Contains(actions, "health_status: unhealthy") {
			t.Errorf("good's events: %q", actions)
		}
		die := slices.Index(actions, "die")
		if die < 0 || slices.ContainsFunc(actions[die:], func(a string) bool { return strings.HasPrefix(a, "exec_start") }) {
			t.Errorf("a probe ran after good died: %q", actions)
		}
		out = d.ok("events", "--since", strconv.FormatInt(start, 10), "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
			"--filter", "container=bad", "--filter", "event=health_status", "--format", "{{.Action}}")
		if got := strings.Count(out, "health_status: unhealthy"); got != 2 {
			t.Errorf("bad's health events: %q, want unhealthy once per run", out)
		}
	})
	t.Run("bad settings", func(t *testing.T) {
		code, body := d.api("POST", "/containers/create", `{"Image":"busybox","Cmd":["true"],"Healthcheck":{"Test":["CMD","true"],"Interval":1000}}`)
		if code != 400 || !strings.Contains(body, "Interval in Healthcheck cannot be less than 1ms") {
			t.Errorf("create with a 1µs interval: %d %s", code, body)
		}
	})
}

func TestImageRemoveInUse(t *testing.T) {
	d := newCtrDaemon(t)
	imageID := strings.TrimPrefix(d.ok("image", "inspect", "-f", "{{.Id}}", "busybox"), "sha256:")[:12]
	runner := d.ok("run", "-d", "--name", "runner", "busybox", "sleep", "1000")[:12]
	t.Cleanup(func() { d.docker(nil, "rm", "-f", "runner") })
	tests := []struct {
		name     string
		giveArgs []string
		want     string
	}{
		{name: "running", giveArgs: []string{"rmi", imageID},
			want: "Error response from daemon: conflict: unable to delete " + imageID + " (cannot be forced) - image is being used by running container " + runner},
		{name: "running forced", giveArgs: []string{"rmi", "-f", imageID},
			want: "Error response from daemon: conflict: unable to delete " + imageID + " (cannot be forced) - image is being used by running container " + runner},
		{name: "running by name", giveArgs: []string{"rmi", "busybox"},
			want: `Error response from daemon: conflict: unable to remove repository reference "busybox" (must force) - container ` + runner + " is using its referenced image " + imageID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.TrimSpace(d.fails(1, tt.giveArgs...)); got != tt.want {
				t.Errorf("docker %v:\n got %q\nwant %q", tt.giveArgs, got, tt.want)
			}
		})
	}
	d.ok("rm", "-f", "runner")
	stopped := d.ok("create", "--name", "stopped", "busybox", "echo", "still runs")[:12]
	t.Run("stopped", func(t *testing.T) {
		want := "Error response from daemon: conflict: unable to delete " + imageID + " (must be forced) - image is being used by stopped container " + stopped
		if got := strings.TrimSpace(d.fails(1, "rmi", imageID)); got != want {
			t.Errorf("docker rmi:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("stopped forced", func(t *testing.T) {
		if got := d.ok("rmi", "-f", imageID); got != "Untagged: busybox:latest" {
			t.Errorf("docker rmi -f printed %q", got)
		}
		if got := d.ok("images", "-q"); got != imageID {
			t.Errorf("images after rmi -f: %q, want the image kept, untagged, for its container", got)
		}
		if got := d.ok("start", "-a", "stopped"); got != "still runs" {
			t.Errorf("the container of the untagged image printed %q", got)
		}
	})
	d.ok("rm", "stopped")
	if got := d.ok("rmi", imageID); !strings.Contains(got, "Deleted: sha256:"+imageID) {
		t.Errorf("rmi once unused printed %q", got)
	}
}

// BenchmarkContainerExtras reports, per engine: run-rm-init (ms, median
// of b.N `docker run --rm --init busybox true`, beside run-rm without
// --init) and health-probe (ms, median Start→End of the last five probes
// of `--health-cmd true`, an exec through the runtime).
func BenchmarkContainerExtras(b *testing.B) {
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("docker CLI not installed")
	}
	if _, err := daemon.LookupInit(""); err != nil {
		b.Skipf("no init binary: %v", err)
	}
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			d, _ := e.start(b)
			benchCLI(b, d.sock, testimage.DockerArchive(b, testimage.BusyboxImage(b, "busybox:latest")), "load")
			median := func(args ...string) float64 {
				lat := make([]time.Duration, 0, b.N)
				for range b.N {
					start := time.Now()
					benchCLI(b, d.sock, nil, args...)
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				return float64(lat[len(lat)/2].Microseconds()) / 1000
			}
			b.Run("run-rm", func(b *testing.B) {
				b.ReportMetric(median("run", "--rm", "busybox", "true"), "ms-median")
				b.ReportMetric(0, "ns/op")
			})
			b.Run("run-rm-init", func(b *testing.B) {
				b.ReportMetric(median("run", "--rm", "--init", "busybox", "true"), "ms-median")
				b.ReportMetric(0, "ns/op")
			})
			b.Run("health-probe", func(b *testing.B) {
				id := benchCLI(b, d.sock, nil, "run", "-d", "--health-cmd", "true", "--health-interval", "20ms", "busybox", "sleep", "1000")
				var h struct {
					Log []struct{ Start, End time.Time }
				}
				deadline := time.Now().Add(30 * time.Second)
				for len(h.Log) < 5 && time.Now().Before(deadline) {
					if err := json.Unmarshal([]byte(benchCLI(b, d.sock, nil, "inspect", "-f", "{{json .State.Health}}", id)), &h); err != nil {
						b.Fatal(err)
					}
				}
				for range b.N {
				}
				var took []time.Duration
				for _, r := range h.Log {
					took = append(took, r.End.Sub(r.Start))
				}
				slices.Sort(took)
				if len(took) > 0 {
					b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
				}
				b.ReportMetric(0, "ns/op")
				benchCLI(b, d.sock, nil, "rm", "-f", id)
			})
		})
	}
}
