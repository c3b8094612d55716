package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/goleak"
)

// wharfdBin is the daemon binary built by TestMain, "" when the build
// failed (buildErr says why).
var (
	wharfdBin string
	buildErr  error
	// mountNS is the test process's mount namespace before any container.
	mountNS string
)

// init keeps the main thread out of libcontainer's reach, as wharfd's.
func init() { LockMainThread() }

// TestMain hands over to the container init when libcontainer re-executes
// this test binary. libcontainer (runc v1.5) always re-executes
// /proc/self/exe, the process that drives it; there is no way to name
// another binary, so in-process tests of the runtime necessarily use the
// test binary as the init, through the same IsInit/Init that wharfd's main
// calls. The real wharfd binary is built here too, and TestWharfdInitDispatch
// checks that its main hands over to libcontainer's init.
func TestMain(m *testing.M) {
	if IsInit(os.Args) {
		Init()
	}
	mountNS, _ = os.Readlink("/proc/self/ns/mnt")
	dir, err := os.MkdirTemp("", "wharfd-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wharfdBin = filepath.Join(dir, "wharfd")
	cmd := exec.Command("go", "build", "-o", wharfdBin, "github.com/wharfd/wharfd/cmd/wharfd")
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/wharfd: %w\n%s", err, out)
		wharfdBin = ""
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireRoot skips tests that need root, namespaces and cgroups.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and cgroups")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs Debian's busybox-static (/bin/busybox) for the test rootfs")
	}
}

// rootfs builds a root filesystem in a temporary directory: busybox and a
// symlink per applet.
func rootfs(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// testParent returns a cgroup parent of the test's own, removed (in every
// hierarchy) when the test ends.
func testParent(t testing.TB) string {
	t.Helper()
	parent := fmt.Sprintf("/wharfd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, dir := range cgroupDirs(t, parent) {
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove test cgroup parent: %v", err)
			}
		}
	})
	return parent
}

// cgroupDirs returns the directories of cgroup path in every mounted
// hierarchy that exist.
func cgroupDirs(t testing.TB, path string) []string {
	t.Helper()
	mounts, err := cgroups.GetCgroupMounts(true)
	if err != nil && !cgroups.IsCgroup2UnifiedMode() {
		t.Fatal(err)
	}
	roots := []string{"/sys/fs/cgroup"}
	if !cgroups.IsCgroup2UnifiedMode() {
		roots = roots[:0]
		for _, m := range mounts {
			roots = append(roots, m.Mountpoint)
		}
	}
	var dirs []string
	for _, r := range roots {
		d := filepath.Join(r, path)
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// newTestRuntime opens a Runtime on a temporary root with a cgroup parent
// of the test's own, closed at the end of the test.
func newTestRuntime(t testing.TB) *Runtime {
	t.Helper()
	requireRoot(t)
	r, err := NewRuntime(Options{Root: filepath.Join(t.TempDir(), "runtime"), CgroupParent: testParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close runtime: %v", err)
		}
	})
	return r
}

// testSpec returns DefaultSpec for args on a fresh busybox rootfs, with
// adjust applied to the options.
func testSpec(t testing.TB, args []string, adjust func(*SpecOptions)) *specs.Spec {
	t.Helper()
	o := SpecOptions{Rootfs: rootfs(t), Args: args, Hostname: "test"}
	if adjust != nil {
		adjust(&o)
	}
	s, _, err := DefaultSpec(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// syncBuffer is a bytes.Buffer safe for the copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run creates and starts a container and returns it with its output
// buffers; the container is destroyed at the end of the test.
func run(t *testing.T, r *Runtime, id string, spec *specs.Spec, stdin io.Reader) (*Container, *syncBuffer, *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	c, err := r.Create(ctx, id, spec)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Destroy(context.Background()); err != nil {
			t.Errorf("destroy: %v", err)
		}
	})
	var stdout, stderr syncBuffer
	if _, err := c.Start(ctx, Stdio{Stdin: stdin, Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatalf("start: %v", err)
	}
	return c, &stdout, &stderr
}

// wait waits for the container's exit, bounded by the test's deadline.
func wait(t *testing.T, c *Container) ExitStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return st
}

func TestWharfdInitDispatch(t *testing.T) {
	if wharfdBin == "" {
		t.Fatalf("wharfd did not build: %v", buildErr)
	}
	// Without libcontainer's pipes, the init fails in libcontainer.Init
	// (not in the flag parser, which would refuse "init"): the proof that
	// main hands over before parsing anything.
	cmd := exec.Command(wharfdBin, InitArg, "--not-a-flag")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 {
		t.Fatalf("wharfd init: want exit 255, got %v (%s)", err, out)
	}
	if !strings.Contains(string(out), "_LIBCONTAINER_SYNCPIPE") {
		t.Fatalf("wharfd init did not reach libcontainer's init: %s", out)
	}
	// nsexec, the cgo half, is linked in: with an init pipe that is not
	// one, it fails before Go starts, in C.
	cmd = exec.Command(wharfdBin, InitArg)
	cmd.Env = []string{"_LIBCONTAINER_INITPIPE=999"}
	out, _ = cmd.CombinedOutput()
	if !strings.Contains(string(out), "failed to read netlink header") {
		t.Fatalf("wharfd has no nsexec constructor: %s", out)
	}
}

func TestRunOutputAndExitCode(t *testing.T) {
	r := newTestRuntime(t)
	tests := []struct {
		name       string
		giveArgs   []string
		giveStdin  string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "echo", giveArgs: []string{"echo", "hi"}, wantStdout: "hi\n"},
		{name: "exit 3", giveArgs: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, wantCode: 3, wantStdout: "out\n", wantStderr: "err\n"},
		{name: "stdin", giveArgs: []string{"cat"}, giveStdin: "fed\n", wantStdout: "fed\n"},
		{name: "hostname", giveArgs: []string{"hostname"}, wantStdout: "test\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin io.Reader
			if tt.giveStdin != "" {
				stdin = strings.NewReader(tt.giveStdin)
			}
			c, stdout, stderr := run(t, r, fmt.Sprintf("out%d", i), testSpec(t, tt.giveArgs, nil), stdin)
			st := wait(t, c)
			if st.Code != tt.wantCode || st.OOMKilled {
				t.Errorf("exit: got %+v, want code %d", st, tt.wantCode)
			}
			if got := stdout.String(); got != tt.wantStdout {
				t.Errorf("stdout: got %q, want %q", got, tt.wantStdout)
			}
			if got := stderr.String(); got != tt.wantStderr {
				t.Errorf("stderr: got %q, want %q", got, tt.wantStderr)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	r := newTestRuntime(t)
	spec := testSpec(t, []string{"sh", "-c", "tty; stty size"}, func(o *SpecOptions) {
		o.Terminal, o.ConsoleWidth, o.ConsoleHeight = true, 100, 30
	})
	c, stdout, _ := run(t, r, "tty", spec, nil)
	if st := wait(t, c); st.Code != 0 {
		t.Fatalf("exit %d: %q", st.Code, stdout.String())
	}
	if got, want := stdout.String(), "/dev/pts/0\r\n30 100\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOOMKilled(t *testing.T) {
	r := newTestRuntime(t)
	// The shell doubles a string until the 8 MiB limit stops it.
	spec := testSpec(t, []string{"sh", "-c", "a=aaaaaaaa; while :; do a=$a$a; done"}, func(o *SpecOptions) {
		o.Memory = 8 << 20
	})
	c, _, stderr := run(t, r, "oom", spec, nil)
	st := wait(t, c)
	if st.Code != 137 || !st.OOMKilled {
		t.Fatalf("got %+v (stderr %q), want 137 and OOMKilled", st, stderr.String())
	}
}

func TestPidsLimit(t *testing.T) {
	r := newTestRuntime(t)
	// The limit counts threads too, and libcontainer's init is a Go
	// process with several until it execs the command: a limit of 5 let
	// the init itself fail now and then ("container process is already
	// dead"). 16 leaves it room; 40 children still cannot fit.
	spec := testSpec(t, []string{"sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done; echo started $i"}, func(o *SpecOptions) {
		o.PidsLimit = 16
	})
	c, stdout, stderr := run(t, r, "pids", spec, nil)
	st := wait(t, c)
	if !strings.Contains(stderr.String(), "can't fork") {
		t.Fatalf("forks were not refused: exit %d, stdout %q, stderr %q", st.Code, stdout.String(), stderr.String())
	}
}

func TestReadonlyRootfs(t *testing.T) {
	r := newTestRuntime(t)
	spec := testSpec(t, []string{"sh", "-c", "touch /x && echo wrote; touch /dev/shm/y && echo shm"}, func(o *SpecOptions) {
		o.ReadonlyRootfs = true
	})
	c, stdout, stderr := run(t, r, "ro", spec, nil)
	wait(t, c)
	if stdout.String() != "shm\n" || !strings.Contains(stderr.String(), "Read-only file system") {
		t.Fatalf("stdout %q, stderr %q: want the write to / refused and /dev/shm writable", stdout.String(), stderr.String())
	}
}

func TestDefaults(t *testing.T) {
	r := newTestRuntime(t)
	script := `grep -E '^Cap(Bnd|Eff)|^NoNewPrivs|^Seccomp:' /proc/self/status
df -k /dev/shm | tail -1 | awk '{print "shm", $2}'
cat /proc/kcore | wc -c
echo x > /proc/sys/kernel/hostname 2>/dev/null || echo procsys-ro`
	spec := testSpec(t, []string{"sh", "-c", script}, func(o *SpecOptions) {
		o.NoNewPrivileges = true
		o.ShmSize = 32 << 20
	})
	c, stdout, stderr := run(t, r, "defaults", spec, nil)
	if st := wait(t, c); st.Code != 0 {
		t.Fatalf("exit %d: %s %s", st.Code, stdout, stderr)
	}
	out := stdout.String()
	// dockerd's 14 default capabilities: 0x00000000a80425fb.
	for _, want := range []string{"CapBnd:\t00000000a80425fb", "CapEff:\t00000000a80425fb", "NoNewPrivs:\t1", "shm 32768", "\n0\n", "procsys-ro"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	wantSeccomp := "Seccomp:\t0"
	if SeccompSupported() {
		wantSeccomp = "Seccomp:\t2"
	}
	if !strings.Contains(out, wantSeccomp) {
		t.Errorf("want %q in:\n%s", wantSeccomp, out)
	}
}

func TestExec(t *testing.T) {
	r := newTestRuntime(t)
	c, _, _ := run(t, r, "exec", testSpec(t, []string{"sleep", "1000"}, nil), nil)
	ctx := context.Background()
	tests := []struct {
		name       string
		giveArgs   []string
		giveTty    bool
		wantCode   int
		wantStdout string
	}{
		{name: "exit code", giveArgs: []string{"sh", "-c", "echo in; exit 7"}, wantCode: 7, wantStdout: "in\n"},
		{name: "sees init", giveArgs: []string{"sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, wantStdout: "sleep 1000 "},
		{name: "tty", giveArgs: []string{"tty"}, giveTty: true, wantStdout: "/dev/pts/0\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc := c.Spec().Process
			proc.Args, proc.Terminal = tt.giveArgs, tt.giveTty
			var stdout syncBuffer
			p, err := c.Exec(ctx, proc, Stdio{Stdout: &stdout})
			if err != nil {
				t.Fatal(err)
			}
			st, err := p.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tt.wantCode || stdout.String() != tt.wantStdout {
				t.Errorf("got %d %q, want %d %q", st.Code, stdout.String(), tt.wantCode, tt.wantStdout)
			}
		})
	}
	t.Run("missing command", func(t *testing.T) {
		proc := c.Spec().Process
		proc.Args = []string{"nope"}
		_, err := c.Exec(ctx, proc, Stdio{})
		var se *StartError
		if !errors.As(err, &se) || se.ExitCode != 127 || !errdefs.IsInvalidArgument(err) {
			t.Fatalf("got %v, want a StartError with exit code 127", err)
		}
	})
	t.Run("signal exec", func(t *testing.T) {
		proc := c.Spec().Process
		proc.Args = []string{"sleep", "1000"}
		p, err := c.Exec(ctx, proc, Stdio{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		st, err := p.Wait(ctx)
		if err != nil || st.Code != 143 || st.Signal != syscall.SIGTERM {
			t.Fatalf("got %+v %v, want 143 by SIGTERM", st, err)
		}
	})
}

func TestSignalInit(t *testing.T) {
	r := newTestRuntime(t)
	tests := []struct {
		name     string
		giveSig  syscall.Signal
		givePID  string
		wantCode int
	}{
		// The kernel drops signals without a handler sent to a PID
		// namespace's init, except SIGKILL: in the host's PID namespace
		// SIGTERM kills it as any process.
		{name: "SIGTERM", giveSig: syscall.SIGTERM, givePID: NamespaceHost, wantCode: 143},
		{name: "SIGKILL", giveSig: syscall.SIGKILL, wantCode: 137},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(t, []string{"sleep", "1000"}, func(o *SpecOptions) { o.PID = tt.givePID })
			c, _, _ := run(t, r, fmt.Sprintf("sig%d", i), spec, nil)
			if err := c.Signal(tt.giveSig); err != nil {
				t.Fatal(err)
			}
			if st := wait(t, c); st.Code != tt.wantCode || st.Signal != tt.giveSig {
				t.Fatalf("got %+v, want %d", st, tt.wantCode)
			}
			if err := c.Signal(tt.giveSig); !errors.Is(err, ErrNotRunning) || !errdefs.IsConflict(err) {
				t.Fatalf("signal after exit: got %v, want ErrNotRunning", err)
			}
		})
	}
}

func TestPauseResumeStatsProcesses(t *testing.T) {
	r := newTestRuntime(t)
	c, _, _ := run(t, r, "pause", testSpec(t, []string{"sleep", "1000"}, func(o *SpecOptions) { o.PidsLimit = 10 }), nil)
	status := func(want Status) {
		t.Helper()
		if got, err := c.Status(); err != nil || got != want {
			t.Fatalf("status: got %q %v, want %q", got, err, want)
		}
	}
	status(StatusRunning)

	pids, err := c.Processes()
	if err != nil || !slices.Contains(pids, c.Init().Pid()) {
		t.Fatalf("processes: got %v %v, want the init %d", pids, err, c.Init().Pid())
	}
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Memory.Usage == 0 || st.Pids.Current == 0 || st.Pids.Limit != 10 || st.CPU.SystemUsage == 0 || st.CPU.OnlineCPUs == 0 {
		t.Errorf("stats: %+v", st)
	}

	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	status(StatusPaused)
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	status(StatusRunning)
	if err := c.Resume(); !errdefs.IsConflict(err) {
		t.Fatalf("resume of a running container: got %v, want a conflict", err)
	}

	limit := int64(1 << 30)
	if err := c.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}); err != nil {
		t.Fatal(err)
	}
	if st, err = c.Stats(); err != nil || st.Memory.Limit != uint64(limit) {
		t.Fatalf("limit after update: got %d %v, want %d", st.Memory.Limit, err, limit)
	}

	// Destroy kills a paused container too.
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := wait(t, c); st.Code != 137 {
		t.Fatalf("after destroy: got %+v, want 137", st)
	}
}

func TestDestroyRemovesEverything(t *testing.T) {
	r := newTestRuntime(t)
	spec := testSpec(t, []string{"sleep", "1000"}, nil)
	c, _, _ := run(t, r, "gone", spec, nil)
	cg := c.Spec().Linux.CgroupsPath
	if len(cgroupDirs(t, cg)) == 0 {
		t.Fatalf("no cgroup %s while running", cg)
	}
	if err := c.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dirs := cgroupDirs(t, cg); len(dirs) != 0 {
		t.Errorf("cgroup left: %v", dirs)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state left: %v", err)
	}
	if _, err := r.Get("gone"); !errdefs.IsNotFound(err) {
		t.Errorf("get after destroy: %v", err)
	}
	if _, err := c.Status(); !errdefs.IsNotFound(err) {
		t.Errorf("status after destroy: %v", err)
	}
}

func TestFailuresLeaveNothing(t *testing.T) {
	r := newTestRuntime(t)
	ctx := context.Background()
	good := testSpec(t, []string{"true"}, nil)
	relative := testSpec(t, []string{"true"}, nil)
	relative.Root.Path = "rootfs"
	badMount := testSpec(t, []string{"true"}, nil)
	badMount.Mounts = append(badMount.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent-wharfd", Options: []string{"rbind"}})

	tests := []struct {
		name      string
		giveID    string
		giveSpec  *specs.Spec
		wantClass func(error) bool
		wantCode  int // of a StartError; 0 for none
	}{
		{name: "bad id", giveID: "a/b", giveSpec: good, wantClass: errdefs.IsInvalidArgument},
		{name: "relative rootfs", giveID: "rel", giveSpec: relative, wantClass: errdefs.IsInvalidArgument},
		{name: "missing command", giveID: "nocmd", giveSpec: testSpec(t, []string{"nope"}, nil), wantClass: errdefs.IsInvalidArgument, wantCode: 127},
		{name: "missing bind source", giveID: "nobind", giveSpec: badMount, wantClass: func(error) bool { return true }},
	}
	// Descriptors libcontainer opens once (a procfs handle, the root) are
	// open after a first failed start.
	if c, err := r.Create(ctx, "warmup", testSpec(t, []string{"nope"}, nil)); err == nil {
		_, _ = c.Start(ctx, Stdio{})
	}
	before := snapshot(t, r)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Create(ctx, tt.giveID, tt.giveSpec)
			if err == nil {
				_, err = c.Start(ctx, Stdio{})
			}
			if err == nil || !tt.wantClass(err) {
				t.Fatalf("got %v", err)
			}
			var se *StartError
			if tt.wantCode != 0 && (!errors.As(err, &se) || se.ExitCode != tt.wantCode) {
				t.Fatalf("got %v, want a StartError with exit code %d", err, tt.wantCode)
			}
			if _, err := r.Get(tt.giveID); !errdefs.IsNotFound(err) {
				t.Errorf("container still known: %v", err)
			}
		})
	}
	if after := snapshot(t, r); !after.equal(before) {
		t.Errorf("leftovers:\nbefore %+v\nafter  %+v", before, after)
	}

	t.Run("duplicate id", func(t *testing.T) {
		c, err := r.Create(ctx, "dup", good)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Destroy(ctx)
		if _, err := r.Create(ctx, "dup", good); !errdefs.IsAlreadyExists(err) {
			t.Fatalf("got %v, want already exists", err)
		}
	})
}

func TestRlimitClamped(t *testing.T) {
	r := newTestRuntime(t)
	var host syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &host); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, []string{"sh", "-c", "ulimit -n; ulimit -Hn"}, func(o *SpecOptions) {
		o.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: host.Max + 1000, Hard: host.Max + 1000}}
	})
	c, stdout, stderr := run(t, r, "rlimit", spec, nil)
	if st := wait(t, c); st.Code != 0 {
		t.Fatalf("exit %d: %s", st.Code, stderr)
	}
	want := fmt.Sprintf("%d\n%d\n", host.Max, host.Max)
	if stdout.String() != want {
		t.Errorf("got %q, want %q", stdout.String(), want)
	}
	if len(c.Warnings()) != 1 || !strings.Contains(c.Warnings()[0], "RLIMIT_NOFILE") {
		t.Errorf("warnings: %q", c.Warnings())
	}
}

func TestStaleContainersCleaned(t *testing.T) {
	requireRoot(t)
	root := filepath.Join(t.TempDir(), "runtime")
	parent := testParent(t)
	r1, err := NewRuntime(Options{Root: root, CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := run(t, r1, "left", testSpec(t, []string{"sleep", "1000"}, nil), nil)
	pid := c.Init().Pid()
	// A second runtime on the same root stands for the daemon's next run
	// after a crash: it finds the container and removes it.
	r2, err := NewRuntime(Options{Root: root, CgroupParent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Stale(); !slices.Equal(got, []string{"left"}) {
		t.Fatalf("stale: %v", got)
	}
	if st := wait(t, c); st.Code != 137 {
		t.Fatalf("stale container: got %+v, want killed", st)
	}
	if dirs := cgroupDirs(t, c.Spec().Linux.CgroupsPath); len(dirs) != 0 {
		t.Errorf("cgroup left: %v", dirs)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d: %v", pid, err)
	}
	for _, r := range []*Runtime{r2, r1} {
		if err := r.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}
}

// leftovers is what a container could leave behind in the test process
// and on the host.
type leftovers struct {
	MountNS string // the main thread's, which libcontainer must not move
	// Mounts counts the mount points under the test's temporary root
	// (rootfs, runtime root): the host's other mounts come and go with
	// whatever else runs on the machine, other test packages included.
	Mounts   int
	Fds      int
	Children []int
	Cgroups  []string
	State    []string
}

func (a leftovers) equal(b leftovers) bool {
	return a.MountNS == b.MountNS && a.Mounts == b.Mounts && a.Fds == b.Fds && slices.Equal(a.Children, b.Children) &&
		slices.Equal(a.Cgroups, b.Cgroups) && slices.Equal(a.State, b.State)
}

func snapshot(t testing.TB, r *Runtime) leftovers {
	t.Helper()
	var res leftovers
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	res.MountNS = ns
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	res.Mounts = strings.Count(string(mi), " "+filepath.Dir(t.TempDir()))
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		// libcontainer (v1.5.3) does not close the O_PATH descriptor of the
		// exec fifo of an init that failed to start; only its finalizer
		// does, at some garbage collection.
		if l, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); !strings.HasSuffix(l, "/exec.fifo (deleted)") {
			res.Fds++
		}
	}
	res.Children = children(t)
	for _, d := range cgroupDirs(t, r.parent) {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				res.Cgroups = append(res.Cgroups, filepath.Join(d, e.Name()))
			}
		}
	}
	entries, _ := os.ReadDir(r.Root())
	for _, e := range entries {
		res.State = append(res.State, e.Name())
	}
	return res
}

// children lists the PIDs whose parent is the test process.
func children(t testing.TB) []int {
	t.Helper()
	var out []int
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "children"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestNoLeaks(t *testing.T) {
	r := newTestRuntime(t)
	spec := testSpec(t, []string{"sh", "-c", "echo hi"}, nil)
	ctx := context.Background()
	cycle := func(i int) {
		c, err := r.Create(ctx, fmt.Sprintf("leak%d", i), spec)
		if err != nil {
			t.Fatal(err)
		}
		var out syncBuffer
		if _, err := c.Start(ctx, Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard}); err != nil {
			t.Fatal(err)
		}
		if st := wait(t, c); st.Code != 0 || out.String() != "hi\n" {
			t.Fatalf("cycle %d: %+v %q", i, st, out.String())
		}
		if err := c.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cycle(-1) // lazily opened descriptors and goroutines settle
	before := snapshot(t, r)
	goroutines := goleak.IgnoreCurrent()
	const n = 50
	for i := range n {
		cycle(i)
	}
	if after := snapshot(t, r); !after.equal(before) {
		t.Errorf("after %d cycles:\nbefore %+v\nafter  %+v", n, before, after)
	}
	if got := snapshot(t, r).MountNS; got != mountNS {
		t.Errorf("the main thread is in mount namespace %s, not the process's %s", got, mountNS)
	}
	if err := goleak.Find(goroutines); err != nil {
		t.Error(err)
	}
}

func TestCreateAfterClose(t *testing.T) {
	requireRoot(t)
	r, err := NewRuntime(Options{Root: filepath.Join(t.TempDir(), "runtime"), CgroupParent: testParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, []string{"sleep", "1000"}, nil)
	c, err := r.Create(context.Background(), "closing", spec)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Start(context.Background(), Stdio{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(context.Background()); err != nil || st.Code != 137 {
		t.Fatalf("close did not kill the container: %+v %v", st, err)
	}
	if _, err := os.Stat(r.Root()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root left after close: %v", err)
	}
	if _, err := r.Create(context.Background(), "late", spec); !errdefs.IsUnavailable(err) {
		t.Fatalf("create after close: got %v, want unavailable", err)
	}
}
