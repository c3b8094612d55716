package network

import (
	"fmt"
	"net/netip"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/wharfd/wharfd/modules/config"
)

// DefaultAddressPools returns dockerd's default pools for local networks:
// 172.17.0.0/16 to 172.31.0.0/16 whole, then 192.168.0.0/16 in /20s. The
// default bridge takes the first subnet free of routes and networks,
// user-defined networks the next ones. --default-address-pool replaces
// the list.
func DefaultAddressPools() []config.AddressPool {
	pools := make([]config.AddressPool, 0, 16)
	for b := 17; b <= 31; b++ {
		pools = append(pools, config.AddressPool{Base: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16), Size: 16})
	}
	return append(pools, config.AddressPool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}

// ErrPoolsExhausted is returned when no pool has a subnet left that
// overlaps no network and no route, with dockerd's wording.
var ErrPoolsExhausted = cerrdefs.ErrInvalidArgument.WithMessage("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")

// PickSubnet returns the first subnet, in pool order and address order
// within a pool, that overlaps none of used (other networks' subnets and
// the host's routes). IPv4 only. It fails with ErrPoolsExhausted.
func PickSubnet(pools []config.AddressPool, used []netip.Prefix) (netip.Prefix, error) {
	for _, p := range pools {
		base := p.Base.Masked()
		if !base.Addr().Is4() || p.Size < base.Bits() || p.Size > 32 {
			continue
		}
		step := uint64(1) << (32 - p.Size)
		end := addrToU32(base.Addr()) + uint64(1)<<(32-base.Bits()) // exclusive
		for a := addrToU32(base.Addr()); a < end; a += step {
			cand := netip.PrefixFrom(u32ToAddr(a), p.Size)
			if !overlapsAny(cand, used) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, ErrPoolsExhausted
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.IsValid() && p.Overlaps(u) {
			return true
		}
	}
	return false
}

func addrToU32(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func u32ToAddr(v uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Address allocation errors, with libnetwork's wording.
var (
	// ErrAddressInUse is a requested address already allocated (409).
	ErrAddressInUse = cerrdefs.ErrConflict.WithMessage("Address already in use")
	// ErrAddressOutOfRange is a requested address outside the network's
	// subnet, or its ip-range (400).
	ErrAddressOutOfRange = cerrdefs.ErrInvalidArgument.WithMessage("requested address is out of range")
)

// addrSpace hands out the addresses of one subnet: from the ip-range (the
// whole subnet when none), never the network or broadcast address nor the
// gateway, serially after the last one given (as libnetwork's default
// IPAM, so a released address is not reused at once).
type addrSpace struct {
	subnet  netip.Prefix
	rng     netip.Prefix
	gateway netip.Addr
	used    map[netip.Addr]bool
	last    uint64
}

func newAddrSpace(subnet, ipRange netip.Prefix, gateway netip.Addr) *addrSpace {
	if !ipRange.IsValid() {
		ipRange = subnet
	}
	return &addrSpace{subnet: subnet.Masked(), rng: ipRange.Masked(), gateway: gateway, used: map[netip.Addr]bool{}}
}

// reserved reports whether a is never handed out: the subnet's network
// and broadcast addresses (on subnets larger than /31) and the gateway.
func (s *addrSpace) reserved(a netip.Addr) bool {
	if a == s.gateway {
		return true
	}
	if s.subnet.Bits() >= 31 {
		return false
	}
	v := addrToU32(a)
	first := addrToU32(s.subnet.Addr())
	last := first + uint64(1)<<(32-s.subnet.Bits()) - 1
	return v == first || v == last
}

// take marks a as used: it must be in the subnet and free.
func (s *addrSpace) take(a netip.Addr) error {
	if !s.subnet.Contains(a) || s.reserved(a) {
		return ErrAddressOutOfRange
	}
	if s.used[a] {
		return ErrAddressInUse
	}
	s.used[a] = true
	return nil
}

// next allocates the next free address of the range; ok is false when
// the range is full.
func (s *addrSpace) next() (netip.Addr, bool) {
	first := addrToU32(s.rng.Addr())
	size := uint64(1) << (32 - s.rng.Bits())
	start := s.last + 1
	if start < first || start >= first+size {
		start = first
	}
	for i := uint64(0); i < size; i++ {
		v := first + (start-first+i)%size
		a := u32ToAddr(v)
		if s.used[a] || s.reserved(a) || !s.subnet.Contains(a) {
			continue
		}
		s.used[a] = true
		s.last = v
		return a, true
	}
	return netip.Addr{}, false
}

// release frees a; freeing a free address does nothing.
func (s *addrSpace) release(a netip.Addr) { delete(s.used, a) }

// free returns the number of addresses the range still has.
func (s *addrSpace) free() int {
	n := 0
	first := addrToU32(s.rng.Addr())
	size := uint64(1) << (32 - s.rng.Bits())
	for v := first; v < first+size; v++ {
		a := u32ToAddr(v)
		if !s.used[a] && !s.reserved(a) && s.subnet.Contains(a) {
			n++
		}
	}
	return n
}

// firstHost returns the subnet's first host address (.1 of a /16), the
// gateway dockerd gives a network whose gateway is not configured.
func firstHost(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// validateIPAM checks a network's IPv4 settings as dockerd does before
// anything is created, and returns the clean values.
func validateIPAM(subnet, ipRange, gateway string) (s, r netip.Prefix, g netip.Addr, err error) {
	s, err = netip.ParsePrefix(subnet)
	if err != nil || !s.Addr().Is4() {
		return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: invalid subnet %s: want an IPv4 CIDR such as 10.1.0.0/24", subnet))
	}
	if s.Masked() != s {
		return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: invalid subnet %s: it should be %s", subnet, s.Masked()))
	}
	if s.Bits() > 30 {
		return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: subnet %s is too small: at most /30", subnet))
	}
	if ipRange != "" {
		r, err = netip.ParsePrefix(ipRange)
		if err != nil || !r.Addr().Is4() {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: invalid ip-range %s: want an IPv4 CIDR", ipRange))
		}
		if r.Masked() != r {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: invalid ip-range %s: it should be %s", ipRange, r.Masked()))
		}
		if r.Bits() < s.Bits() || !s.Contains(r.Addr()) {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: ip-range %s is not within subnet %s", r, s))
		}
	}
	if gateway != "" {
		g, err = netip.ParseAddr(gateway)
		if err != nil || !g.Is4() {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid gateway address %s in Ipam configuration", gateway))
		}
		if !s.Contains(g) {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: gateway %s is not in subnet %s", g, s))
		}
		if newAddrSpace(s, netip.Prefix{}, netip.Addr{}).reserved(g) {
			return s, r, g, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid network config: gateway %s is the network or broadcast address of %s", g, s))
		}
	} else {
		g = firstHost(s)
	}
	return s, r, g, nil
}
