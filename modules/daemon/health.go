package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/runtime"
)

// Health checks, as dockerd's: while a container with a healthcheck
// (Config.Healthcheck, or its image's HEALTHCHECK) runs and is not
// paused, a monitor runs its test through exec every interval and keeps
// State.Health: starting until the first success, healthy after a
// success, unhealthy after Retries failures in a row (failures during
// the start period do not count while it is still starting), the last
// five results with their output cut at 4096 bytes. A change of status
// is a "health_status: <status>" event. The monitor stops when the
// container stops, is paused or is removed; a start resets the status to
// starting.
const (
	// DefaultHealthInterval is the time between probes (and before the
	// first) when the healthcheck gives none.
	DefaultHealthInterval = 30 * time.Second
	// DefaultHealthTimeout is how long a probe may run before it counts
	// as a failure.
	DefaultHealthTimeout = 30 * time.Second
	// DefaultHealthStartPeriod is the start period: none.
	DefaultHealthStartPeriod = 0
	// DefaultHealthStartInterval is the time between probes while the
	// container is starting within its start period.
	DefaultHealthStartInterval = 5 * time.Second
	// DefaultHealthRetries is the number of failures in a row that make a
	// container unhealthy.
	DefaultHealthRetries = 3
	// MinHealthDuration is the smallest non-zero interval, timeout, start
	// period or start interval a healthcheck may have (dockerd's 1ms).
	MinHealthDuration = time.Millisecond

	// healthMaxOutput is the most output of a probe kept; more is cut
	// and marked with "...".
	healthMaxOutput = 4096
	// healthMaxLog is the number of results kept.
	healthMaxLog = 5
	// healthExecStartTimeout bounds the start of a probe's process, which
	// does not count against the probe's timeout.
	healthExecStartTimeout = 30 * time.Second
	// healthKillWait bounds the wait for a killed probe's output to end:
	// a process the probe left behind may hold its pipe until the
	// container exits.
	healthKillWait = 5 * time.Second
)

// checkHealthConfig refuses a healthcheck dockerd refuses at create
// (400, dockerd's texts): a non-zero duration under MinHealthDuration or
// negative retries.
func checkHealthConfig(hc *container.HealthConfig) error {
	if hc == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"Interval", hc.Interval}, {"Timeout", hc.Timeout}, {"StartPeriod", hc.StartPeriod}, {"StartInterval", hc.StartInterval}} {
		if f.d != 0 && f.d < MinHealthDuration {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%s in Healthcheck cannot be less than %s", f.name, MinHealthDuration))
		}
	}
	if hc.Retries < 0 {
		return errdefs.ErrInvalidArgument.WithMessage("Retries in Healthcheck cannot be negative")
	}
	return nil
}

// mergeHealthConfig merges the image's healthcheck into the container's,
// as dockerd: no healthcheck takes the image's; an empty test and zero
// durations or retries take the image's values.
func mergeHealthConfig(cfg *container.Config, image *container.HealthConfig) {
	if image == nil {
		return
	}
	if cfg.Healthcheck == nil {
		hc := *image
		hc.Test = slices.Clone(image.Test)
		cfg.Healthcheck = &hc
		return
	}
	hc := *cfg.Healthcheck
	if len(hc.Test) == 0 {
		hc.Test = slices.Clone(image.Test)
	}
	if hc.Interval == 0 {
		hc.Interval = image.Interval
	}
	if hc.Timeout == 0 {
		hc.Timeout = image.Timeout
	}
	if hc.StartPeriod == 0 {
		hc.StartPeriod = image.StartPeriod
	}
	if hc.StartInterval == 0 {
		hc.StartInterval = image.StartInterval
	}
	if hc.Retries == 0 {
		hc.Retries = image.Retries
	}
	cfg.Healthcheck = &hc
}

// probeCommand returns the command a healthcheck runs: the arguments of
// CMD, or the shell (Config.Shell, else /bin/sh -c) with the string of
// CMD-SHELL. NONE, an empty or unknown test and no healthcheck give nil:
// no probe.
func probeCommand(cfg *container.Config) []string {
	hc := cfg.Healthcheck
	if hc == nil || len(hc.Test) < 2 {
		return nil
	}
	switch hc.Test[0] {
	case "CMD":
		return slices.Clone(hc.Test[1:])
	case "CMD-SHELL":
		shell := []string{"/bin/sh", "-c"}
		if len(cfg.Shell) > 0 {
			shell = slices.Clone(cfg.Shell)
		}
		return append(shell, hc.Test[1:]...)
	}
	return nil
}

// orDefault is d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// healthStatus is the container's health status as ps shows and filters
// it: none without health state, else its status (unhealthy when not
// set yet, as dockerd).
func healthStatus(h *container.Health) container.HealthStatus {
	switch {
	case h == nil:
		return container.NoHealthcheck
	case h.Status == "":
		return container.Unhealthy
	}
	return h.Status
}

// healthSuffix is what docker ps appends to "Up 3 minutes" of a running
// container with health state: " (health: starting)", " (healthy)",
// " (unhealthy)"; "" without.
func healthSuffix(h *container.Health) string {
	switch s := healthStatus(h); s {
	case container.NoHealthcheck:
		return ""
	case container.Starting:
		return " (health: starting)"
	default:
		return " (" + string(s) + ")"
	}
}

// healthSummary is GET /containers/json's Health (API 1.52+): the status
// and failing streak of a running container with health state, none
// otherwise.
func healthSummary(st *State) *container.HealthSummary {
	if !st.Running || st.Health == nil {
		return &container.HealthSummary{Status: container.NoHealthcheck}
	}
	return &container.HealthSummary{Status: healthStatus(st.Health), FailingStreak: st.Health.FailingStreak}
}

// checkHealthFilter validates the values of ps's health filter: none,
// starting, healthy or unhealthy (400 otherwise, dockerd's text).
func checkHealthFilter(values []string) error {
	for _, v := range values {
		if err := container.ValidateHealthStatus(container.HealthStatus(v)); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	return nil
}

// matchHealth reports whether the container's health status is one of
// values (all match when there are none).
func matchHealth(values []string, h *container.Health) bool {
	return len(values) == 0 || slices.Contains(values, string(healthStatus(h)))
}

// nextHealth is dockerd's handling of one probe result: it returns a new
// Health (h is never changed, so snapshots may share it) with the result
// appended to the last healthMaxLog, and the status and failing streak
// updated. inStartPeriod says the probe started within the start period:
// a failure then does not count while the container is starting.
func nextHealth(h *container.Health, res *container.HealthcheckResult, retries int, inStartPeriod bool) *container.Health {
	if retries <= 0 {
		retries = DefaultHealthRetries
	}
	n := &container.Health{Status: container.Starting}
	if h != nil {
		n.Status, n.FailingStreak = h.Status, h.FailingStreak
		n.Log = slices.Clone(h.Log)
	}
	if len(n.Log) >= healthMaxLog {
		n.Log = slices.Clone(n.Log[len(n.Log)+1-healthMaxLog:])
	}
	n.Log = append(n.Log, res)
	if res.ExitCode == 0 {
		n.Status, n.FailingStreak = container.Healthy, 0
		return n
	}
	if n.Status == container.Starting && inStartPeriod {
		return n
	}
	n.FailingStreak++
	if n.FailingStreak >= retries {
		n.Status = container.Unhealthy
	}
	return n
}

// healthMonitor is a container's running health monitor.
type healthMonitor struct {
	// stop is closed to stop the monitor.
	stop chan struct{}
}

// probeFunc runs one probe, cmd, in c within timeout and returns its
// result (End, ExitCode, Output; a timeout is exit code -1). An error
// means the probe could not run; ctx ends when the monitor stops.
type probeFunc func(ctx context.Context, c *Container, cmd []string, timeout time.Duration) (*container.HealthcheckResult, error)

// initHealthLocked resets a container's health state to starting (the
// log kept, the failing streak cleared) and starts its monitor, as
// dockerd's initHealthMonitor at each start. A container without a probe
// is left alone. c.mu must be held.
func (d *Daemon) initHealthLocked(c *Container) {
	if probeCommand(c.rec.Config) == nil {
		return
	}
	c.stopHealthLocked()
	h := &container.Health{Status: container.Starting}
	if old := c.rec.State.Health; old != nil {
		h.Log = slices.Clone(old.Log)
	}
	c.rec.State.Health = h
	d.updateHealthLocked(c)
}

// updateHealthLocked starts the container's health monitor when it runs,
// is not paused and has a probe, and stops it otherwise. c.mu must be
// held.
func (d *Daemon) updateHealthLocked(c *Container) {
	cmd := probeCommand(c.rec.Config)
	st := &c.rec.State
	if !st.Running || st.Paused || st.Health == nil || cmd == nil {
		c.stopHealthLocked()
		return
	}
	if c.health != nil {
		return
	}
	m := &healthMonitor{stop: make(chan struct{})}
	c.health = m
	hc, started := *c.rec.Config.Healthcheck, st.StartedAt
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		d.healthLoop(c, m.stop, cmd, hc, started, d.execProbe)
	}()
}

// stopHealthLocked stops the container's health monitor, if any; a probe
// running is killed. c.mu must be held.
func (c *Container) stopHealthLocked() {
	if c.health != nil {
		close(c.health.stop)
		c.health = nil
	}
}

// healthLoop is a container's health monitor: it runs cmd with run every
// interval (start interval while starting within the start period, the
// next probe never later than the period's end) until stop is closed,
// and records each result.
func (d *Daemon) healthLoop(c *Container, stop <-chan struct{}, cmd []string, hc container.HealthConfig, started time.Time, run probeFunc) {
	interval := orDefault(hc.Interval, DefaultHealthInterval)
	startInterval := orDefault(hc.StartInterval, DefaultHealthStartInterval)
	startPeriod := orDefault(hc.StartPeriod, DefaultHealthStartPeriod)
	timeout := orDefault(hc.Timeout, DefaultHealthTimeout)
	next := func() time.Duration {
		left := startPeriod - time.Since(started)
		if left <= 0 {
			return interval
		}
		c.mu.Lock()
		starting := healthStatus(c.rec.State.Health) == container.Starting
		c.mu.Unlock()
		wait := interval
		if starting {
			wait = startInterval
		}
		return min(wait, left)
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan *container.HealthcheckResult, 1)
		go func() {
			res, err := run(ctx, c, cmd, timeout)
			if err != nil {
				res = &container.HealthcheckResult{ExitCode: -1, Output: err.Error(), End: time.Now()}
			}
			res.Start = start
			results <- res
		}()
		select {
		case <-stop:
			cancel()
			<-results
			return
		case res := <-results:
			cancel()
			d.recordHealth(c, res, hc.Retries, startPeriod, stop)
		}
		t.Reset(next())
	}
}

// recordHealth applies a probe result to the container's health state,
// unless the monitor was stopped meanwhile, and logs "health_status:
// <status>" when the status changes; the record is saved then.
func (d *Daemon) recordHealth(c *Container, res *container.HealthcheckResult, retries int, startPeriod time.Duration, stop <-chan struct{}) {
	c.mu.Lock()
	select {
	case <-stop:
		c.mu.Unlock()
		return
	default:
	}
	old := healthStatus(c.rec.State.Health)
	inStart := res.Start.Sub(c.rec.State.StartedAt) < startPeriod
	c.rec.State.Health = nextHealth(c.rec.State.Health, res, retries, inStart)
	now := healthStatus(c.rec.State.Health)
	if now != old {
		c.saveOrLog(d.log)
	}
	c.mu.Unlock()
	if now != old {
		d.event(c, events.Action(string(events.ActionHealthStatus)+": "+string(now)), nil)
	}
}

// execProbe is the probeFunc of running containers: cmd runs as an exec
// of the container's process (its user, environment and working
// directory, no TTY), its stdout and stderr kept together up to
// healthMaxOutput, with dockerd's exec_create, exec_start and exec_die
// events. Past timeout the process is killed and the result is exit code
// -1, "Health check exceeded timeout (<timeout>)" and any output.
func (d *Daemon) execProbe(ctx context.Context, c *Container, cmd []string, timeout time.Duration) (*container.HealthcheckResult, error) {
	c.mu.Lock()
	rc := c.rc
	c.mu.Unlock()
	if rc == nil {
		return nil, errNotRunning(c.ID())
	}
	p := rc.Spec().Process
	p.Args = cmd
	p.Terminal, p.ConsoleSize = false, nil
	execID := newID()
	line := strings.Join(cmd, " ")
	d.event(c, events.Action(string(events.ActionExecCreate)+": "+line), map[string]string{"execID": execID})
	out := &limitedBuffer{max: healthMaxOutput}
	startCtx, cancelStart := context.WithTimeout(ctx, healthExecStartTimeout)
	proc, err := rc.Exec(startCtx, p, runtime.Stdio{Stdout: out, Stderr: out})
	cancelStart()
	if err != nil {
		return nil, err
	}
	d.event(c, events.Action(string(events.ActionExecStart)+": "+line), map[string]string{"execID": execID})
	t := time.NewTimer(timeout)
	defer t.Stop()
	var res *container.HealthcheckResult
	select {
	case <-proc.Done():
		st, _ := proc.Wait(context.Background())
		res = &container.HealthcheckResult{ExitCode: st.Code, Output: out.String(), End: time.Now()}
	case <-t.C:
		d.killProbe(c, proc)
		msg := fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		if o := out.String(); o != "" {
			msg += ": " + o
		}
		res = &container.HealthcheckResult{ExitCode: -1, Output: msg, End: time.Now()}
	case <-ctx.Done():
		d.killProbe(c, proc)
		err = ctx.Err()
	}
	code := -1
	select {
	case <-proc.Done():
		st, _ := proc.Wait(context.Background())
		code = st.Code
	default:
	}
	d.event(c, events.ActionExecDie, map[string]string{"execID": execID, "exitCode": strconv.Itoa(code)})
	return res, err
}

// killProbe kills a probe's process and the processes it started (a
// shell's `sleep`, which would otherwise hold the output pipe and go on
// running), and waits, at most healthKillWait, for its end.
func (d *Daemon) killProbe(c *Container, proc *runtime.Process) {
	descendants := processTree(proc.Pid())
	if err := proc.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, runtime.ErrNotRunning) {
		d.log.Warn("cannot kill health check", zap.String("container", c.ID()), zap.Error(err))
	}
	for _, pid := range descendants {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	t := time.NewTimer(healthKillWait)
	defer t.Stop()
	select {
	case <-proc.Done():
	case <-t.C:
	}
}

// processTree returns the descendants of pid, from
// /proc/<pid>/task/*/children; none when the kernel does not list
// children.
func processTree(pid int) []int {
	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 1024 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if child, err := strconv.Atoi(f); err == nil {
					out = append(out, child)
					queue = append(queue, child)
				}
			}
		}
	}
	return out
}

// limitedBuffer keeps the first max bytes written to it, from any number
// of writers; String marks a cut with "...", as dockerd.
type limitedBuffer struct {
	max int

	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

// Write keeps what fits and reports everything written.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(b.max-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

// String returns what was kept, with "..." when some was cut.
func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

// stopHealth is stopHealthLocked taking c.mu.
func (c *Container) stopHealth() {
	c.mu.Lock()
	c.stopHealthLocked()
	c.mu.Unlock()
}
