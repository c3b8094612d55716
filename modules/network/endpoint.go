package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"go.uber.org/zap"
)

// Endpoint is a container's attachment to a network, persisted with the
// network.
type Endpoint struct {
	// ID is the endpoint's 64 hex digit ID.
	ID string `json:"id"`
	// ContainerID is the attached container's ID.
	ContainerID string `json:"container_id,omitempty"`
	// Name is the container's name, its DNS name on user networks.
	Name string `json:"name,omitempty"`
	// Aliases are the container's extra DNS names on the network
	// (--network-alias).
	Aliases []string `json:"aliases,omitempty"`
	// Addr is the container's IPv4 address on the network.
	Addr netip.Addr `json:"addr,omitzero"`
	// HostVeth is the host end of the container's veth pair, empty when
	// no namespace was wired.
	HostVeth string `json:"host_veth,omitempty"`
	// Ports are the published ports, host ports resolved.
	Ports []PortBinding `json:"ports,omitempty"`
}

// EndpointRequest asks Connect for an endpoint.
type EndpointRequest struct {
	// ContainerID is the container's ID; a container has at most one
	// endpoint per network.
	ContainerID string
	// Name is the container's name (without the leading slash).
	Name string
	// Aliases are extra DNS names on this network.
	Aliases []string
	// IP is the address asked for (--ip); the zero value takes the next
	// free one.
	IP netip.Addr
	// NetNSPath, when set, is the container's network namespace: a veth
	// pair wires it to the bridge (CreateVeth). Empty reserves the
	// address and ports only.
	NetNSPath string
	// IfName is the interface's name in the namespace; eth0 when empty.
	IfName string
	// Ports are the ports to publish (-p, -P).
	Ports []PortBinding
	// NoDefaultRoute leaves the namespace's default route alone: a
	// container's second and later networks do not take the default
	// route from its first, as dockerd.
	NoDefaultRoute bool
}

// Attachment is what Connect made: the endpoint and the settings the
// container's inspect shows.
type Attachment struct {
	// Endpoint is the persisted endpoint.
	Endpoint Endpoint
	// NetworkID is the network's ID.
	NetworkID string
	// Gateway is the network's gateway, the container's default route
	// (invalid on internal networks).
	Gateway netip.Addr
	// PrefixLen is the subnet's prefix length.
	PrefixLen int
	// MAC is the container interface's hardware address.
	MAC net.HardwareAddr
	// MTU is the interface's MTU in bytes.
	MTU int
}

// Connect attaches a container to a bridge network: an address (req.IP
// or the next free one), its published ports reserved and DNATed, and,
// with req.NetNSPath, a veth pair into the namespace configured with the
// address, the MTU, lo and a default route (none on internal networks).
// Everything is undone when a step fails. Errors: unknown network 404;
// host or none network, an address outside the subnet 400; an address
// or a host port in use, a container already attached 409; no address
// left 503.
func (c *Controller) Connect(ctx context.Context, netRef string, req EndpointRequest) (_ *Attachment, err error) {
	ports, err := validatePorts(req.Ports)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		return nil, cerrdefs.ErrUnavailable.WithMessage("network controller is closed")
	}
	n, err := c.lookup(netRef)
	if err != nil {
		return nil, err
	}
	r := n.rec
	if r.Driver != driverBridge {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s uses the %s driver: containers join it by their network mode, not by an endpoint", r.Name, r.Driver))
	}
	for _, ep := range r.Endpoints {
		if req.ContainerID != "" && ep.ContainerID == req.ContainerID {
			return nil, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", req.Name, r.Name))
		}
	}

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	ep := &Endpoint{ID: newID(), ContainerID: req.ContainerID, Name: req.Name, Aliases: slices.Clone(req.Aliases)}
	if req.IP.IsValid() {
		if !req.IP.Is4() || !r.Subnet.Contains(req.IP) || (r.IPRange.IsValid() && !r.IPRange.Contains(req.IP)) {
			return nil, ErrAddressOutOfRange
		}
		if err := n.addrs.take(req.IP); err != nil {
			return nil, err
		}
		ep.Addr = req.IP
	} else {
		a, ok := n.addrs.next()
		if !ok {
			return nil, cerrdefs.ErrUnavailable.WithMessage(fmt.Sprintf("no available IPv4 addresses on this network's address pools: %s (%s)", r.Name, r.ID))
		}
		ep.Addr = a
	}
	undo = append(undo, func() { n.addrs.release(ep.Addr) })

	if len(ports) > 0 {
		bound, fds, err := reservePorts(c.ns, ports)
		if err != nil {
			// dockerd's wording, which names the endpoint.
			return nil, fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", req.Name, ep.ID, err)
		}
		ep.Ports = bound
		undo = append(undo, func() { closeFDs(fds) })
		c.ports[ep.ID] = fds
		undo = append(undo, func() { delete(c.ports, ep.ID) })
	}
	att := &Attachment{NetworkID: r.ID, PrefixLen: r.Subnet.Bits(), MAC: macFor(ep.Addr), MTU: r.MTU}
	if !r.Internal {
		att.Gateway = r.Gateway
	}
	if req.NetNSPath != "" {
		gw := att.Gateway
		if req.NoDefaultRoute {
			gw = netip.Addr{}
		}
		host, err := CreateVeth(c.nl, VethConfig{
			Bridge: r.Bridge, NetNSPath: req.NetNSPath, IfName: req.IfName,
			Addr: netip.PrefixFrom(ep.Addr, r.Subnet.Bits()), Gateway: gw, MTU: r.MTU, MAC: att.MAC,
			Isolated: !r.ICC,
		})
		if err != nil {
			return nil, err
		}
		ep.HostVeth = host
		undo = append(undo, func() { deleteLink(c.nl, host) })
	}
	if c.fw != nil && len(ep.Ports) > 0 {
		if err := c.fw.addPorts(r, ep); err != nil {
			return nil, err
		}
		undo = append(undo, func() { c.fw.removePorts(r.ID, ep.ID) })
	}
	if r.Endpoints == nil {
		r.Endpoints = map[string]*Endpoint{}
	}
	r.Endpoints[ep.ID] = ep
	undo = append(undo, func() { delete(r.Endpoints, ep.ID) })
	if err := c.st.saveEndpoints(r); err != nil {
		return nil, err
	}
	att.Endpoint = *ep
	c.event(events.ActionConnect, r, map[string]string{"container": req.ContainerID})
	return att, nil
}

// Disconnect detaches an endpoint, found by container ID or endpoint ID:
// its port rules and reservations, its veth pair (the namespace loses
// the interface) and its address go. Unknown network or endpoint →
// NotFound.
func (c *Controller) Disconnect(ctx context.Context, netRef, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		return cerrdefs.ErrUnavailable.WithMessage("network controller is closed")
	}
	n, err := c.lookup(netRef)
	if err != nil {
		return err
	}
	r := n.rec
	var ep *Endpoint
	for _, e := range r.Endpoints {
		if e.ID == id || (id != "" && e.ContainerID == id) {
			ep = e
		}
	}
	if ep == nil {
		return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s is not connected to network %s", id, r.Name))
	}
	if c.fw != nil && len(ep.Ports) > 0 {
		if err := c.fw.removePorts(r.ID, ep.ID); err != nil {
			return err
		}
	}
	closeFDs(c.ports[ep.ID])
	delete(c.ports, ep.ID)
	if ep.HostVeth != "" {
		if err := deleteLink(c.nl, ep.HostVeth); err != nil {
			c.log.Warn("delete veth", zap.String("veth", ep.HostVeth), zap.Error(err))
		}
	}
	n.addrs.release(ep.Addr)
	delete(r.Endpoints, ep.ID)
	if err := c.st.saveEndpoints(r); err != nil {
		return err
	}
	c.event(events.ActionDisconnect, r, map[string]string{"container": ep.ContainerID})
	return nil
}

// AllocateAddress reserves an address on a bridge network, want when
// valid (--ip) or the next free one, and returns it with the subnet's
// prefix length. It is not persisted: Connect records addresses with
// their endpoints; this is for a caller that needs the address before
// it has a namespace and then calls Connect with it after
// ReleaseAddress. Errors as Connect's.
func (c *Controller) AllocateAddress(netRef string, want netip.Addr) (netip.Prefix, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(netRef)
	if err != nil {
		return netip.Prefix{}, err
	}
	if n.addrs == nil {
		return netip.Prefix{}, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s has no addresses to allocate", n.rec.Name))
	}
	if want.IsValid() {
		if !n.rec.Subnet.Contains(want) || (n.rec.IPRange.IsValid() && !n.rec.IPRange.Contains(want)) {
			return netip.Prefix{}, ErrAddressOutOfRange
		}
		if err := n.addrs.take(want); err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(want, n.rec.Subnet.Bits()), nil
	}
	a, ok := n.addrs.next()
	if !ok {
		return netip.Prefix{}, cerrdefs.ErrUnavailable.WithMessage(fmt.Sprintf("no available IPv4 addresses on this network's address pools: %s (%s)", n.rec.Name, n.rec.ID))
	}
	return netip.PrefixFrom(a, n.rec.Subnet.Bits()), nil
}

// ReleaseAddress frees an address AllocateAddress gave.
func (c *Controller) ReleaseAddress(netRef string, a netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(netRef)
	if err != nil {
		return err
	}
	if n.addrs != nil {
		n.addrs.release(a)
	}
	return nil
}

// LookupName returns the addresses on network netID of the containers
// that answer to name: their name, an alias, or their short (12 digit)
// ID, compared without case as DNS does. The embedded DNS server serves
// from it.
func (c *Controller) LookupName(netID, name string) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nets[netID]
	if !ok {
		return nil
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	var out []netip.Addr
	for _, ep := range n.rec.Endpoints {
		match := strings.EqualFold(ep.Name, name) ||
			(len(ep.ContainerID) >= 12 && strings.EqualFold(ep.ContainerID[:12], name))
		for _, a := range ep.Aliases {
			match = match || strings.EqualFold(a, name)
		}
		if match && ep.Addr.IsValid() {
			out = append(out, ep.Addr)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// LookupAddr returns the name of the container with address a on
// network netID, for reverse lookups; ok false when none has it.
func (c *Controller) LookupAddr(netID string, a netip.Addr) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nets[netID]
	if !ok {
		return "", false
	}
	for _, ep := range n.rec.Endpoints {
		if ep.Addr == a && ep.Name != "" {
			return ep.Name, true
		}
	}
	return "", false
}
