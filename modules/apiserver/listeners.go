package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/coreos/go-systemd/v22/activation"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/host"
)

// Listener is one bound API socket.
type Listener struct {
	// Addr is the address it serves, as configured ("unix:///run/x.sock",
	// "fd://3") except that a tcp:// port 0 is the port bound.
	Addr string
	// Listener is the socket, wrapped in TLS for tcp:// hosts with TLS.
	net.Listener
}

// Listeners are the API sockets of step 2.2, bound early in the boot so
// that clients connecting while the daemon boots wait in the backlog
// instead of failing; the apiserver stage serves them once every router
// is ready.
type Listeners struct {
	ls []Listener
}

// All returns the listeners in the order of the configured hosts.
func (l *Listeners) All() []Listener { return l.ls }

// ListenersParams are the inputs of stage 2.2 listeners.
type ListenersParams struct {
	fx.In

	Config *config.Config
	// Verified orders the binding after 3.2 verify-settings: nothing is
	// bound for a configuration that will be refused.
	Verified  config.Verified
	Logger    *zap.Logger
	Lifecycle fx.Lifecycle
	// Privileged orders the binding after 3.4 root-check: a daemon that
	// is not root binds nothing.
	Privileged host.Privileged `optional:"true"`
	// Pidfile orders the binding after the pidfile: a second daemon on the
	// same pidfile is refused before it replaces the first one's socket.
	Pidfile host.Pidfile `optional:"true"`
}

// NewListeners is stage 2.2 listeners: it binds every configured host —
// unix:// (socket mode 0660, group config.Group), tcp:// (with TLS as
// configured) and fd:// (systemd socket activation) — and appends a hook
// that closes them at stop. A failure closes what was already bound.
//
// tcp:// without TLS is refused, with an error explaining the risk,
// unless TLS was turned off explicitly (--tls=false), which only warns:
// stricter than dockerd, as its deprecation notes announce.
func NewListeners(p ListenersParams) (*Listeners, error) {
	log := p.Logger.With(zap.String("module", "apiserver"))
	b := binder{cfg: p.Config, log: log}
	l, err := b.bindAll()
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStop: func(context.Context) error {
		l.close()
		return nil
	}})
	return l, nil
}

// close closes every listener, ignoring the errors of those the server
// already closed.
func (l *Listeners) close() {
	for _, x := range l.ls {
		_ = x.Close()
	}
}

// binder binds the configured hosts.
type binder struct {
	cfg *config.Config
	log *zap.Logger
	// activated are the systemd-passed sockets, taken once on the first
	// fd:// host.
	activated []activatedFile
	taken     bool
	tls       *tls.Config
}

func (b *binder) bindAll() (*Listeners, error) {
	l := &Listeners{}
	hosts := b.cfg.Hosts
	if len(hosts) == 0 {
		hosts = []string{config.DefaultHost}
	}
	for _, h := range hosts {
		ls, err := b.bind(h)
		if err != nil {
			l.close()
			b.closeUnused()
			return nil, err
		}
		for _, x := range ls {
			b.log.Info("api listening", zap.String("addr", x.Addr))
		}
		l.ls = append(l.ls, ls...)
	}
	b.closeUnused()
	return l, nil
}

func (b *binder) bind(host string) ([]Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid API host %q: want unix://, tcp:// or fd://", host))
	}
	switch proto {
	case "unix":
		ln, err := b.unix(addr)
		if err != nil {
			return nil, err
		}
		return []Listener{{Addr: host, Listener: ln}}, nil
	case "tcp":
		if err := b.tcpAllowed(host); err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		bound := "tcp://" + ln.Addr().String()
		wrapped, err := b.wrapTLS(ln)
		if err != nil {
			ln.Close()
			return nil, err
		}
		return []Listener{{Addr: bound, Listener: wrapped}}, nil
	case "fd":
		return b.fd(addr)
	}
	return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid API host %q: unsupported protocol %q", host, proto))
}

// tlsOn reports whether tcp hosts are served over TLS.
func (b *binder) tlsOn() bool { return b.cfg.TLS || b.cfg.TLSVerify }

// tcpAllowed refuses a tcp host without TLS unless TLS was turned off
// explicitly, and warns about the weaker set-ups it lets through.
func (b *binder) tcpAllowed(host string) error {
	switch {
	case !b.tlsOn() && !b.cfg.TLSExplicit:
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"refusing to serve the API on %s without TLS: anyone who can reach that address gets root on this machine; "+
				"use --tlsverify with --tlscacert, --tlscert and --tlskey, or pass --tls=false to accept the risk", host))
	case !b.tlsOn():
		b.log.Warn("serving the API without TLS (--tls=false): anyone who can reach this address gets root on this machine",
			zap.String("addr", host))
	case !b.cfg.TLSVerify:
		b.log.Warn("serving the API with TLS but without --tlsverify: any client that can reach this address gets root on this machine",
			zap.String("addr", host))
	}
	return nil
}

// wrapTLS wraps ln in TLS when it is on.
func (b *binder) wrapTLS(ln net.Listener) (net.Listener, error) {
	if !b.tlsOn() {
		return ln, nil
	}
	if b.tls == nil {
		c, err := ServerTLSConfig(b.cfg)
		if err != nil {
			return nil, err
		}
		b.tls = c
	}
	return tls.NewListener(ln, b.tls), nil
}

// unix binds a unix socket at path with mode 0660, owned by root and the
// configured group. A stale socket is replaced; any other file is left
// alone and is an error. A missing default group ("docker") is a warning
// and the socket stays root-only; a missing group named with -G is fatal.
func (b *binder) unix(path string) (net.Listener, error) {
	gid, err := b.socketGroup()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, cerrdefs.ErrAlreadyExists.WithMessage(fmt.Sprintf("listen on unix://%s: the path exists and is not a socket", path))
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// No window in which the socket is reachable with looser permissions.
	old := syscall.Umask(0o777)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on unix://%s: %w", path, err)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chown socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return ln, nil
}

// socketGroup resolves config.Group to a gid (a name or a number). A
// missing group warns unless the user named it (-G or "group").
func (b *binder) socketGroup() (int, error) {
	name := b.cfg.Group
	if name == "" {
		name = config.DefaultGroup
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, perr := strconv.Atoi(name); perr == nil {
			g, err = user.LookupGroupId(name)
		}
	}
	if err != nil {
		if !b.cfg.GroupExplicit {
			b.log.Warn("socket group not found: the API socket is root-only", zap.String("group", name), zap.Error(err))
			return 0, nil
		}
		return 0, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("socket group %q (-G/--group): %v", name, err))
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// activatedFile is one socket systemd passed.
type activatedFile struct {
	fd   int    // 3, 4, …
	name string // LISTEN_FDNAMES entry, or "LISTEN_FD_<fd>"
	file *os.File
	used bool
}

// fd returns the systemd-activated sockets spec names: all of them for
// fd:// (or fd://*), the one with that fd number for fd://3, or those
// with that name (LISTEN_FDNAMES, FileDescriptorName=) for fd://api.
func (b *binder) fd(spec string) ([]Listener, error) {
	if !b.taken {
		b.taken = true
		for i, f := range activation.Files(true) {
			b.activated = append(b.activated, activatedFile{fd: 3 + i, name: f.Name(), file: f})
		}
	}
	picked, err := pickActivated(b.activated, spec)
	if err != nil {
		return nil, err
	}
	var out []Listener
	for _, i := range picked {
		a := &b.activated[i]
		ln, err := net.FileListener(a.file)
		if err != nil {
			closeListeners(out)
			return nil, fmt.Errorf("systemd socket fd %d (%s): not a listening socket: %w", a.fd, a.name, err)
		}
		a.used = true
		a.file.Close() // FileListener holds its own copy
		if _, isTCP := ln.Addr().(*net.TCPAddr); isTCP {
			host := "fd://" + strconv.Itoa(a.fd) + " (tcp://" + ln.Addr().String() + ")"
			if err := b.tcpAllowed(host); err != nil {
				ln.Close()
				closeListeners(out)
				return nil, err
			}
			if ln, err = b.wrapTLS(ln); err != nil {
				closeListeners(out)
				return nil, err
			}
		}
		out = append(out, Listener{Addr: "fd://" + strconv.Itoa(a.fd), Listener: ln})
	}
	return out, nil
}

// closeUnused closes the activated sockets no fd:// host asked for.
func (b *binder) closeUnused() {
	for i := range b.activated {
		if !b.activated[i].used {
			b.activated[i].file.Close()
			b.activated[i].used = true
		}
	}
}

func closeListeners(ls []Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// pickActivated returns the indexes in files that fd://spec names, or an
// error when none were passed or spec names none of them.
func pickActivated(files []activatedFile, spec string) ([]int, error) {
	if len(files) == 0 {
		return nil, cerrdefs.ErrNotFound.WithMessage("fd://" + spec + ": no sockets were passed by systemd socket activation (LISTEN_FDS): start wharfd from its .socket unit, or use unix:// or tcp://")
	}
	var out []int
	if spec == "" || spec == "*" {
		for i := range files {
			out = append(out, i)
		}
		return out, nil
	}
	if n, err := strconv.Atoi(spec); err == nil {
		for i, f := range files {
			if f.fd == n {
				return []int{i}, nil
			}
		}
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("fd://%s: systemd passed fds 3 to %d only", spec, 2+len(files)))
	}
	for i, f := range files {
		if f.name == spec {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("fd://%s: no socket of that name was passed by systemd (FileDescriptorName=)", spec))
	}
	return out, nil
}
