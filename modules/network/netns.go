package network

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// namespace is a network namespace the controller works in: the daemon's
// own (h closed, the zero value) or one opened from a path, as tests use to
// keep the host's links and packet filter untouched.
type namespace struct {
	h netns.NsHandle // -1 or 0 when the daemon's own
}

// openNamespace opens the namespace at path; empty is the daemon's own.
func openNamespace(path string) (namespace, error) {
	if path == "" {
		return namespace{h: netns.None()}, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return namespace{}, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return namespace{h: h}, nil
}

// own reports whether the namespace is the daemon's own.
func (n namespace) own() bool { return !n.h.IsOpen() }

func (n namespace) close() {
	if !n.own() {
		n.h.Close()
	}
}

// handle returns a netlink handle into the namespace.
func (n namespace) handle() (*netlink.Handle, error) {
	if n.own() {
		return netlink.NewHandle()
	}
	return netlink.NewHandleAt(n.h)
}

// nft returns an nftables connection into the namespace.
func (n namespace) nft() (*nftables.Conn, error) {
	if n.own() {
		return nftables.New()
	}
	return nftables.New(nftables.WithNetNSFd(int(n.h)))
}

// do runs fn on an OS thread that is in the namespace, for what netlink
// cannot reach from outside: sockets (port reservations, the DNS server)
// and /proc/sys/net, which follow the calling thread's namespace.
func (n namespace) do(fn func() error) error {
	if n.own() {
		return fn()
	}
	return doIn(n.h, fn)
}

// doIn runs fn on a locked OS thread moved into ns, and moves the thread
// back afterwards. A thread that cannot be moved back is left locked, so
// the runtime ends it with the goroutine instead of reusing it.
func doIn(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- ferr // thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setSysctl writes value to /proc/sys/<key> (key with slashes,
// "net/ipv4/ip_forward") in the namespace, unless it already holds it.
func (n namespace) setSysctl(key, value string) error {
	return n.do(func() error {
		p := filepath.Join("/proc/sys", key)
		if cur, err := os.ReadFile(p); err == nil && string(trimNL(cur)) == value {
			return nil
		}
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		return nil
	})
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
