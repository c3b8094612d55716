package host

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// StackDumper writes the stacks of all goroutines to a file under the
// exec root, on SIGUSR1 while the daemon runs (as dockerd) or when Dump
// is called.
type StackDumper struct {
	dir string
	log *zap.Logger
	now func() time.Time
	// dumped, when set (tests), is called with each file written on a
	// signal.
	dumped func(path string)
}

// StackDumperParams are the inputs of the stack-dump stage.
type StackDumperParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	ExecRoot  ExecRoot
	Logger    *zap.Logger
}

// NewStackDumper is the stack-dump stage: its hook starts a goroutine
// that dumps the stacks on each SIGUSR1, logging the file's path, and
// stops it (restoring SIGUSR1's default action) when the daemon stops.
func NewStackDumper(p StackDumperParams) *StackDumper {
	d := &StackDumper{dir: p.ExecRoot.Path, log: p.Logger.With(zap.String("module", "host")), now: time.Now}
	var (
		sigs chan os.Signal
		done chan struct{}
	)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			sigs, done = make(chan os.Signal, 1), make(chan struct{})
			signal.Notify(sigs, syscall.SIGUSR1)
			go func() {
				defer close(done)
				for range sigs {
					path, err := d.Dump()
					if err != nil {
						d.log.Error("goroutine stacks not written", zap.Error(err))
						continue
					}
					d.log.Info("goroutine stacks written", zap.String("path", path))
					if d.dumped != nil {
						d.dumped(path)
					}
				}
			}()
			return nil
		},
		OnStop: func(context.Context) error {
			if sigs == nil {
				return nil
			}
			signal.Stop(sigs)
			close(sigs)
			<-done
			return nil
		},
	})
	return d
}

// Dump writes the stacks of all goroutines to
// <exec-root>/goroutine-stacks-<UTC time>.log (0600) and returns its
// path.
func (d *StackDumper) Dump() (string, error) {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	name := "goroutine-stacks-" + d.now().UTC().Format("2006-01-02T150405.000000000Z") + ".log"
	path := filepath.Join(d.dir, name)
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		return "", fmt.Errorf("write goroutine stacks: %w", err)
	}
	return path, nil
}
