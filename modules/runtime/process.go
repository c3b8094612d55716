package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotRunning is returned when signalling or resizing a process, or
// exec'ing in a container, that is not running. It is an
// errdefs.ErrConflict (dockerd answers 409 "Container … is not running").
var ErrNotRunning = fmt.Errorf("not running: %w", errdefs.ErrConflict)

// Stdio are the standard streams of a process the runtime starts. The
// runtime copies them through pipes (or the pseudo-terminal) it owns, so
// a slow or blocked reader or writer of the caller's never holds up the
// process's exit being noticed.
type Stdio struct {
	// Stdin feeds the process's standard input; nil gives it /dev/null.
	// When Stdin returns EOF the process's input is closed.
	Stdin io.Reader
	// Stdout receives the standard output, and with a terminal both
	// output streams; nil discards it.
	Stdout io.Writer
	// Stderr receives the standard error; nil discards it. It is not
	// used with a terminal.
	Stderr io.Writer
}

// ExitStatus is how a process ended.
type ExitStatus struct {
	// Code is the exit code, or 128+n for a process killed by signal n
	// (137 for SIGKILL, 143 for SIGTERM), as dockerd reports it.
	Code int
	// Signal is the signal that killed the process, 0 if it exited.
	Signal syscall.Signal
	// OOMKilled reports that the kernel's OOM killer killed a process of
	// the container's cgroup while the container ran (init only; always
	// false for an exec).
	OOMKilled bool
	// ExitedAt is when the runtime saw the process end.
	ExitedAt time.Time
}

// StartError is a failure to start a process because of what the user
// asked for: the command is missing or not executable, or the working
// directory does not exist. It wraps errdefs.ErrInvalidArgument (dockerd
// answers 400) and carries the exit code dockerd records for it.
type StartError struct {
	// ExitCode is 127 for a missing command, 126 for a command that
	// cannot be executed, 128 otherwise.
	ExitCode int
	// Err is libcontainer's error.
	Err error
}

func (e *StartError) Error() string { return e.Err.Error() }

// Unwrap returns the cause and the error class.
func (e *StartError) Unwrap() []error { return []error{e.Err, errdefs.ErrInvalidArgument} }

// classifyStartError turns libcontainer's start errors caused by the
// user's command into a StartError, as dockerd's translateContainerdStartErr.
func classifyStartError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return &StartError{ExitCode: 127, Err: err}
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "exec format error"):
		return &StartError{ExitCode: 126, Err: err}
	case strings.Contains(msg, "chdir"):
		return &StartError{ExitCode: 128, Err: err}
	}
	return err
}

// Process is a process of a container: its init or an exec.
type Process struct {
	lp      *libcontainer.Process
	c       *Container
	isInit  bool
	pid     int
	console console.Console

	copies sync.WaitGroup
	done   chan struct{}
	status ExitStatus
	err    error
}

// Pid returns the process's PID in the daemon's PID namespace.
func (p *Process) Pid() int { return p.pid }

// Done returns a channel closed once the process has exited and its
// output has been copied.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait returns the process's exit status once it has exited and all its
// output has been copied to Stdio, or ctx's error first.
func (p *Process) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.done:
		return p.status, p.err
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Signal sends sig to the process. The init's signals go through
// libcontainer, which refuses to signal a reused PID; a process that has
// exited gives ErrNotRunning.
func (p *Process) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return ErrNotRunning
	default:
	}
	var err error
	if p.isInit {
		err = p.c.lc.Signal(sig)
	} else {
		err = p.lp.Signal(sig)
	}
	if errors.Is(err, libcontainer.ErrNotRunning) || errors.Is(err, os.ErrProcessDone) {
		return ErrNotRunning
	}
	return err
}

// Resize sets the size of the process's terminal in characters. A
// process without a terminal gives an errdefs.ErrInvalidArgument.
func (p *Process) Resize(width, height uint16) error {
	if p.console == nil {
		return fmt.Errorf("process has no terminal: %w", errdefs.ErrInvalidArgument)
	}
	select {
	case <-p.done:
		return ErrNotRunning
	default:
	}
	return p.console.Resize(console.WinSize{Width: width, Height: height})
}

// start runs proc in c, with Stdio copied through pipes or a terminal.
// init starts the container's init (libcontainer's Run: created, then
// released through the exec fifo). On error nothing of the process
// remains: libcontainer has killed it and removed the cgroup it made.
func (c *Container) start(proc *specs.Process, stdio Stdio, init bool) (_ *Process, retErr error) {
	lp, err := libcontainerProcess(proc)
	if err != nil {
		return nil, err
	}
	lp.Init = init
	p := &Process{lp: lp, c: c, isInit: init, done: make(chan struct{})}

	// closers are the parent's ends, closed on failure; childEnds the
	// child's, closed once the child has them (or on failure).
	var closers, childEnds []io.Closer
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
		if retErr != nil {
			for _, f := range closers {
				f.Close()
			}
		}
	}()
	var copiers []func()
	var consoleParent *os.File
	if proc.Terminal {
		parent, child, err := socketpair()
		if err != nil {
			return nil, err
		}
		closers = append(closers, parent)
		childEnds = append(childEnds, child)
		lp.ConsoleSocket = child
		consoleParent = parent
		if proc.ConsoleSize != nil {
			lp.ConsoleWidth, lp.ConsoleHeight = uint16(proc.ConsoleSize.Width), uint16(proc.ConsoleSize.Height)
		}
	} else {
		if stdio.Stdin != nil {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			closers = append(closers, w)
			childEnds = append(childEnds, r)
			lp.Stdin = r
			copiers = append(copiers, func() { copyIn(w, stdio.Stdin) })
		}
		for _, out := range []struct {
			dst io.Writer
			set func(*os.File)
		}{
			{stdio.Stdout, func(f *os.File) { lp.Stdout = f }},
			{stdio.Stderr, func(f *os.File) { lp.Stderr = f }},
		} {
			if out.dst == nil {
				continue
			}
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			closers = append(closers, r)
			childEnds = append(childEnds, w)
			out.set(w)
			dst := out.dst
			p.copies.Add(1)
			copiers = append(copiers, func() {
				defer p.copies.Done()
				copyOut(dst, r)
			})
		}
	}

	if init {
		err = c.lc.Run(lp)
	} else {
		err = c.lc.Start(lp)
	}
	if err != nil {
		return nil, classifyStartError(err)
	}
	if p.pid, err = lp.Pid(); err != nil {
		return nil, err
	}
	// The child has its ends; close ours of them now (the deferred
	// close), so that EOF reaches the copiers.
	if consoleParent != nil {
		master, err := recvFd(consoleParent)
		consoleParent.Close()
		if err != nil {
			_ = lp.Signal(unix.SIGKILL)
			_, _ = lp.Wait()
			return nil, fmt.Errorf("receive console: %w", err)
		}
		cons, err := console.ConsoleFromFile(master)
		if err != nil {
			master.Close()
			_ = lp.Signal(unix.SIGKILL)
			_, _ = lp.Wait()
			return nil, err
		}
		p.console = cons
		p.copies.Add(1)
		copiers = append(copiers, func() {
			defer p.copies.Done()
			copyOut(stdio.Stdout, cons)
		})
		if stdio.Stdin != nil {
			copiers = append(copiers, func() { copyIn(cons, stdio.Stdin) })
		}
	}
	for _, f := range copiers {
		go f()
	}
	go p.wait()
	return p, nil
}

// wait reaps the process, waits for its output to be copied, and for the
// init reads the cgroup's OOM kill count (before anyone removes it).
func (p *Process) wait() {
	ps, err := p.lp.Wait()
	st := ExitStatus{ExitedAt: time.Now()}
	if ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
			switch {
			case ws.Signaled():
				st.Signal = ws.Signal()
				st.Code = 128 + int(ws.Signal())
			default:
				st.Code = ws.ExitStatus()
			}
		}
		err = nil // a non-zero exit is a status, not an error
	}
	p.copies.Wait()
	if p.console != nil {
		p.console.Close()
	}
	if p.isInit {
		st.OOMKilled = p.c.oomKilled()
	}
	p.status, p.err = st, err
	close(p.done)
}

// copyIn copies src to the process's input until src ends or the
// process has gone; a pipe is then closed (the process reads EOF), a
// terminal left open for the output, as containerd does.
func copyIn(dst io.WriteCloser, src io.Reader) {
	_, _ = io.Copy(dst, src)
	if _, ok := dst.(console.Console); !ok {
		dst.Close()
	}
}

// copyOut copies the process's output to dst until EOF (EIO on a
// terminal once the process has gone), then closes src. A failing dst
// does not stop the draining, so the process never blocks on a full
// pipe.
func copyOut(dst io.Writer, src io.ReadCloser) {
	defer src.Close()
	if dst == nil {
		dst = io.Discard
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				dst = io.Discard
			}
		}
		if err != nil {
			return
		}
	}
}

// libcontainerProcess turns an OCI process into libcontainer's, as runc's
// newProcess.
func libcontainerProcess(p *specs.Process) (*libcontainer.Process, error) {
	if p == nil || len(p.Args) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	nnp := p.NoNewPrivileges
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &nnp,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
	}
	if p.Capabilities != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding:    p.Capabilities.Bounding,
			Effective:   p.Capabilities.Effective,
			Inheritable: p.Capabilities.Inheritable,
			Permitted:   p.Capabilities.Permitted,
			Ambient:     p.Capabilities.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		typ, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q: %w", rl.Type, errdefs.ErrInvalidArgument)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: typ, Hard: rl.Hard, Soft: rl.Soft})
	}
	return lp, nil
}

// socketpair returns a connected pair of unix stream sockets, for the
// console's master fd.
func socketpair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fds[1]), "console-parent"), os.NewFile(uintptr(fds[0]), "console-child"), nil
}

// recvFd receives one file descriptor (the terminal's master) sent with
// SCM_RIGHTS on socket.
func recvFd(socket *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	conn, err := socket.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	if err := conn.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no file descriptor received (%d control messages): %w", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("expected one file descriptor: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// rlimitTypes maps OCI rlimit names to their numbers.
var rlimitTypes = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}
