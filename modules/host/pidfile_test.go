package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// livePID starts a process that lives until the test ends, and returns
// its pid.
func livePID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestWritePidfile(t *testing.T) {
	live := livePID(t)
	tests := []struct {
		name    string
		give    *string // pidfile content before; nil for none
		wantErr string
	}{
		{name: "no pidfile"},
		{name: "stale pid of a dead process", give: ptr(strconv.Itoa(deadPID(t)))},
		{name: "garbage", give: ptr("not a pid\n")},
		{name: "empty", give: ptr("")},
		{name: "our own pid", give: ptr(strconv.Itoa(os.Getpid()))},
		{name: "live process", give: ptr(strconv.Itoa(live) + "\n"),
			wantErr: fmt.Sprintf("process with PID %d is still running", live)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "run", "wharfd.pid")
			if tt.give != nil {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, []byte(*tt.give), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := writePidfile(path, os.Getpid())
			got, _ := os.ReadFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("err = %v, want %q naming %s", err, tt.wantErr, path)
				}
				if !errdefs.IsConflict(err) {
					t.Errorf("err is not a conflict: %v", err)
				}
				if string(got) != *tt.give {
					t.Errorf("pidfile changed to %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != strconv.Itoa(os.Getpid()) {
				t.Errorf("pidfile holds %q, want our pid %d", got, os.Getpid())
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestNewPidfileRemovedOnStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wharfd.pid")
	lc := fxtest.NewLifecycle(t)
	pf, err := NewPidfile(PidfileParams{Lifecycle: lc, Config: &config.Config{Pidfile: path}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if pf.Path != path || pf.SkipReason() != "" {
		t.Fatalf("pidfile = %+v, reason %q", pf, pf.SkipReason())
	}
	lc.RequireStart()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("pidfile missing while running: %v", err)
	}
	lc.RequireStop()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pidfile still there after stop (err %v)", err)
	}
}

func TestNewPidfileKeepsAnotherProcesssFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wharfd.pid")
	lc := fxtest.NewLifecycle(t)
	if _, err := NewPidfile(PidfileParams{Lifecycle: lc, Config: &config.Config{Pidfile: path}, Logger: zap.NewNop()}); err != nil {
		t.Fatal(err)
	}
	lc.RequireStart()
	// Someone replaced the file (an operator, another daemon): not ours
	// to remove.
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("another process's pidfile was removed: %v", err)
	}
}

func TestNewPidfileNone(t *testing.T) {
	pf, err := NewPidfile(PidfileParams{Lifecycle: fxtest.NewLifecycle(t), Config: &config.Config{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if pf.SkipReason() == "" {
		t.Error("no pidfile configured, but the stage does not report skipped")
	}
}
