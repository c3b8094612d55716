package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/wharfd/wharfd/modules/runtime"
)

// ParseSignal parses a signal as dockerd's signal.ParseSignal: a number
// or a name with or without SIG, any case ("9", "KILL", "sigterm").
// Errors are 400 "Invalid signal: <s>".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, errdefs.ErrInvalidArgument.WithMessage("Invalid signal: " + s)
	}
	return sig, nil
}

// stopSignal returns the container's stop signal, SIGTERM by default.
func (c *Container) stopSignal() syscall.Signal {
	c.mu.Lock()
	s := c.rec.Config.StopSignal
	c.mu.Unlock()
	if s != "" {
		if sig, err := ParseSignal(s); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

// StopOptions are the parameters of POST /containers/{id}/stop and
// restart.
type StopOptions struct {
	// Signal replaces the container's stop signal ("" keeps it).
	Signal string
	// Timeout is the seconds to wait before SIGKILL; nil uses the
	// container's StopTimeout (default 10), -1 waits forever.
	Timeout *int
}

// Stop is POST /containers/{id}/stop: the stop signal, then SIGKILL
// after the timeout. A container that is not running is
// errdefs.ErrNotModified (304), as dockerd. Its restart policy does not
// restart it.
func (d *Daemon) Stop(ctx context.Context, ref string, o StopOptions) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.Signal(-1)
	if o.Signal != "" {
		if sig, err = ParseSignal(o.Signal); err != nil {
			return err
		}
	}
	timeout := c.stopTimeout()
	if o.Timeout != nil {
		timeout = time.Duration(*o.Timeout) * time.Second
		if *o.Timeout < 0 {
			timeout = -1
		}
	}
	return d.stopContainer(ctx, c, sig, timeout, true)
}

// stopContainer stops c: sig (-1 for its stop signal), then SIGKILL
// after timeout (negative: never), and waits for the exit to be
// recorded. manual marks it stopped by hand (no restart by the policy).
func (d *Daemon) stopContainer(ctx context.Context, c *Container, sig syscall.Signal, timeout time.Duration, manual bool) error {
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	if manual {
		c.rec.HasBeenManuallyStopped = true
	}
	wasRestarting := c.rec.State.Restarting
	c.cancelRestartLocked()
	proc, rc := c.proc, c.rc
	if proc == nil {
		c.saveOrLog(d.log)
		c.notifyLocked()
		c.mu.Unlock()
		if wasRestarting {
			return nil
		}
		return errdefs.ErrNotModified.WithMessage("container already stopped")
	}
	c.stopping = true
	c.stopHealthLocked() // health.go
	paused := c.rec.State.Paused
	c.saveOrLog(d.log)
	c.mu.Unlock()
	if sig < 0 {
		sig = c.stopSignal()
	}
	d.event(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := proc.Signal(sig); err != nil && !errdefs.IsConflict(err) {
		d.log.Warn("cannot send stop signal", zap.String("container", c.ID()), zap.Error(err))
	}
	if paused {
		_ = rc.Resume()
	}
	var expired <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-proc.Done():
	case <-expired:
		d.event(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(syscall.SIGKILL))})
		_ = proc.Signal(syscall.SIGKILL)
	case <-ctx.Done():
		_ = proc.Signal(syscall.SIGKILL)
	}
	if err := c.waitStopped(ctx); err != nil {
		return err
	}
	d.event(c, events.ActionStop, nil)
	return nil
}

// waitStopped waits until the monitor has recorded the exit.
func (c *Container) waitStopped(ctx context.Context) error {
	for {
		c.mu.Lock()
		ch, running := c.changed, c.proc != nil
		c.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Kill is POST /containers/{id}/kill: it sends sig ("" for SIGKILL). A
// container that is not running is a 409 with dockerd's text. SIGKILL or
// the stop signal keeps the restart policy from restarting it; after
// SIGKILL Kill waits for the exit.
func (d *Daemon) Kill(ctx context.Context, ref, sigName string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if sigName != "" {
		if sig, err = ParseSignal(sigName); err != nil {
			return err
		}
	}
	c.mu.Lock()
	proc, rc := c.proc, c.rc
	if proc == nil {
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: container %s is not running", ref, c.rec.ID))
	}
	if sig == syscall.SIGKILL || sig == c.stopSignalLocked() {
		c.stopping = true
	}
	if !d.isShuttingDown() {
		c.rec.HasBeenManuallyStopped = true
		c.saveOrLog(d.log)
	}
	paused := c.rec.State.Paused
	c.mu.Unlock()
	d.event(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	if err := proc.Signal(sig); err != nil {
		if errdefs.IsConflict(err) {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Cannot kill container: %s: container %s is not running", ref, c.ID()))
		}
		return fmt.Errorf("cannot kill container: %s: %w", ref, err)
	}
	if paused && sig == syscall.SIGKILL {
		_ = rc.Resume()
	}
	if sig == syscall.SIGKILL {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = c.waitStopped(wctx)
	}
	return nil
}

func (c *Container) stopSignalLocked() syscall.Signal {
	if s := c.rec.Config.StopSignal; s != "" {
		if sig, err := ParseSignal(s); err == nil {
			return sig
		}
	}
	return syscall.SIGTERM
}

// Restart is POST /containers/{id}/restart: Stop (when running) then
// Start, and the "restart" event.
func (d *Daemon) Restart(ctx context.Context, ref string, o StopOptions) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := d.Stop(ctx, c.ID(), o); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	if err := d.start(ctx, c, startUser); err != nil {
		return err
	}
	d.event(c, events.ActionRestart, nil)
	return nil
}

// Pause is POST /containers/{id}/pause: it freezes the container's
// processes. Errors: not running, already paused, restarting (409).
func (d *Daemon) Pause(ctx context.Context, ref string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.rc == nil:
		return errNotRunning(c.rec.ID)
	case c.rec.State.Paused:
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is already paused", c.rec.ID))
	}
	if err := c.rc.Pause(); err != nil {
		return err
	}
	c.rec.State.Paused = true
	d.updateHealthLocked(c) // health.go
	c.saveOrLog(d.log)
	c.notifyLocked()
	go d.event(c, events.ActionPause, nil)
	return nil
}

// Unpause is POST /containers/{id}/unpause. A container that is not
// paused is a 409.
func (d *Daemon) Unpause(ctx context.Context, ref string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil || !c.rec.State.Paused {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is not paused", c.rec.ID))
	}
	if err := c.rc.Resume(); err != nil {
		return err
	}
	c.rec.State.Paused = false
	d.updateHealthLocked(c) // health.go
	c.saveOrLog(d.log)
	c.notifyLocked()
	go d.event(c, events.ActionUnPause, nil)
	return nil
}

// Wait conditions, as the API's.
const (
	WaitNotRunning = "not-running"
	WaitNextExit   = "next-exit"
	WaitRemoved    = "removed"
)

// WaitFunc blocks until the condition Wait registered holds and returns
// the container's exit code.
type WaitFunc func(ctx context.Context) (int, error)

// Wait is POST /containers/{id}/wait: it registers the wait at once (so
// a wait sent before start sees the run) and returns the function that
// blocks. condition is "" or not-running, next-exit or removed; another
// is a 400.
func (d *Daemon) Wait(ref, condition string) (WaitFunc, error) {
	switch condition {
	case "", WaitNotRunning, WaitNextExit, WaitRemoved:
	default:
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid condition: %q", condition))
	}
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	exits := c.exits
	c.mu.Unlock()
	return func(ctx context.Context) (int, error) {
		for {
			c.mu.Lock()
			ch := c.changed
			code := c.rec.State.ExitCode
			running := c.rec.State.Running
			done := false
			switch condition {
			case "", WaitNotRunning:
				done = !running
			case WaitNextExit:
				done = c.exits > exits
			}
			c.mu.Unlock()
			select {
			case <-c.removed:
				return code, nil
			default:
			}
			if done {
				return code, nil
			}
			select {
			case <-ch:
			case <-c.removed:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}, nil
}

// RemoveOptions are DELETE /containers/{id}'s parameters.
type RemoveOptions struct {
	// Force kills a running container first.
	Force bool
	// Volumes removes its anonymous volumes.
	Volumes bool
	// Link removes a legacy link (refused: there are none).
	Link bool
}

// Remove is DELETE /containers/{id}: it removes a stopped container (a
// running one only with Force, which kills it) with its layer, directory
// and name, and logs "destroy". A running container without Force is a
// 409 with dockerd's text.
func (d *Daemon) Remove(ctx context.Context, ref string, o RemoveOptions) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if o.Link {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find link %s", ref))
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	name := c.rec.Name
	switch {
	case c.rec.State.Removing:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("removal of container %s is already in progress", ref))
	case c.rec.State.Paused && !o.Force:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is paused and must be unpaused first", name))
	case c.proc != nil && !o.Force:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is running: stop the container before removing or force remove", name))
	case c.rec.State.Restarting && !o.Force:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot remove container %q: container is restarting: stop the container before removing or force remove", name))
	}
	c.cancelRestartLocked()
	c.rec.State.Removing = true
	c.stopping = true
	proc, rc, paused := c.proc, c.rc, c.rec.State.Paused
	c.notifyLocked()
	c.mu.Unlock()
	if proc != nil {
		d.event(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(syscall.SIGKILL))})
		_ = proc.Signal(syscall.SIGKILL)
		if paused {
			_ = rc.Resume()
		}
		if err := c.waitStopped(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	cs := d.o.Store.Containers()
	_, _ = cs.Unmount(c.ID(), true)
	if err := cs.DeleteContainer(c.ID()); err != nil && !strings.Contains(err.Error(), "not known") {
		c.mu.Lock()
		c.rec.State.Removing = false
		c.rec.State.Dead = true
		c.saveOrLog(d.log)
		c.notifyLocked()
		c.mu.Unlock()
		return fmt.Errorf("cannot remove container %q: remove layer: %w", name, err)
	}
	d.releaseVolumes(ctx, c, o.Volumes) // -v: anonymous volumes too (mounts.go)
	c.log.removeFiles()
	if err := os.RemoveAll(c.dir); err != nil {
		d.log.Warn("cannot remove container dir", zap.String("container", c.ID()), zap.Error(err))
	}
	d.mu.Lock()
	delete(d.byID, c.ID())
	if d.names[name] == c.ID() {
		delete(d.names, name)
	}
	c.mu.Lock()
	for _, e := range c.execs {
		delete(d.execs, e)
	}
	close(c.removed)
	c.notifyLocked()
	s := c.streams
	c.mu.Unlock()
	s.close()
	d.mu.Unlock()
	d.event(c, events.ActionDestroy, nil)
	return nil
}

// Rename is POST /containers/{id}/rename, with dockerd's errors: an
// invalid name 400, the current name 400, a name in use 409.
func (d *Daemon) Rename(ctx context.Context, ref, newName string) error {
	if newName == "" {
		return errdefs.ErrInvalidArgument.WithMessage("Neither old nor new names may be empty")
	}
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	full, err := checkName(newName)
	if err != nil {
		return err
	}
	d.mu.Lock()
	c.mu.Lock()
	old := c.rec.Name
	if old == full {
		c.mu.Unlock()
		d.mu.Unlock()
		return errdefs.ErrInvalidArgument.WithMessage("Renaming a container with the same name as its current name")
	}
	if owner, taken := d.names[full]; taken {
		c.mu.Unlock()
		d.mu.Unlock()
		return nameConflict(full, owner)
	}
	c.rec.Name = full
	if err := c.saveLocked(); err != nil {
		c.rec.Name = old
		c.mu.Unlock()
		d.mu.Unlock()
		return err
	}
	delete(d.names, old)
	d.names[full] = c.rec.ID
	c.mu.Unlock()
	d.mu.Unlock()
	d.event(c, events.ActionRename, map[string]string{"oldName": old})
	return nil
}

// Update is POST /containers/{id}/update: new resources and restart
// policy, applied at once to a running container.
func (d *Daemon) Update(ctx context.Context, ref string, u container.UpdateConfig) ([]string, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h := *c.host
	r := u.Resources
	if u.RestartPolicy.Name != "" {
		if h.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return nil, errdefs.ErrInvalidArgument.WithMessage("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		h.RestartPolicy = u.RestartPolicy
		check := h
		if err := d.checkHostConfig(&check); err != nil {
			return nil, err
		}
	}
	res := &specs.LinuxResources{}
	if r.Memory != 0 {
		h.Memory = r.Memory
		res.Memory = &specs.LinuxMemory{Limit: &r.Memory}
	}
	if r.MemorySwap != 0 {
		h.MemorySwap = r.MemorySwap
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		res.Memory.Swap = &r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		h.MemoryReservation = r.MemoryReservation
		if res.Memory == nil {
			res.Memory = &specs.LinuxMemory{}
		}
		res.Memory.Reservation = &r.MemoryReservation
	}
	cpu := &specs.LinuxCPU{}
	setCPU := false
	if r.CPUShares != 0 {
		h.CPUShares = r.CPUShares
		s := uint64(r.CPUShares)
		cpu.Shares, setCPU = &s, true
	}
	if r.NanoCPUs != 0 {
		h.NanoCPUs = r.NanoCPUs
		p := runtime.DefaultCPUPeriod
		q := r.NanoCPUs * int64(p) / 1e9
		cpu.Period, cpu.Quota, setCPU = &p, &q, true
	}
	if r.CPUQuota != 0 {
		h.CPUQuota = r.CPUQuota
		cpu.Quota, setCPU = &r.CPUQuota, true
	}
	if r.CPUPeriod != 0 {
		h.CPUPeriod = r.CPUPeriod
		p := uint64(r.CPUPeriod)
		cpu.Period, setCPU = &p, true
	}
	if r.CpusetCpus != "" {
		h.CpusetCpus, cpu.Cpus, setCPU = r.CpusetCpus, r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		h.CpusetMems, cpu.Mems, setCPU = r.CpusetMems, r.CpusetMems, true
	}
	if setCPU {
		res.CPU = cpu
	}
	if r.PidsLimit != nil {
		l := *r.PidsLimit
		h.PidsLimit = &l
		if l <= 0 {
			l = -1
		}
		res.Pids = &specs.LinuxPids{Limit: &l}
	}
	if r.BlkioWeight != 0 {
		h.BlkioWeight = r.BlkioWeight
		res.BlockIO = &specs.LinuxBlockIO{Weight: &r.BlkioWeight}
	}
	if h.Memory > 0 && h.Memory < 6<<20 {
		return nil, errdefs.ErrInvalidArgument.WithMessage("Minimum memory limit allowed is 6MB")
	}
	if c.rc != nil {
		if err := c.rc.Update(res); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.rec.ID, err)
		}
	}
	c.host = &h
	c.saveOrLog(d.log)
	go d.event(c, events.ActionUpdate, nil)
	return []string{}, nil
}
