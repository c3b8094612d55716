package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Status is the state of a container in the runtime.
type Status string

// The statuses of a container, as the OCI runtime spec's.
const (
	// StatusCreated: created, not started (or its start failed).
	StatusCreated Status = "created"
	// StatusRunning: its init runs.
	StatusRunning Status = "running"
	// StatusPaused: its processes are frozen.
	StatusPaused Status = "paused"
	// StatusStopped: its init has exited.
	StatusStopped Status = "stopped"
)

// Container is one container of a Runtime, from Create to Destroy. Its
// init can be started once; to run it again (docker restart), destroy it
// and create it anew. All methods are safe for concurrent use.
type Container struct {
	id       string
	r        *Runtime
	spec     *specs.Spec
	lc       *libcontainer.Container
	warnings []string

	mu        sync.Mutex
	init      *Process
	cgm       cgroups.Manager
	destroyed bool
}

// Create creates container id from an OCI runtime spec: it checks the
// spec, converts it to libcontainer's configuration (specconv) and
// writes the container's state under the runtime's root. No process or
// cgroup exists until Start. id is 1-1024 of [A-Za-z0-9_+.-] (the daemon
// uses 64 hex digits).
//
// The spec is copied, not kept. Its root path must be absolute. An
// empty linux.cgroupsPath gets one under the runtime's cgroup parent.
// An rlimit above the daemon's own hard limit (which the init inherits
// and which the container could not exceed without the host's
// privileges) is lowered to it, with a warning (Warnings): never a
// failed start.
//
// Errors: errdefs.ErrInvalidArgument for a bad ID or spec,
// errdefs.ErrAlreadyExists for an ID in use, errdefs.ErrUnavailable
// after Close. A failed Create leaves nothing behind.
func (r *Runtime) Create(ctx context.Context, id string, spec *specs.Spec) (_ *Container, retErr error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec == nil || spec.Root == nil || spec.Process == nil {
		return nil, fmt.Errorf("create %s: %w: %w", id, errNoSpec, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(spec.Root.Path) {
		return nil, fmt.Errorf("create %s: rootfs %q is not absolute: %w", id, spec.Root.Path, errdefs.ErrInvalidArgument)
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil && !SeccompSupported() {
		return nil, fmt.Errorf("create %s: seccomp is not enabled in your kernel, cannot run a custom seccomp profile: %w", id, errdefs.ErrInvalidArgument)
	}
	s, err := cloneSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.CgroupsPath == "" {
		s.Linux.CgroupsPath = r.cgroupPath(id)
	}
	warnings := clampRlimits(s.Process)
	if _, err := libcontainerProcess(s.Process); err != nil {
		return nil, fmt.Errorf("create %s: %w", id, err)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: r.systemd,
		Spec:             s,
	})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w: %w", id, err, errdefs.ErrInvalidArgument)
	}

	c := &Container{id: id, r: r, spec: s, warnings: warnings}
	r.mu.Lock()
	switch _, taken := r.containers[id]; {
	case r.closed:
		r.mu.Unlock()
		return nil, fmt.Errorf("create %s: runtime closed: %w", id, errdefs.ErrUnavailable)
	case taken:
		r.mu.Unlock()
		return nil, fmt.Errorf("create %s: %w", id, errdefs.ErrAlreadyExists)
	}
	r.containers[id] = c // reserved; lc set below
	r.mu.Unlock()
	defer func() {
		if retErr != nil {
			r.mu.Lock()
			delete(r.containers, id)
			r.mu.Unlock()
		}
	}()

	c.lc, err = libcontainer.Create(r.root, id, cfg)
	switch {
	case errors.Is(err, libcontainer.ErrExist):
		return nil, fmt.Errorf("create %s: %w", id, errdefs.ErrAlreadyExists)
	case errors.Is(err, libcontainer.ErrInvalidID):
		return nil, fmt.Errorf("create %q: invalid container ID: %w", id, errdefs.ErrInvalidArgument)
	case err != nil:
		return nil, fmt.Errorf("create %s: %w: %w", id, err, errdefs.ErrInvalidArgument)
	}
	for _, w := range warnings {
		r.log.Warn(w, zap.String("container", id))
	}
	return c, nil
}

// ID returns the container's ID.
func (c *Container) ID() string { return c.id }

// Spec returns a copy of the container's spec as created (cgroups path
// filled in, rlimits clamped).
func (c *Container) Spec() *specs.Spec {
	s, _ := cloneSpec(c.spec)
	return s
}

// Warnings returns the warnings of Create (clamped rlimits).
func (c *Container) Warnings() []string { return append([]string(nil), c.warnings...) }

// Start starts the container's init, the spec's process, with stdio, and
// returns it: Wait on it (or on the Container) for its exit. The process
// gets a pseudo-terminal when the spec's process.terminal is set; then
// Stdout receives all output and Process.Resize sizes it.
//
// Errors: a *StartError (errdefs.ErrInvalidArgument) when the command
// cannot be run, errdefs.ErrConflict when the init was started already,
// errdefs.ErrNotFound after Destroy. A failed Start destroys the
// container: no process, cgroup, mount or state remains (create it again
// to retry).
func (c *Container) Start(ctx context.Context, stdio Stdio) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.destroyed:
		return nil, fmt.Errorf("container %s: %w", c.id, errdefs.ErrNotFound)
	case c.init != nil:
		return nil, fmt.Errorf("container %s: already started: %w", c.id, errdefs.ErrConflict)
	}
	p, err := c.start(c.spec.Process, stdio, true)
	if err != nil {
		if derr := c.destroyLocked(); derr != nil {
			c.r.log.Warn("cannot remove container after a failed start", zap.String("container", c.id), zap.Error(derr))
		}
		return nil, fmt.Errorf("start %s: %w", c.id, err)
	}
	c.init = p
	if st, err := c.lc.State(); err == nil {
		c.cgm, _ = manager.NewWithPaths(st.Config.Cgroups, st.CgroupPaths)
	}
	return p, nil
}

// Init returns the container's init process, nil before Start.
func (c *Container) Init() *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.init
}

// Wait waits for the container's init to exit and returns its status
// (OOMKilled included). It fails with errdefs.ErrConflict before Start.
func (c *Container) Wait(ctx context.Context) (ExitStatus, error) {
	p := c.Init()
	if p == nil {
		return ExitStatus{}, fmt.Errorf("container %s: not started: %w", c.id, errdefs.ErrConflict)
	}
	return p.Wait(ctx)
}

// Signal sends sig to the container's init (docker kill, the stop
// signal). ErrNotRunning when it is not running.
func (c *Container) Signal(sig syscall.Signal) error {
	p := c.Init()
	if p == nil {
		return fmt.Errorf("container %s: %w", c.id, ErrNotRunning)
	}
	if err := p.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", c.id, err)
	}
	return nil
}

// Exec starts an additional process in the running container (docker
// exec) with the container's namespaces and cgroup. proc gives the
// command, environment, working directory, user, terminal and
// capabilities: build it from the container's Spec().Process. Errors:
// ErrNotRunning, *StartError for a command that cannot run.
func (c *Container) Exec(ctx context.Context, proc *specs.Process, stdio Stdio) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.init == nil || c.destroyed {
		return nil, fmt.Errorf("exec in %s: %w", c.id, ErrNotRunning)
	}
	select {
	case <-c.init.done:
		return nil, fmt.Errorf("exec in %s: %w", c.id, ErrNotRunning)
	default:
	}
	p, err := c.start(proc, stdio, false)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.id, err)
	}
	return p, nil
}

// Status returns the container's status.
func (c *Container) Status() (Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed {
		return "", fmt.Errorf("container %s: %w", c.id, errdefs.ErrNotFound)
	}
	st, err := c.lc.Status()
	if err != nil {
		return "", err
	}
	switch st {
	case libcontainer.Running:
		return StatusRunning, nil
	case libcontainer.Paused:
		return StatusPaused, nil
	case libcontainer.Stopped:
		if c.init == nil {
			return StatusCreated, nil
		}
		return StatusStopped, nil
	default:
		return StatusCreated, nil
	}
}

// Pause freezes every process of the container (the freezer cgroup),
// as docker pause. ErrNotRunning when it is not running.
func (c *Container) Pause() error {
	if err := c.running(); err != nil {
		return err
	}
	if err := c.lc.Pause(); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("pause %s: %w", c.id, ErrNotRunning)
		}
		return fmt.Errorf("pause %s: %w", c.id, err)
	}
	return nil
}

// Resume thaws a paused container (docker unpause); a container that is
// not paused gives an errdefs.ErrConflict.
func (c *Container) Resume() error {
	if err := c.lc.Resume(); err != nil {
		if errors.Is(err, libcontainer.ErrNotPaused) {
			return fmt.Errorf("resume %s: not paused: %w", c.id, errdefs.ErrConflict)
		}
		return fmt.Errorf("resume %s: %w", c.id, err)
	}
	return nil
}

// Processes returns the PIDs, in the daemon's PID namespace, of every
// process in the container's cgroup (docker top filters ps by them).
func (c *Container) Processes() ([]int, error) {
	if err := c.running(); err != nil {
		return nil, err
	}
	pids, err := c.lc.Processes()
	if err != nil {
		return nil, fmt.Errorf("processes of %s: %w", c.id, err)
	}
	return pids, nil
}

// Update changes the resources of a running container (docker update):
// the set fields of res replace the current ones: memory limit,
// reservation and swap, CPU shares, quota, period and cpusets, the pids
// limit and the block I/O weight. ErrNotRunning when it is not running.
func (c *Container) Update(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if err := c.running(); err != nil {
		return err
	}
	cfg := c.lc.Config()
	r := *cfg.Cgroups.Resources
	mergeResources(&r, res)
	cg := *cfg.Cgroups
	cg.Resources = &r
	cfg.Cgroups = &cg
	if err := c.lc.Set(cfg); err != nil {
		if errors.Is(err, libcontainer.ErrNotRunning) {
			return fmt.Errorf("update %s: %w", c.id, ErrNotRunning)
		}
		return fmt.Errorf("update %s: %w: %w", c.id, err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Destroy removes the container: it kills its processes if they still
// run (thawing a paused container), waits for the init to be reaped and
// removes its cgroup and state. Destroying a destroyed container does
// nothing. ctx bounds the wait for the init's death.
func (c *Container) Destroy(ctx context.Context) error {
	c.mu.Lock()
	init := c.init
	destroyed := c.destroyed
	c.mu.Unlock()
	if destroyed {
		return nil
	}
	if init != nil {
		select {
		case <-init.done:
		default:
			if st, err := c.lc.Status(); err == nil && st == libcontainer.Paused {
				_ = c.lc.Resume()
			}
			if err := init.Signal(unix.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
				return fmt.Errorf("destroy %s: %w", c.id, err)
			}
			if _, err := init.Wait(ctx); err != nil {
				return fmt.Errorf("destroy %s: %w", c.id, err)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed {
		return nil
	}
	return c.destroyLocked()
}

// destroyLocked removes the libcontainer state and cgroup, and forgets
// the container. The init must be dead.
func (c *Container) destroyLocked() error {
	if err := c.lc.Destroy(); err != nil {
		return fmt.Errorf("destroy %s: %w", c.id, err)
	}
	c.destroyed = true
	c.r.mu.Lock()
	if c.r.containers[c.id] == c {
		delete(c.r.containers, c.id)
	}
	c.r.mu.Unlock()
	return nil
}

// running returns ErrNotRunning unless the init has started and not
// exited.
func (c *Container) running() error {
	p := c.Init()
	if p == nil {
		return fmt.Errorf("container %s: %w", c.id, ErrNotRunning)
	}
	select {
	case <-p.done:
		return fmt.Errorf("container %s: %w", c.id, ErrNotRunning)
	default:
		return nil
	}
}

// oomKilled reports whether the OOM killer struck in the container's
// cgroup (memory.oom_control's or memory.events' oom_kill count).
func (c *Container) oomKilled() bool {
	c.mu.Lock()
	m := c.cgm
	c.mu.Unlock()
	if m == nil {
		if st, err := c.lc.State(); err == nil {
			m, _ = manager.NewWithPaths(st.Config.Cgroups, st.CgroupPaths)
		}
	}
	if m == nil {
		return false
	}
	n, err := m.OOMKillCount()
	return err == nil && n > 0
}

// cgroupManager returns a cgroup manager for lc's cgroups, from its
// state.
func cgroupManager(lc *libcontainer.Container) (cgroups.Manager, error) {
	st, err := lc.State()
	if err != nil {
		return nil, err
	}
	return manager.NewWithPaths(st.Config.Cgroups, st.CgroupPaths)
}

// mergeResources copies the set fields of the OCI resources into
// libcontainer's, as runc update.
func mergeResources(r *cgroups.Resources, res *specs.LinuxResources) {
	if m := res.Memory; m != nil {
		if m.Limit != nil {
			r.Memory = *m.Limit
		}
		if m.Reservation != nil {
			r.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			r.MemorySwap = *m.Swap
		}
	}
	if cpu := res.CPU; cpu != nil {
		if cpu.Shares != nil {
			r.CpuShares = *cpu.Shares
			r.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*cpu.Shares)
		}
		if cpu.Quota != nil {
			r.CpuQuota = *cpu.Quota
		}
		if cpu.Period != nil {
			r.CpuPeriod = *cpu.Period
		}
		if cpu.RealtimeRuntime != nil {
			r.CpuRtRuntime = *cpu.RealtimeRuntime
		}
		if cpu.RealtimePeriod != nil {
			r.CpuRtPeriod = *cpu.RealtimePeriod
		}
		if cpu.Cpus != "" {
			r.CpusetCpus = cpu.Cpus
		}
		if cpu.Mems != "" {
			r.CpusetMems = cpu.Mems
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		l := *res.Pids.Limit
		r.PidsLimit = &l
	}
	if res.BlockIO != nil && res.BlockIO.Weight != nil {
		r.BlkioWeight = *res.BlockIO.Weight
	}
}

// clampRlimits lowers every rlimit above the daemon's own hard limit to
// it and returns a warning for each.
func clampRlimits(p *specs.Process) []string {
	var warnings []string
	for i, rl := range p.Rlimits {
		typ, ok := rlimitTypes[rl.Type]
		if !ok {
			continue // refused by libcontainerProcess
		}
		var host unix.Rlimit
		if err := unix.Getrlimit(typ, &host); err != nil || host.Max == unix.RLIM_INFINITY {
			continue
		}
		if rl.Hard <= host.Max && rl.Soft <= host.Max {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s %d:%d is above the host's hard limit %d: lowered to %d:%d",
			rl.Type, rl.Soft, rl.Hard, host.Max, min(rl.Soft, host.Max), min(rl.Hard, host.Max)))
		p.Rlimits[i].Soft, p.Rlimits[i].Hard = min(rl.Soft, host.Max), min(rl.Hard, host.Max)
	}
	return warnings
}

// cloneSpec deep-copies a spec.
func cloneSpec(s *specs.Spec) (*specs.Spec, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("spec: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	var out specs.Spec
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("spec: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &out, nil
}
