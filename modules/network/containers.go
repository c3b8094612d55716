package network

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	nettypes "github.com/moby/moby/api/types/network"
)

// NetworkInfo is what the container engine needs to know of a network to
// attach a container to it.
type NetworkInfo struct {
	// ID and Name are the network's; Driver is bridge, host or null.
	ID, Name, Driver string
	// UserDefined is true for bridge networks other than the default
	// bridge: the ones with the embedded DNS, aliases and --ip, as
	// dockerd's IsUserDefined.
	UserDefined bool
	// Internal networks give no default route.
	Internal bool
	// IPAMConfigured is true when the subnet was asked for at create:
	// only then does a container's --ip work, as dockerd.
	IPAMConfigured bool
	// Subnet, IPRange and Gateway are the bridge network's addresses
	// (invalid for host and none).
	Subnet, IPRange netip.Prefix
	Gateway         netip.Addr
}

// Network resolves ref (ID, name or unique ID prefix) to the network's
// information, with Get's errors.
func (c *Controller) Network(ref string) (NetworkInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(ref)
	if err != nil {
		return NetworkInfo{}, err
	}
	r := n.rec
	return NetworkInfo{
		ID: r.ID, Name: r.Name, Driver: r.Driver,
		UserDefined: r.Driver == driverBridge && r.Name != nettypes.NetworkBridge,
		Internal:    r.Internal, IPAMConfigured: r.IPAMConfigured,
		Subnet: r.Subnet, IPRange: r.IPRange, Gateway: r.Gateway,
	}, nil
}

// HostGateway returns the address --add-host name:host-gateway maps to:
// the default bridge's gateway, as dockerd's default host-gateway-ip;
// ok is false when the default bridge is disabled.
func (c *Controller) HostGateway() (netip.Addr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nets {
		if n.rec.Name == nettypes.NetworkBridge && n.rec.Driver == driverBridge && n.rec.Gateway.IsValid() {
			return n.rec.Gateway, true
		}
	}
	return netip.Addr{}, false
}

// EndpointRef names one endpoint that belongs to a container.
type EndpointRef struct {
	// NetworkID and EndpointID identify the endpoint.
	NetworkID, EndpointID string
	// ContainerID is the container it belongs to.
	ContainerID string
}

// ContainerEndpoints lists the endpoints that belong to containers (those
// Connect made with a ContainerID), sorted by network then endpoint: a
// daemon that starts again releases those of containers no longer
// running (Disconnect), as dockerd's sandbox cleanup at boot.
func (c *Controller) ContainerEndpoints() []EndpointRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []EndpointRef
	for id, n := range c.nets {
		for _, ep := range n.rec.Endpoints {
			if ep.ContainerID != "" {
				out = append(out, EndpointRef{NetworkID: id, EndpointID: ep.ID, ContainerID: ep.ContainerID})
			}
		}
	}
	slices.SortFunc(out, func(a, b EndpointRef) int {
		return cmp.Or(strings.Compare(a.NetworkID, b.NetworkID), strings.Compare(a.EndpointID, b.EndpointID))
	})
	return out
}
