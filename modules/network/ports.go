package network

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// PortBinding is one published port, docker run's
// -p [hostIP:][hostPort:]containerPort[/proto].
type PortBinding struct {
	// HostIP is the host address the port is published on; the zero
	// value or 0.0.0.0 means every local address.
	HostIP netip.Addr `json:"host_ip,omitzero"`
	// HostPort is the host port; 0 asks for a random one from the
	// ephemeral range (and is replaced by it).
	HostPort uint16 `json:"host_port"`
	// HostPortEnd, when above HostPort, makes HostPort..HostPortEnd a
	// range (-p 8000-8010:80): the first free port of it is taken, as
	// dockerd, and HostPort replaced by it (HostPortEnd cleared).
	HostPortEnd uint16 `json:"host_port_end,omitempty"`
	// ContainerPort is the container's port.
	ContainerPort uint16 `json:"container_port"`
	// Proto is "tcp" (the default when empty) or "udp".
	Proto string `json:"proto"`
}

// String formats b as docker port does: 0.0.0.0:8080->80/tcp.
func (b PortBinding) String() string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return fmt.Sprintf("%s:%d->%d/%s", ip, b.HostPort, b.ContainerPort, b.proto())
}

func (b PortBinding) proto() string {
	if b.Proto == "" {
		return "tcp"
	}
	return b.Proto
}

func (b PortBinding) hostAddr() string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return fmt.Sprintf("%s:%d", ip, b.HostPort)
}

// PortAllocatedError is a host port that another socket (or another
// container) holds: dockerd's "Bind for 0.0.0.0:8080 failed: port is
// already allocated", a conflict (409).
type PortAllocatedError struct {
	// Binding is the binding that could not be made.
	Binding PortBinding
}

func (e *PortAllocatedError) Error() string {
	return fmt.Sprintf("Bind for %s failed: port is already allocated", e.Binding.hostAddr())
}

// Conflict marks the error as errdefs Conflict.
func (*PortAllocatedError) Conflict() {}

// ErrNoFreePort is returned when the ephemeral range has no free port
// left for a random host port.
var ErrNoFreePort = cerrdefs.ErrUnavailable.WithMessage("no free port in the ephemeral port range")

// validatePorts checks bindings and fills in the defaults.
func validatePorts(in []PortBinding) ([]PortBinding, error) {
	out := make([]PortBinding, 0, len(in))
	for _, b := range in {
		b.Proto = strings.ToLower(b.proto())
		if b.Proto != "tcp" && b.Proto != "udp" {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid proto '%s'", b.Proto))
		}
		if b.ContainerPort == 0 {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage("invalid containerPort: 0")
		}
		if b.HostIP.IsValid() {
			if !b.HostIP.Is4() {
				return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid host IP %s: only IPv4 is supported", b.HostIP))
			}
			if b.HostIP.IsUnspecified() {
				b.HostIP = netip.Addr{}
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// reservePorts binds a socket for each binding, in the controller's
// namespace, and keeps it open (bound, not listening, without
// SO_REUSEADDR) so that no other program and no other container can take
// the port while it is published; the traffic itself never reaches the
// socket, the DNAT rules send it to the container first. Random ports
// (HostPort 0) are drawn from net.ipv4.ip_local_port_range. It returns the
// bindings with their host ports and the sockets; on error every socket
// is closed.
func reservePorts(ns namespace, bindings []PortBinding) (out []PortBinding, fds []int, err error) {
	defer func() {
		if err != nil {
			closeFDs(fds)
			fds = nil
		}
	}()
	err = ns.do(func() error {
		lo, hi := ephemeralRange()
		for _, b := range bindings {
			if b.HostPort != 0 && b.HostPortEnd > b.HostPort {
				var fd int
				var err error
				for p := int(b.HostPort); p <= int(b.HostPortEnd); p++ {
					try := b
					try.HostPort, try.HostPortEnd = uint16(p), 0
					if fd, err = bindPort(try); err == nil {
						b = try
						break
					}
				}
				if err != nil {
					return err
				}
				fds = append(fds, fd)
				out = append(out, b)
				continue
			}
			b.HostPortEnd = 0
			if b.HostPort != 0 {
				fd, err := bindPort(b)
				if err != nil {
					return err
				}
				fds = append(fds, fd)
				out = append(out, b)
				continue
			}
			n := hi - lo + 1
			start := rand.IntN(n)
			found := false
			for i := 0; i < n && !found; i++ {
				b.HostPort = uint16(lo + (start+i)%n)
				fd, err := bindPort(b)
				if err != nil {
					continue
				}
				fds = append(fds, fd)
				out = append(out, b)
				found = true
			}
			if !found {
				return ErrNoFreePort
			}
		}
		return nil
	})
	return out, fds, err
}

// bindPort binds a socket to b's host address and port.
func bindPort(b PortBinding) (int, error) {
	typ := unix.SOCK_STREAM
	if b.proto() == "udp" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("reserve %s: %w", b.hostAddr(), err)
	}
	sa := &unix.SockaddrInet4{Port: int(b.HostPort)}
	if b.HostIP.IsValid() {
		sa.Addr = b.HostIP.As4()
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if err == unix.EADDRINUSE {
			return -1, &PortAllocatedError{Binding: b}
		}
		if err == unix.EADDRNOTAVAIL {
			return -1, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Bind for %s failed: cannot assign requested address", b.hostAddr()))
		}
		return -1, fmt.Errorf("Bind for %s failed: %w", b.hostAddr(), err)
	}
	return fd, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// ephemeralRange returns net.ipv4.ip_local_port_range of the calling
// thread's namespace, 32768–60999 when unreadable.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l <= 0 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}
