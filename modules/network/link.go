package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureBridge makes the bridge link name exist, with gw/bits as an
// address, the MTU and up. It reports whether it created the link; a
// link it created is deleted again when a later step fails.
func ensureBridge(h *netlink.Handle, name string, gw netip.Addr, subnet netip.Prefix, mtu int) (created bool, err error) {
	l, err := h.LinkByName(name)
	switch {
	case err == nil:
		if l.Type() != "bridge" {
			return false, fmt.Errorf("link %s exists and is not a bridge (%s)", name, l.Type())
		}
	case isLinkNotFound(err):
		la := netlink.NewLinkAttrs()
		la.Name = name
		if mtu > 0 {
			la.MTU = mtu
		}
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", name, err)
		}
		created = true
		if l, err = h.LinkByName(name); err != nil {
			return true, fmt.Errorf("bridge %s: %w", name, err)
		}
	default:
		return false, fmt.Errorf("bridge %s: %w", name, err)
	}
	defer func() {
		if err != nil && created {
			h.LinkDel(l)
		}
	}()
	want := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return created, fmt.Errorf("addresses of %s: %w", name, err)
	}
	have := false
	for _, a := range addrs {
		have = have || a.IPNet.String() == want.IPNet.String()
	}
	if !have {
		if err := h.AddrAdd(l, want); err != nil {
			return created, fmt.Errorf("address %s on %s: %w", want.IPNet, name, err)
		}
	}
	if mtu > 0 && l.Attrs().MTU != mtu && created {
		if err := h.LinkSetMTU(l, mtu); err != nil {
			return created, fmt.Errorf("mtu of %s: %w", name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return created, fmt.Errorf("bring %s up: %w", name, err)
	}
	return created, nil
}

// deleteLink deletes the link name; a missing link is not an error.
func deleteLink(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// bridgeAddr returns the first IPv4 address (with prefix) of link name,
// ok false when the link does not exist or has none.
func bridgeAddr(h *netlink.Handle, name string) (netip.Prefix, bool, error) {
	l, err := h.LinkByName(name)
	if isLinkNotFound(err) {
		return netip.Prefix{}, false, nil
	}
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("link %s: %w", name, err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return netip.Prefix{}, false, fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		return netip.PrefixFrom(ip, ones), true, nil
	}
	return netip.Prefix{}, false, nil
}

// routedPrefixes returns the destinations of the IPv4 routes in the main
// table, except the default route and routes through the link skip: the
// subnets a new network must not overlap, as dockerd checks.
func routedPrefixes(h *netlink.Handle, skip string) ([]netip.Prefix, error) {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	skipIdx := -1
	if skip != "" {
		if l, err := h.LinkByName(skip); err == nil {
			skipIdx = l.Attrs().Index
		}
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == skipIdx {
			continue
		}
		ip, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ones == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out, nil
}

// VethConfig says how to wire a network namespace to a bridge.
type VethConfig struct {
	// Bridge is the bridge the host end is enslaved to.
	Bridge string
	// NetNSPath is the target namespace (/proc/<pid>/ns/net, a bind
	// mount under /run/netns, …).
	NetNSPath string
	// IfName is the interface's name inside the namespace; eth0 when
	// empty.
	IfName string
	// Addr is the interface's address and prefix length.
	Addr netip.Prefix
	// Gateway, when valid, becomes the namespace's default route.
	Gateway netip.Addr
	// MTU is both ends' MTU in bytes; the kernel's default when 0.
	MTU int
	// MAC is the interface's hardware address; the kernel picks one
	// when nil.
	MAC net.HardwareAddr
	// Isolated makes the host end an isolated bridge port: it cannot
	// exchange frames with the bridge's other isolated ports, only with
	// the bridge itself. Networks with inter-container communication off
	// (--icc=false, enable_icc=false) use it, so isolation holds even
	// where bridged traffic bypasses the packet filter (no br_netfilter).
	Isolated bool
}

// CreateVeth wires the namespace at cfg.NetNSPath to cfg.Bridge with a
// veth pair, from the namespace h works in: the host end ("veth" and 7
// hex digits, returned) is enslaved to the bridge and up; the other end
// is moved into the namespace, renamed cfg.IfName, given cfg.Addr, the
// MTU and MAC, and brought up with lo, and the default route set through
// cfg.Gateway. On any error the pair is deleted, which leaves the
// namespace as it was.
func CreateVeth(h *netlink.Handle, cfg VethConfig) (host string, err error) {
	if cfg.IfName == "" {
		cfg.IfName = "eth0"
	}
	br, err := h.LinkByName(cfg.Bridge)
	if err != nil {
		return "", fmt.Errorf("bridge %s: %w", cfg.Bridge, err)
	}
	target, err := netns.GetFromPath(cfg.NetNSPath)
	if err != nil {
		return "", fmt.Errorf("network namespace %s: %w", cfg.NetNSPath, err)
	}
	defer target.Close()

	suffix := randomHex(4)[:7]
	host, peer := "veth"+suffix, "vtmp"+suffix
	la := netlink.NewLinkAttrs()
	la.Name = host
	la.MasterIndex = br.Attrs().Index
	if cfg.MTU > 0 {
		la.MTU = cfg.MTU
	}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: peer, PeerNamespace: netlink.NsFd(target)}
	if cfg.MAC != nil {
		veth.PeerHardwareAddr = cfg.MAC
	}
	if err := h.LinkAdd(veth); err != nil {
		return "", fmt.Errorf("create veth pair %s: %w", host, err)
	}
	defer func() {
		if err != nil {
			deleteLink(h, host)
		}
	}()

	th, err := netlink.NewHandleAt(target)
	if err != nil {
		return "", fmt.Errorf("netlink in %s: %w", cfg.NetNSPath, err)
	}
	defer th.Close()
	in, err := th.LinkByName(peer)
	if err != nil {
		return "", fmt.Errorf("veth peer in %s: %w", cfg.NetNSPath, err)
	}
	if cfg.MTU > 0 {
		if err := th.LinkSetMTU(in, cfg.MTU); err != nil {
			return "", fmt.Errorf("mtu of %s: %w", cfg.IfName, err)
		}
	}
	if err := th.LinkSetName(in, cfg.IfName); err != nil {
		return "", fmt.Errorf("rename veth peer to %s: %w", cfg.IfName, err)
	}
	if cfg.Addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: cfg.Addr.Addr().AsSlice(), Mask: net.CIDRMask(cfg.Addr.Bits(), cfg.Addr.Addr().BitLen())}}
		if err := th.AddrAdd(in, a); err != nil {
			return "", fmt.Errorf("address %s on %s: %w", cfg.Addr, cfg.IfName, err)
		}
	}
	if err := th.LinkSetUp(in); err != nil {
		return "", fmt.Errorf("bring %s up: %w", cfg.IfName, err)
	}
	if lo, err := th.LinkByName("lo"); err == nil {
		if err := th.LinkSetUp(lo); err != nil {
			return "", fmt.Errorf("bring lo up: %w", err)
		}
	}
	if cfg.Gateway.IsValid() {
		r := &netlink.Route{LinkIndex: in.Attrs().Index, Gw: cfg.Gateway.AsSlice(), Scope: netlink.SCOPE_UNIVERSE}
		if err := th.RouteReplace(r); err != nil {
			return "", fmt.Errorf("default route via %s: %w", cfg.Gateway, err)
		}
	}
	hl, err := h.LinkByName(host)
	if err != nil {
		return "", fmt.Errorf("veth %s: %w", host, err)
	}
	if cfg.Isolated {
		if err := h.LinkSetIsolated(hl, true); err != nil {
			return "", fmt.Errorf("isolate bridge port %s: %w", host, err)
		}
	}
	if err := h.LinkSetUp(hl); err != nil {
		return "", fmt.Errorf("bring %s up: %w", host, err)
	}
	return host, nil
}

// macFor derives an endpoint's MAC from its IPv4 address, 02:42 then the
// four address bytes, as dockerd did: unique on a network, stable across
// restarts.
func macFor(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
