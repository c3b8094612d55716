package daemon

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfd/wharfd/modules/runtime"
)

// AttachOptions are the parameters of POST /containers/{id}/attach.
type AttachOptions struct {
	// Stdin, when set, is copied to the container's input (with
	// OpenStdin); the detach keys end the attach.
	Stdin io.Reader
	// Stdout and Stderr receive the streams asked for (with a TTY,
	// Stdout gets everything).
	Stdout, Stderr io.Writer
	// DetachKeys override DefaultDetachKeys.
	DetachKeys string
	// Logs sends the log first; Stream follows the output until the
	// run ends.
	Logs, Stream bool
}

// Attach is POST /containers/{id}/attach once the connection is
// hijacked: the log (with Logs), then the live output of the current or
// next run until it ends (with Stream). It returns ErrDetached when the
// client typed the detach keys. Stdin reaching EOF closes the
// container's input when it has StdinOnce.
func (d *Daemon) Attach(ctx context.Context, ref string, o AttachOptions) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	keys, err := ParseDetachKeys(o.DetachKeys)
	if err != nil {
		return err
	}
	if o.Logs {
		err := c.log.read(ctx, LogsOptions{Stdout: o.Stdout != nil, Stderr: o.Stderr != nil, Tail: -1}, func(m LogMessage) error {
			w := o.Stdout
			if m.Stream == "stderr" {
				w = o.Stderr
			}
			_, err := io.WriteString(w, m.Log)
			return err
		})
		if err != nil {
			return err
		}
	}
	if !o.Stream {
		return nil
	}
	c.mu.Lock()
	s := c.streams
	stdinOnce := c.rec.Config.StdinOnce
	c.mu.Unlock()
	a := &attacher{stdout: o.Stdout, stderr: o.Stderr}
	if !s.add(a) {
		return nil
	}
	defer s.remove(a)
	d.event(c, events.ActionAttach, nil)
	detached := make(chan struct{})
	if o.Stdin != nil && s.stdinW != nil {
		go func() {
			if err := copyStdin(s.stdinW, o.Stdin, keys); err == ErrDetached {
				close(detached)
				return
			}
			if stdinOnce {
				s.closeStdin()
			}
		}()
	}
	select {
	case <-s.done:
		return nil
	case <-detached:
		return ErrDetached
	case <-ctx.Done():
		return nil
	}
}

// Logs is GET /containers/{id}/logs: the json-file log's messages
// matching o, to emit. Following ends when the container stops.
func (d *Daemon) Logs(ctx context.Context, ref string, o LogsOptions, emit func(LogMessage) error) (tty bool, err error) {
	c, err := d.get(ref)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	tty = c.rec.Config.Tty
	lt := c.host.LogConfig.Type
	c.mu.Unlock()
	if lt != "" && lt != LogDriverJSONFile {
		return tty, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("configured logging driver does not support reading"))
	}
	return tty, func() error { return c.log.read(ctx, o, emit) }()
}

// Resize is POST /containers/{id}/resize: the TTY's size in characters.
func (d *Daemon) Resize(ctx context.Context, ref string, height, width uint16) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	proc := c.proc
	c.mu.Unlock()
	if proc == nil {
		return errNotRunning(c.ID())
	}
	if err := proc.Resize(width, height); err != nil {
		return err
	}
	d.event(c, events.ActionResize, map[string]string{"height": strconv.Itoa(int(height)), "width": strconv.Itoa(int(width))})
	return nil
}

// Exec is one exec instance.
type Exec struct {
	id          string
	containerID string
	cfg         container.ExecCreateRequest

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	proc     *runtime.Process
}

// NoSuchExecError is dockerd's 404 for an unknown exec ID.
type NoSuchExecError struct{ ID string }

func (e NoSuchExecError) Error() string { return "No such exec instance: " + e.ID }

// Unwrap makes the error errdefs.ErrNotFound.
func (e NoSuchExecError) Unwrap() error { return errdefs.ErrNotFound }

// ExecCreate is POST /containers/{id}/exec. The container must be
// running and not paused or restarting (409, dockerd's texts); the
// command must not be empty (400).
func (d *Daemon) ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error) {
	c, err := d.get(ref)
	if err != nil {
		return "", err
	}
	if len(req.Cmd) == 0 {
		return "", errdefs.ErrInvalidArgument.WithMessage("No exec command specified")
	}
	if _, err := ParseDetachKeys(req.DetachKeys); err != nil {
		return "", err
	}
	c.mu.Lock()
	switch {
	case c.rc == nil:
		c.mu.Unlock()
		return "", errNotRunning(c.rec.ID)
	case c.rec.State.Paused:
		c.mu.Unlock()
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is paused, unpause the container before exec", c.rec.ID))
	case c.rec.State.Restarting:
		c.mu.Unlock()
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("container %s is restarting, wait until the container is running", c.rec.ID))
	}
	e := &Exec{id: newID(), containerID: c.rec.ID, cfg: req}
	c.execs = append(c.execs, e.id)
	c.mu.Unlock()
	d.mu.Lock()
	d.execs[e.id] = e
	d.mu.Unlock()
	d.event(c, events.Action(string(events.ActionExecCreate)+": "+strings.Join(req.Cmd, " ")), map[string]string{"execID": e.id})
	return e.id, nil
}

func (d *Daemon) getExec(id string) (*Exec, *Container, error) {
	d.mu.Lock()
	e, ok := d.execs[id]
	var c *Container
	if ok {
		c = d.byID[e.containerID]
	}
	d.mu.Unlock()
	if !ok || c == nil {
		return nil, nil, NoSuchExecError{ID: id}
	}
	return e, c, nil
}

// ExecStartOptions are POST /exec/{id}/start's parameters and streams.
type ExecStartOptions struct {
	// Detach starts the process and returns.
	Detach bool
	// ConsoleSize is the TTY's initial [height, width].
	ConsoleSize *[2]uint
	// Stdin, Stdout and Stderr are the client's streams (nil: none).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExecTTY reports whether the exec was created with a TTY.
func (d *Daemon) ExecTTY(id string) (bool, error) {
	e, _, err := d.getExec(id)
	if err != nil {
		return false, err
	}
	return e.cfg.Tty, nil
}

// ExecStart is POST /exec/{id}/start: it runs the exec's command in the
// container with its user, environment, working directory and TTY, and
// (unless Detach) copies its streams until it exits. An exec runs once
// (409 after). It returns ErrDetached when the client typed the detach
// keys.
func (d *Daemon) ExecStart(ctx context.Context, id string, o ExecStartOptions) error {
	e, c, err := d.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		if e.running {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s is already running", id))
		}
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Error: Exec command %s has already run", id))
	}
	e.started = true
	e.mu.Unlock()
	c.mu.Lock()
	rc := c.rc
	c.mu.Unlock()
	if rc == nil {
		return errNotRunning(c.ID())
	}
	spec := rc.Spec()
	p := spec.Process
	p.Args = slices.Clone(e.cfg.Cmd)
	p.Terminal = e.cfg.Tty
	p.ConsoleSize = nil
	if o.ConsoleSize != nil && e.cfg.Tty {
		p.ConsoleSize = &specs.Box{Height: o.ConsoleSize[0], Width: o.ConsoleSize[1]}
	} else if e.cfg.ConsoleSize != nil && e.cfg.Tty {
		p.ConsoleSize = &specs.Box{Height: e.cfg.ConsoleSize[0], Width: e.cfg.ConsoleSize[1]}
	}
	if e.cfg.WorkingDir != "" {
		p.Cwd = e.cfg.WorkingDir
	}
	for _, v := range e.cfg.Env {
		k, _, _ := strings.Cut(v, "=")
		i := slices.IndexFunc(p.Env, func(x string) bool { return strings.HasPrefix(x, k+"=") })
		if i >= 0 {
			p.Env[i] = v
		} else {
			p.Env = append(p.Env, v)
		}
	}
	if e.cfg.User != "" {
		var so runtime.SpecOptions
		if err := resolveUser(spec.Root.Path, e.cfg.User, nil, &so); err != nil {
			return err
		}
		p.User.UID, p.User.GID = so.UID, so.GID
		p.User.AdditionalGids = so.AdditionalGIDs
	}
	keys, _ := ParseDetachKeys(e.cfg.DetachKeys)
	stdio := runtime.Stdio{Stdout: o.Stdout, Stderr: o.Stderr}
	detached := make(chan struct{})
	if o.Stdin != nil && e.cfg.AttachStdin {
		pr, pw := io.Pipe()
		stdio.Stdin = pr
		go func() {
			if err := copyStdin(pw, o.Stdin, keys); err == ErrDetached {
				close(detached)
			}
			pw.Close()
		}()
		defer pr.Close()
	}
	if o.Detach {
		stdio = runtime.Stdio{}
	}
	proc, err := rc.Exec(ctx, p, stdio)
	if err != nil {
		e.mu.Lock()
		code := 126
		if se, ok := err.(*runtime.StartError); ok {
			code = se.ExitCode
		} else if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no such file") {
			code = 127
		}
		e.exitCode = &code
		e.mu.Unlock()
		return err
	}
	e.mu.Lock()
	e.running, e.pid, e.proc = true, proc.Pid(), proc
	e.mu.Unlock()
	d.event(c, events.Action(string(events.ActionExecStart)+": "+strings.Join(e.cfg.Cmd, " ")), map[string]string{"execID": e.id})
	finish := func() {
		st, _ := proc.Wait(context.Background())
		e.mu.Lock()
		e.running = false
		code := st.Code
		e.exitCode = &code
		e.mu.Unlock()
		d.event(c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": strconv.Itoa(code)})
	}
	if o.Detach {
		go finish()
		return nil
	}
	select {
	case <-proc.Done():
		finish()
		return nil
	case <-detached:
		go finish()
		return ErrDetached
	}
}

// ExecInspect is GET /exec/{id}/json.
func (d *Daemon) ExecInspect(id string) (container.ExecInspectResponse, error) {
	e, _, err := d.getExec(id)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var entry string
	var args []string
	if len(e.cfg.Cmd) > 0 {
		entry, args = e.cfg.Cmd[0], slices.Clone(e.cfg.Cmd[1:])
	}
	if args == nil {
		args = []string{}
	}
	priv := e.cfg.Privileged
	keys, _ := ParseDetachKeys(e.cfg.DetachKeys)
	return container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty, Entrypoint: entry, Arguments: args, Privileged: &priv, User: e.cfg.User},
		OpenStdin:     e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		CanRemove: !e.running && e.started, ContainerID: e.containerID, DetachKeys: keys, Pid: e.pid,
	}, nil
}

// ExecResize is POST /exec/{id}/resize.
func (d *Daemon) ExecResize(id string, height, width uint16) error {
	e, _, err := d.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	proc := e.proc
	e.mu.Unlock()
	if proc == nil {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("exec %s is not running", id))
	}
	return proc.Resize(width, height)
}
