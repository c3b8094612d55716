package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups/systemd"
	"github.com/opencontainers/runc/libcontainer"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

// Defaults of Options.
const (
	// DefaultCgroupParent is the parent of containers' cgroups with the
	// cgroupfs driver (dockerd's is /docker).
	DefaultCgroupParent = "/wharfd"
	// DefaultSystemdSlice is the parent slice of containers' scopes with
	// the systemd driver, as dockerd's.
	DefaultSystemdSlice = "system.slice"
	// ScopePrefix names containers' systemd scopes: wharfd-<id>.scope.
	ScopePrefix = "wharfd"
	// StateDirName is the directory of the runtime's state under the
	// daemon's exec root.
	StateDirName = "runtime"
)

// Options configure a Runtime.
type Options struct {
	// Root is the directory of libcontainer's state, one subdirectory
	// per container (the daemon's <exec-root>/runtime). It is created
	// 0700 when missing.
	Root string
	// CgroupDriver is config.CgroupDriverCgroupfs (the default, also for
	// "") or config.CgroupDriverSystemd, which needs a running systemd.
	CgroupDriver string
	// CgroupParent is the parent of the cgroups of containers whose spec
	// has no cgroupsPath: a path with cgroupfs (default
	// DefaultCgroupParent), a slice with systemd (default
	// DefaultSystemdSlice).
	CgroupParent string
	// Logger receives warnings and the cleanup of containers left by a
	// previous run; nil discards them.
	Logger *zap.Logger
}

// Runtime drives containers in-process through libcontainer: no
// containerd, no shim. The container init is the daemon's own binary,
// re-executed as "<binary> init" from a sealed copy (runc 1.5 mounts a
// read-only overlayfs over /proc/self/exe, or copies it to a sealed
// memfd), so a container cannot overwrite the host's binary; main must
// therefore hand over to Init when IsInit(os.Args).
//
// Containers' processes are children of the daemon: if the daemon dies
// they keep running, and the next NewRuntime on the same Root kills and
// removes them (Stale reports which). A Runtime is safe for concurrent
// use.
type Runtime struct {
	root    string
	systemd bool
	parent  string
	log     *zap.Logger

	mu         sync.Mutex
	containers map[string]*Container
	closed     bool
	stale      []string
}

// NewRuntime opens a runtime on opts.Root: it creates the directory, and
// kills and removes every container state a previous run left there
// (their cgroups included). The systemd driver is refused, with
// dockerd's wording, when systemd is not running.
func NewRuntime(opts Options) (*Runtime, error) {
	if opts.Root == "" || !filepath.IsAbs(opts.Root) {
		return nil, fmt.Errorf("runtime root %q: must be an absolute path: %w", opts.Root, errdefs.ErrInvalidArgument)
	}
	r := &Runtime{
		root:       opts.Root,
		parent:     opts.CgroupParent,
		log:        opts.Logger,
		containers: make(map[string]*Container),
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	switch opts.CgroupDriver {
	case "", config.CgroupDriverCgroupfs:
		if r.parent == "" {
			r.parent = DefaultCgroupParent
		}
	case config.CgroupDriverSystemd:
		if !systemd.IsRunningSystemd() {
			return nil, errors.New("systemd cgroup flag passed, but systemd support for managing cgroups is not available")
		}
		r.systemd = true
		if r.parent == "" {
			r.parent = DefaultSystemdSlice
		}
	default:
		return nil, fmt.Errorf("native.cgroupdriver option %s not supported: %w", opts.CgroupDriver, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return nil, fmt.Errorf("create runtime root: %w", err)
	}
	if err := r.cleanStale(); err != nil {
		return nil, err
	}
	return r, nil
}

// Params are the needs of stage 2.4 runtime.
type Params struct {
	fx.In

	Config   *config.Config
	Verified config.Verified
	// ExecRoot is the exec root made by stage 3.7, after the root check
	// and the pidfile: the runtime writes nothing before them.
	ExecRoot  host.ExecRoot
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
}

// New is stage 2.4 runtime: a Runtime with its state under
// <exec-root>/runtime, the cgroup driver and parent of the configuration
// (exec-opt native.cgroupdriver, cgroup-parent). Its stop hook kills and
// removes the containers still there, which must not outlive the daemon
// (there is no live-restore).
func New(p Params) (*Runtime, error) {
	r, err := NewRuntime(Options{
		Root:         filepath.Join(p.ExecRoot.Path, StateDirName),
		CgroupDriver: p.Config.CgroupDriver(),
		CgroupParent: p.Config.CgroupParent,
		Logger:       p.Logger.With(zap.String("module", "runtime")),
	})
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: r.Close})
	return r, nil
}

// Root returns the directory of the runtime's state.
func (r *Runtime) Root() string { return r.root }

// Stale returns the IDs of the containers a previous run of the daemon
// left behind, which NewRuntime killed and removed: the daemon marks them
// exited (killed: exit status 137).
func (r *Runtime) Stale() []string { return slices.Clone(r.stale) }

// Get returns the container with the given ID, or an error wrapping
// errdefs.ErrNotFound.
func (r *Runtime) Get(id string) (*Container, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

// List returns the IDs of the runtime's containers, sorted.
func (r *Runtime) List() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.containers))
	for id := range r.containers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Close kills and destroys every container of the runtime (their
// processes, cgroups and state) and removes the state directory when it
// is empty. Later Creates fail. ctx bounds the wait for the processes to
// die.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	list := make([]*Container, 0, len(r.containers))
	for _, c := range r.containers {
		list = append(list, c)
	}
	r.mu.Unlock()
	var errs []error
	for _, c := range list {
		if err := c.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(r.root); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanStale kills and destroys the containers found in the state
// directory: they belong to a previous run of the daemon, which nothing
// can wait for any more.
func (r *Runtime) cleanStale() error {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		return fmt.Errorf("read runtime root: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id := e.Name()
		if err := destroyStale(r.root, id); err != nil {
			r.log.Warn("cannot remove stale container", zap.String("container", id), zap.Error(err))
			continue
		}
		r.log.Info("removed container left by a previous run", zap.String("container", id))
		r.stale = append(r.stale, id)
	}
	return nil
}

// destroyStale kills the processes of a container loaded from its state
// and removes its cgroup and state directory.
func destroyStale(root, id string) error {
	lc, err := libcontainer.Load(root, id)
	if err != nil {
		// No readable state.json: a create that did not get far. There is
		// no cgroup or process to know about.
		return os.RemoveAll(filepath.Join(root, id))
	}
	st, err := lc.State()
	if err != nil {
		return err
	}
	status, err := lc.Status()
	if err != nil {
		return err
	}
	if status == libcontainer.Paused {
		_ = lc.Resume()
	}
	if status != libcontainer.Stopped {
		pid := st.InitProcessPid
		fd, perr := unix.PidfdOpen(pid, 0)
		if err := lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, libcontainer.ErrNotRunning) {
			if perr == nil {
				unix.Close(fd)
			}
			return err
		}
		if perr == nil {
			// Not our child: wait for its death on a pidfd.
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(pfd, -1); !errors.Is(err, unix.EINTR) {
					break
				}
			}
			unix.Close(fd)
		}
	}
	if err := lc.Destroy(); err != nil {
		return err
	}
	// The init is gone; processes of a shared PID namespace may remain.
	if m, err := cgroupManager(lc); err == nil && m.Exists() {
		_ = m.Destroy()
	}
	return nil
}

// cgroupPath returns the cgroup of container id when its spec has none:
// <parent>/<id> with cgroupfs, <slice>:wharfd:<id> with systemd.
func (r *Runtime) cgroupPath(id string) string {
	if r.systemd {
		return r.parent + ":" + ScopePrefix + ":" + id
	}
	return filepath.Join(r.parent, id)
}
