package network

import (
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"

	"github.com/wharfd/wharfd/modules/config"
)

// AdvertiseAddr is the node address the daemon reports: a configured
// address, or the IPv4 address of the interface that carries the
// default route.
type AdvertiseAddr struct {
	// Addr is the address; invalid when the host has no default route
	// and none is configured.
	Addr netip.Addr
	// Interface is the interface it was taken from, empty when it was
	// configured as an address.
	Interface string
}

// SkipReason marks stage 3.21 skipped when there is no address to
// report.
func (a AdvertiseAddr) SkipReason() string {
	if a.Addr.IsValid() {
		return ""
	}
	return "no default route and no address configured: no node address to report"
}

// NewAdvertise is stage 3.21 advertise: the default-route interface's
// address. The configuration has no advertise-address option yet; when
// it does, pass it to ResolveAdvertiseAddr.
func NewAdvertise(_ *config.Config) (AdvertiseAddr, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return AdvertiseAddr{}, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	return ResolveAdvertiseAddr(h, "")
}

// ResolveAdvertiseAddr returns the node address, as dockerd resolves an
// advertise address: configured is an IP address (taken as is) or an
// interface name (its first IPv4 address); empty picks the interface of
// the IPv4 default route (the lowest metric). No default route is not an
// error: the address is then invalid. An unknown interface or one with
// no IPv4 address is InvalidArgument.
func ResolveAdvertiseAddr(h *netlink.Handle, configured string) (AdvertiseAddr, error) {
	if configured != "" {
		if a, err := netip.ParseAddr(configured); err == nil {
			return AdvertiseAddr{Addr: a.Unmap()}, nil
		}
		l, err := h.LinkByName(configured)
		if err != nil {
			return AdvertiseAddr{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("advertise address %q: not an IP address nor an interface", configured))
		}
		a, ok, err := firstIPv4(h, l)
		if err != nil {
			return AdvertiseAddr{}, err
		}
		if !ok {
			return AdvertiseAddr{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("advertise address %q: interface has no IPv4 address", configured))
		}
		return AdvertiseAddr{Addr: a, Interface: configured}, nil
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return AdvertiseAddr{}, fmt.Errorf("list routes: %w", err)
	}
	var best *netlink.Route
	for i, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 {
				continue
			}
		}
		if best == nil || r.Priority < best.Priority {
			best = &routes[i]
		}
	}
	if best == nil {
		return AdvertiseAddr{}, nil
	}
	l, err := h.LinkByIndex(best.LinkIndex)
	if err != nil {
		return AdvertiseAddr{}, fmt.Errorf("default route interface: %w", err)
	}
	out := AdvertiseAddr{Interface: l.Attrs().Name}
	if best.Src != nil {
		if a, ok := netip.AddrFromSlice(best.Src.To4()); ok {
			out.Addr = a
			return out, nil
		}
	}
	a, _, err := firstIPv4(h, l)
	if err != nil {
		return AdvertiseAddr{}, err
	}
	out.Addr = a
	return out, nil
}

// firstIPv4 returns the first global IPv4 address of l.
func firstIPv4(h *netlink.Handle, l netlink.Link) (netip.Addr, bool, error) {
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if a.Scope != int(netlink.SCOPE_UNIVERSE) {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			return ip, true, nil
		}
	}
	return netip.Addr{}, false, nil
}
