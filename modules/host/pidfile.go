package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/errdefs"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/wharfd/wharfd/modules/config"
)

// Pidfile is the pidfile stage's value: the daemon's pid file, written
// with the daemon's pid before any other file. Path is empty (and the
// stage skipped) when no pidfile is configured.
type Pidfile struct {
	// Path is the pid file's absolute path.
	Path string
}

// SkipReason reports why no pidfile was written.
func (p Pidfile) SkipReason() string {
	if p.Path == "" {
		return "no pidfile configured"
	}
	return ""
}

// PidfileParams are the inputs of the pidfile stage.
type PidfileParams struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Config     *config.Config
	Logger     *zap.Logger
	Privileged Privileged
}

// NewPidfile is the pidfile stage. It writes the daemon's pid to
// cfg.Pidfile (creating its directory 0755), and appends a hook that
// removes it when the daemon stops, if it still holds our pid.
//
// As dockerd: a pidfile whose process is alive refuses the start with
// "process with PID N is still running", an errdefs Conflict naming the
// file; a pidfile left by a process that has gone (a crash), or holding
// no valid pid, is overwritten. A pidfile holding our own pid (a restarted
// container whose pid 1 is the daemon again) is stale too. Two daemons
// racing for the file cannot both win: it is created exclusively.
func NewPidfile(p PidfileParams) (Pidfile, error) {
	if p.Config.Pidfile == "" {
		return Pidfile{}, nil
	}
	path, err := filepath.Abs(p.Config.Pidfile)
	if err != nil {
		return Pidfile{}, fmt.Errorf("pidfile %q: %w", p.Config.Pidfile, err)
	}
	if err := writePidfile(path, os.Getpid()); err != nil {
		return Pidfile{}, err
	}
	log := p.Logger.With(zap.String("module", "host"))
	p.Lifecycle.Append(fx.Hook{
		OnStop: func(context.Context) error {
			if err := removePidfile(path, os.Getpid()); err != nil {
				log.Warn("pidfile not removed", zap.String("path", path), zap.Error(err))
			}
			return nil
		},
	})
	return Pidfile{Path: path}, nil
}

// writePidfile writes pid to path, refusing while another live process
// holds it.
func writePidfile(path string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pidfile directory: %w", err)
	}
	// Two tries: the second after removing a stale file.
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			_, werr := f.WriteString(strconv.Itoa(pid))
			cerr := f.Close()
			if err := errors.Join(werr, cerr); err != nil {
				os.Remove(path)
				return fmt.Errorf("write pidfile %s: %w", path, err)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create pidfile: %w", err)
		}
		old, err := readPid(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read pidfile: %w", err)
		}
		if old != 0 && old != pid && alive(old) {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf(
				"pidfile %s: process with PID %d is still running; ensure wharfd is not running or delete %s", path, old, path))
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale pidfile: %w", err)
		}
	}
	return fmt.Errorf("pidfile %s: created by another process while starting", path)
}

// readPid returns the pid in the file, 0 when it holds no valid pid.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid < 1 {
		return 0, nil
	}
	return pid, nil
}

// alive reports whether a process with the pid exists (a zombie counts).
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// removePidfile removes path if it still holds pid.
func removePidfile(path string, pid int) error {
	got, err := readPid(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if got != pid {
		return fmt.Errorf("pidfile holds PID %d, not ours (%d)", got, pid)
	}
	return os.Remove(path)
}
