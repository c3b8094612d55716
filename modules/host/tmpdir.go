package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// TmpDir is the value of stage 3.8 tmpdir: the daemon's temporary
// directory, also its TMPDIR while it runs.
type TmpDir struct {
	// Path is the directory's absolute path.
	Path string
}

// TmpDirParams are the inputs of stage 3.8 tmpdir.
type TmpDirParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Config    *config.Config
	Root      DataRoot
	Logger    *zap.Logger
}

// oldTmpPrefix names the directories a previous tmp is moved to before it
// is removed in the background; dockerd's "tmp-old" matches it too.
const oldTmpPrefix = "tmp-old"

// NewTmpDir is stage 3.8 tmpdir, as dockerd's: DOCKER_TMPDIR when set
// (created 0700 if missing, an existing one left as it is), else
// <root>/tmp, created empty and 0700: a tmp left by the previous run is
// renamed aside at once and removed, with any earlier leftovers, by a
// goroutine the hook starts (OnStop waits for it within the stop
// deadline). TMPDIR points at the directory while the daemon runs and is
// restored when it stops.
func NewTmpDir(p TmpDirParams) (TmpDir, error) {
	log := p.Logger.With(zap.String("module", "host"))
	dir, old, err := prepareTmpDir(p.Config.DockerTmpdir, p.Root.Path, log)
	if err != nil {
		return TmpDir{}, err
	}
	prev, hadPrev := os.LookupEnv("TMPDIR")
	if err := os.Setenv("TMPDIR", dir); err != nil {
		return TmpDir{}, fmt.Errorf("set TMPDIR: %w", err)
	}
	// Stop-only: it undoes the constructor's work, so a failed boot undoes
	// it too (pipeline's hook rule).
	p.Lifecycle.Append(fx.StopHook(func() {
		if hadPrev {
			os.Setenv("TMPDIR", prev)
		} else {
			os.Unsetenv("TMPDIR")
		}
	}))
	var done chan struct{}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			done = make(chan struct{})
			go func() {
				defer close(done)
				for _, o := range old {
					if err := os.RemoveAll(o); err != nil {
						log.Warn("old tmp directory not removed", zap.String("path", o), zap.Error(err))
					}
				}
			}()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if done == nil {
				return nil
			}
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("removing old tmp directories: %w", ctx.Err())
			}
		},
	})
	return TmpDir{Path: dir}, nil
}

// prepareTmpDir returns the temporary directory, ready, and the old ones
// to remove.
func prepareTmpDir(dockerTmpdir, root string, log *zap.Logger) (string, []string, error) {
	if dockerTmpdir != "" {
		dir, err := filepath.Abs(dockerTmpdir)
		if err != nil {
			return "", nil, fmt.Errorf("DOCKER_TMPDIR %q: %w", dockerTmpdir, err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("DOCKER_TMPDIR: %w", err)
		}
		return dir, nil, nil
	}
	dir := filepath.Join(root, "tmp")
	aside := filepath.Join(root, oldTmpPrefix+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	switch err := os.Rename(dir, aside); {
	case err == nil, errors.Is(err, fs.ErrNotExist):
	default:
		log.Warn("tmp directory not renamed for background removal; removing it now", zap.String("path", dir), zap.Error(err))
		if err := os.RemoveAll(dir); err != nil {
			return "", nil, fmt.Errorf("remove old tmp directory: %w", err)
		}
	}
	old, err := filepath.Glob(filepath.Join(root, oldTmpPrefix+"*"))
	if err != nil {
		return "", nil, fmt.Errorf("old tmp directories: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("tmp directory: %w", err)
	}
	return dir, old, nil
}
