package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"go.uber.org/zap"

	netrouter "github.com/wharfd/wharfd/modules/apiserver/router/network"
	wnet "github.com/wharfd/wharfd/modules/network"
	"github.com/wharfd/wharfd/modules/runtime"
)

// Networking of containers: this file attaches containers to the
// network controller's networks (modules/network).
//
// A container on the default bridge or a user-defined network gets, at
// each start, a network namespace of its own that the daemon makes and
// bind-mounts on <exec root>/netns/<sandbox ID[:12]> before the init
// runs (the sandbox key), a veth pair into each network's bridge with an
// address from the network's IPAM (or --ip), the default route through
// its first network's gateway, the network's MTU, its published ports
// and, on user-defined networks, the embedded DNS server on 127.0.0.11.
// All of it goes when the container stops (or its start fails). The
// networks it is on and their endpoint settings are persisted with the
// container (Record.Network); the operational data (addresses, endpoint
// IDs, ports) only while it runs.
//
// --network host shares the daemon's namespace, none gives a namespace
// with lo only, container:<id> joins another container's.

// Errors of network modes and endpoint settings, with dockerd's texts
// (its runconfig errors), all InvalidArgument (400).
var (
	ErrConflictSharedNetwork       = errdefs.ErrInvalidArgument.WithMessage("container sharing network namespace with another container or host cannot be connected to any other network")
	ErrConflictHostNetwork         = errdefs.ErrInvalidArgument.WithMessage("container cannot be disconnected from host network or connected to host network")
	ErrConflictNoNetwork           = errdefs.ErrInvalidArgument.WithMessage("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	ErrConflictNetworkAndDNS       = errdefs.ErrInvalidArgument.WithMessage("conflicting options: dns and the network mode")
	ErrConflictNetworkHostname     = errdefs.ErrInvalidArgument.WithMessage("conflicting options: hostname and the network mode")
	ErrConflictNetworkHosts        = errdefs.ErrInvalidArgument.WithMessage("conflicting options: custom host-to-IP mapping and the network mode")
	ErrConflictNetworkPublishPorts = errdefs.ErrInvalidArgument.WithMessage("conflicting options: port publishing and the container type network mode")
	ErrConflictNetworkExposePorts  = errdefs.ErrInvalidArgument.WithMessage("conflicting options: port exposing and the container type network mode")
	ErrUnsupportedNetworkAndIP     = errdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported on user defined networks only")
	ErrUnsupportedNetworkNoSubnet  = errdefs.ErrInvalidArgument.WithMessage("user specified IP address is supported only when connecting to networks with user configured subnets")
	ErrUnsupportedNetworkAndAlias  = errdefs.ErrInvalidArgument.WithMessage("network-scoped aliases are only supported for user-defined networks")
)

// hostGatewayName is the --add-host address that stands for the host
// (the default bridge's gateway), as dockerd's.
const hostGatewayName = "host-gateway"

// NetworkState is a container's networking as config.v2.json keeps it,
// the source of inspect's NetworkSettings. A value in a Record is never
// changed in place: every change stores a new one (clone), so snapshots
// stay consistent.
type NetworkState struct {
	// Networks are the networks the container is on, by network name:
	// the endpoint settings asked for (Aliases, IPAMConfig, NetworkID)
	// and, while it runs, the operational data (EndpointID, IPAddress,
	// IPPrefixLen, Gateway, MacAddress, DNSNames).
	Networks map[string]*network.EndpointSettings
	// SandboxID and SandboxKey are, while it runs in a namespace the
	// daemon made, its ID (64 hex digits) and its file.
	SandboxID, SandboxKey string `json:",omitempty"`
	// Ports are, while it runs, its exposed ports with their host
	// bindings (none for a port exposed but not published), as inspect's
	// NetworkSettings.Ports.
	Ports network.PortMap `json:",omitempty"`
}

// clone deep-copies s (nil stays nil).
func (s *NetworkState) clone() *NetworkState {
	if s == nil {
		return nil
	}
	out := &NetworkState{SandboxID: s.SandboxID, SandboxKey: s.SandboxKey, Networks: make(map[string]*network.EndpointSettings, len(s.Networks))}
	for k, v := range s.Networks {
		out.Networks[k] = v.Copy()
	}
	if s.Ports != nil {
		out.Ports = network.PortMap{}
		for k, v := range s.Ports {
			out.Ports[k] = slices.Clone(v)
		}
	}
	return out
}

// cleanOperational clears what only holds while the container runs.
func (s *NetworkState) cleanOperational() {
	s.SandboxID, s.SandboxKey, s.Ports = "", "", nil
	for _, es := range s.Networks {
		cleanEndpoint(es)
	}
}

func cleanEndpoint(es *network.EndpointSettings) {
	es.EndpointID, es.IPAddress, es.Gateway, es.IPPrefixLen, es.MacAddress, es.DNSNames = "", netip.Addr{}, netip.Addr{}, 0, nil, nil
}

// netRuntime is a container's live networking.
type netRuntime struct {
	// mu serialises start and stop of the networking, connect and
	// disconnect. Never held while waiting for c.mu's holders that may
	// want it; c.mu may be taken under it.
	mu sync.Mutex
	// netns is the namespace file while the container runs in one the
	// daemon made.
	netns string
	// resolver is the embedded DNS server, while on a user network.
	resolver *wnet.Resolver
	// ifaces maps the attached networks' IDs to their interface in the
	// namespace (eth0, eth1, …).
	ifaces map[string]string
	// gateway is the ID of the network giving the default route.
	gateway string
	// published is the ID of the network whose endpoint publishes the
	// container's ports (its first).
	published string
}

// NewNetworkAttacher is the container-networks stage: the daemon as the
// network router's Containers, serving POST /networks/{id}/connect and
// /disconnect (provided as exactly that interface type, as the router
// asks).
func NewNetworkAttacher(d *Daemon) netrouter.Containers { return d }

var _ netrouter.Containers = (*Daemon)(nil)

// netnsDir is where the containers' namespace files live: <exec
// root>/netns, as dockerd's /var/run/docker/netns.
func (d *Daemon) netnsDir() string {
	if d.o.Config != nil && d.o.Config.ExecRoot != "" {
		return filepath.Join(d.o.Config.ExecRoot, "netns")
	}
	return filepath.Join(filepath.Dir(d.o.Dir), "netns")
}

// checkNetworkMode validates and normalises the network mode of a host
// config: "" and default are bridge; host, none, bridge and
// container:<ref> are kept; anything else names a network of the
// controller (404 "network x not found" when none), a partial ID being
// replaced by the full one, as dockerd's normalizeNetMode.
func (d *Daemon) checkNetworkMode(h *container.HostConfig) error {
	switch mode := string(h.NetworkMode); mode {
	case "", NetworkDefault:
		h.NetworkMode = NetworkBridge
	case NetworkBridge, NetworkHost, NetworkNone:
	default:
		if ref, ok := strings.CutPrefix(mode, "container:"); ok {
			if ref == "" {
				return errdefs.ErrInvalidArgument.WithMessage("invalid network mode: container: needs a container name or ID")
			}
			return nil
		}
		// A network that does not exist (yet) fails the start, not the
		// create, as dockerd: a 404 here would make the CLI pull.
		if d.o.Network == nil {
			return nil
		}
		if info, err := d.o.Network.Network(mode); err == nil && mode != info.Name && mode != info.ID {
			h.NetworkMode = container.NetworkMode(info.ID)
		}
	}
	return nil
}

// prepareNetworking checks a create request's networking as dockerd
// does (the conflicts of container:<id> mode with hostname, DNS, extra
// hosts and ports; endpoint settings; --add-host addresses) and returns
// the container's initial NetworkState and warnings. user is the config
// as the request gave it (before the image's), cfg the one stored, whose
// Hostname it sets for container:<id> mode from the joined container.
func (d *Daemon) prepareNetworking(user, cfg *container.Config, h *container.HostConfig, nc *network.NetworkingConfig) (*NetworkState, []string, error) {
	for _, eh := range h.ExtraHosts {
		_, ip, err := parseExtraHost(eh)
		if err != nil {
			return nil, nil, err
		}
		if ip != hostGatewayName {
			if _, err := netip.ParseAddr(ip); err != nil {
				return nil, nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid IP address in add-host: %q", ip))
			}
		}
	}
	var warnings []string
	st := &NetworkState{Networks: map[string]*network.EndpointSettings{}}
	var eps map[string]*network.EndpointSettings
	if nc != nil {
		eps = nc.EndpointsConfig
	}
	mode := h.NetworkMode
	switch {
	case mode.IsContainer():
		switch {
		case user.Hostname != "":
			return nil, nil, ErrConflictNetworkHostname
		case len(h.DNS) > 0:
			return nil, nil, ErrConflictNetworkAndDNS
		case len(h.ExtraHosts) > 0:
			return nil, nil, ErrConflictNetworkHosts
		case len(h.PortBindings) > 0 || h.PublishAllPorts:
			return nil, nil, ErrConflictNetworkPublishPorts
		case len(user.ExposedPorts) > 0:
			return nil, nil, ErrConflictNetworkExposePorts
		case len(eps) > 0:
			return nil, nil, ErrConflictSharedNetwork
		}
		// The joined container's hostname, as dockerd; it may not exist
		// yet, which start reports.
		if target, err := d.get(mode.ConnectedContainer()); err == nil {
			tr, _ := target.snapshot()
			cfg.Hostname, cfg.Domainname = tr.Config.Hostname, tr.Config.Domainname
		}
		return st, nil, nil
	case mode.IsHost(), mode.IsNone():
		if mode.IsHost() && (len(h.PortBindings) > 0 || h.PublishAllPorts) {
			warnings = append(warnings, "Published ports are discarded when using host network mode")
		}
		name := string(mode)
		for k := range eps {
			if k != name && (d.o.Network == nil || !d.sameNetwork(k, name)) {
				if mode.IsHost() {
					return nil, nil, ErrConflictHostNetwork
				}
				return nil, nil, ErrConflictNoNetwork
			}
		}
		es := &network.EndpointSettings{}
		if d.o.Network != nil {
			if info, err := d.o.Network.Network(name); err == nil {
				es.NetworkID = info.ID
			}
		}
		st.Networks[name] = es
		return st, warnings, nil
	}
	if d.o.Network == nil {
		st.Networks[string(mode)] = &network.EndpointSettings{}
		return st, nil, nil
	}
	primary, err := d.o.Network.Network(string(mode))
	if err != nil {
		// --bridge=none (the container gets no network, as dockerd) or
		// a network that does not exist yet (the start fails).
		primary = wnet.NetworkInfo{Name: string(mode)}
	}
	for ref, es := range eps {
		if ref == NetworkDefault {
			ref = NetworkBridge // the CLI names the default network so
		}
		info, err := d.o.Network.Network(ref)
		if err != nil {
			st.Networks[ref] = &network.EndpointSettings{}
			if es != nil {
				st.Networks[ref] = es.Copy()
				cleanEndpoint(st.Networks[ref])
			}
			continue
		}
		switch info.Driver {
		case NetworkHost:
			return nil, nil, ErrConflictHostNetwork
		case "null":
			return nil, nil, ErrConflictNoNetwork
		}
		cfgES, err := endpointConfig(info, es)
		if err != nil {
			return nil, nil, err
		}
		st.Networks[info.Name] = cfgES
	}
	if _, ok := st.Networks[primary.Name]; !ok {
		st.Networks[primary.Name] = &network.EndpointSettings{NetworkID: primary.ID}
	}
	return st, nil, nil
}

// sameNetwork reports whether refs a and b name the same network.
func (d *Daemon) sameNetwork(a, b string) bool {
	ia, err1 := d.o.Network.Network(a)
	ib, err2 := d.o.Network.Network(b)
	return err1 == nil && err2 == nil && ia.ID == ib.ID
}

// endpointConfig checks endpoint settings for network info as dockerd's
// validateEndpointSettings and returns the configuration part of them
// (aliases, IPAM config, driver options, gateway priority), with the
// network's ID.
func endpointConfig(info wnet.NetworkInfo, es *network.EndpointSettings) (*network.EndpointSettings, error) {
	out := &network.EndpointSettings{NetworkID: info.ID}
	if es == nil {
		return out, nil
	}
	var ip netip.Addr
	if es.IPAMConfig != nil {
		ip = es.IPAMConfig.IPv4Address.Unmap()
	}
	if !info.UserDefined {
		if ip.IsValid() {
			return nil, ErrUnsupportedNetworkAndIP
		}
		if len(es.Aliases) > 0 {
			return nil, ErrUnsupportedNetworkAndAlias
		}
	}
	if ip.IsValid() {
		switch {
		case !ip.Is4() || ip.IsUnspecified():
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid endpoint settings:\ninvalid IPv4 address: %s", ip))
		case !info.IPAMConfigured:
			return nil, ErrUnsupportedNetworkNoSubnet
		case !info.Subnet.Contains(ip):
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid endpoint settings:\nno configured subnet contains IP address %s", ip))
		}
	}
	if es.IPAMConfig != nil && es.IPAMConfig.IPv6Address.IsValid() {
		return nil, errdefs.ErrInvalidArgument.WithMessage("invalid endpoint settings:\nIPv6 addresses are not supported")
	}
	for _, a := range es.Aliases {
		if a == "" {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid endpoint settings:\nan alias cannot be empty")
		}
	}
	if ip.IsValid() {
		out.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
	}
	out.Aliases = slices.Clone(es.Aliases)
	out.DriverOpts = maps.Clone(es.DriverOpts)
	out.GwPriority = es.GwPriority
	return out, nil
}

// networkState returns the container's NetworkState, made from its
// network mode for a record without one. c.mu must be held.
func (c *Container) networkStateLocked() *NetworkState {
	if c.rec.Network != nil {
		return c.rec.Network
	}
	st := &NetworkState{Networks: map[string]*network.EndpointSettings{}}
	if mode := c.host.NetworkMode; !mode.IsContainer() {
		st.Networks[cmp.Or(string(mode), NetworkBridge)] = &network.EndpointSettings{}
	}
	return st
}

// setNetworkState stores st (which the caller owns from now on) in the
// container, and in rec when not nil.
func (c *Container) setNetworkState(st *NetworkState, rec *Record) {
	c.mu.Lock()
	c.rec.Network = st
	c.mu.Unlock()
	if rec != nil {
		rec.Network = st
	}
}

// orderedNetworks returns the names of st's networks with primary first,
// then by name, as dockerd picks the default gateway.
func orderedNetworks(st *NetworkState, primary string) []string {
	names := slices.Sorted(maps.Keys(st.Networks))
	if i := slices.Index(names, primary); i > 0 {
		names = append(append([]string{primary}, names[:i]...), names[i+1:]...)
	}
	return names
}

// startNetworking sets the container's networking up before its init
// runs and points o.Network at it; undo releases it (when the start
// fails later). See the file's comment for what each mode gets.
func (d *Daemon) startNetworking(ctx context.Context, c *Container, rec *Record, h *container.HostConfig, o *runtime.SpecOptions) (undo func(), err error) {
	noop := func() {}
	mode := h.NetworkMode
	switch {
	case mode.IsHost():
		o.Network = runtime.NamespaceHost
		return noop, nil
	case mode.IsContainer():
		path, err := d.joinedNamespace(c, mode.ConnectedContainer())
		if err != nil {
			return nil, err
		}
		o.Network = path
		return noop, nil
	case mode.IsNone(), d.o.Network == nil, rec.Config.NetworkDisabled:
		o.Network = runtime.NamespacePrivate
		return noop, nil
	}

	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.mu.Lock()
	st := c.networkStateLocked().clone()
	c.mu.Unlock()
	st.cleanOperational()
	primary := string(mode)
	if info, err := d.o.Network.Network(primary); err == nil {
		primary = info.Name
	} else if mode.IsBridge() && errdefs.IsNotFound(err) {
		// The default bridge is disabled (--bridge=none): lo only.
		o.Network = runtime.NamespacePrivate
		return noop, nil
	}

	sandbox := newID()
	dir := d.netnsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("network namespaces dir: %w", err)
	}
	path := filepath.Join(dir, sandbox[:12])
	if err := wnet.CreateNetNS(path); err != nil {
		return nil, err
	}
	c.net.netns, c.net.ifaces, c.net.gateway, c.net.published = path, map[string]string{}, "", ""
	st.SandboxID, st.SandboxKey = sandbox, path
	c.setNetworkState(st.clone(), rec)
	defer func() {
		if err != nil {
			d.releaseNetworkingLocked(c, rec)
		}
	}()

	ports, err := portBindings(rec.Config, h)
	if err != nil {
		return nil, err
	}
	for _, name := range orderedNetworks(st, primary) {
		var publish []wnet.PortBinding
		if name == primary {
			publish = ports
		}
		if err := d.connectEndpointLocked(ctx, c, rec, name, st.Networks[name], publish); err != nil {
			return nil, fmt.Errorf("failed to set up container networking: %w", err) // dockerd's wording
		}
	}
	if err := d.ensureResolverLocked(c); err != nil {
		return nil, err
	}
	o.Network = path
	return func() {
		c.net.mu.Lock()
		defer c.net.mu.Unlock()
		d.releaseNetworkingLocked(c, rec)
	}, nil
}

// joinedNamespace returns the namespace a container:<ref> container
// joins: the host's when ref runs with --network host, ref's namespace
// file, or its init's namespace. Errors, as dockerd's: ref unknown (404),
// ref is the container itself (400), ref not running (409).
func (d *Daemon) joinedNamespace(c *Container, ref string) (string, error) {
	target, err := d.get(ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("joining network namespace of container: %w", err)
		}
		return "", err
	}
	if target == c {
		return "", errdefs.ErrInvalidArgument.WithMessage("cannot join own network namespace")
	}
	tr, th := target.snapshot()
	switch {
	case tr.State.Restarting:
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join network namespace of container: Container %s is restarting, wait until the container is running", tr.ID))
	case !tr.State.Running:
		return "", errdefs.ErrConflict.WithMessage(fmt.Sprintf("cannot join network namespace of a non running container: container %s is %s", strings.TrimPrefix(tr.Name, "/"), tr.State.Status(tr.HasBeenStartedBefore)))
	case th.NetworkMode.IsHost():
		return runtime.NamespaceHost, nil
	}
	target.net.mu.Lock()
	path := target.net.netns
	target.net.mu.Unlock()
	if path == "" {
		path = fmt.Sprintf("/proc/%d/ns/net", tr.State.Pid)
	}
	return path, nil
}

// connectEndpointLocked attaches the running (or starting) container to
// network name with endpoint settings es, publishing ports, and records
// the endpoint in the container's NetworkState (and rec). c.net.mu must
// be held and c.net.netns set.
func (d *Daemon) connectEndpointLocked(ctx context.Context, c *Container, rec *Record, name string, es *network.EndpointSettings, ports []wnet.PortBinding) error {
	ref := name
	if es != nil && es.NetworkID != "" {
		if _, err := d.o.Network.Network(es.NetworkID); err == nil {
			ref = es.NetworkID
		}
	}
	info, err := d.o.Network.Network(ref)
	if err != nil {
		return err
	}
	cfgES, err := endpointConfig(info, es)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ctrName := strings.TrimPrefix(c.rec.Name, "/")
	hostname := c.rec.Config.Hostname
	id := c.rec.ID
	c.mu.Unlock()
	var dnsNames []string
	if info.UserDefined {
		dnsNames = dedup(append(append([]string{ctrName}, cfgES.Aliases...), id[:12], hostname))
	}
	var ip netip.Addr
	if cfgES.IPAMConfig != nil {
		ip = cfgES.IPAMConfig.IPv4Address
	}
	ifname := nextIfName(c.net.ifaces)
	att, err := d.o.Network.Connect(ctx, info.ID, wnet.EndpointRequest{
		ContainerID: id, Name: ctrName, Aliases: dnsNames[min(len(dnsNames), 1):], IP: ip,
		NetNSPath: c.net.netns, IfName: ifname, Ports: ports,
		NoDefaultRoute: c.net.gateway != "",
	})
	if err != nil {
		return err
	}
	c.net.ifaces[info.ID] = ifname
	if c.net.gateway == "" && att.Gateway.IsValid() {
		c.net.gateway = info.ID
	}
	if len(ports) > 0 {
		c.net.published = info.ID
	}
	cfgES.EndpointID = att.Endpoint.ID
	cfgES.IPAddress = att.Endpoint.Addr
	cfgES.IPPrefixLen = att.PrefixLen
	cfgES.Gateway = att.Gateway
	cfgES.MacAddress = network.HardwareAddr(att.MAC)
	cfgES.DNSNames = dnsNames

	c.mu.Lock()
	st := c.networkStateLocked().clone()
	c.mu.Unlock()
	delete(st.Networks, name)
	st.Networks[info.Name] = cfgES
	if len(ports) > 0 || st.Ports == nil {
		st.Ports = portMap(rec.Config, att.Endpoint.Ports, st.Ports)
	}
	c.setNetworkState(st, rec)
	return nil
}

// nextIfName returns the first ethN not in use.
func nextIfName(used map[string]string) string {
	for i := 0; ; i++ {
		n := "eth" + strconv.Itoa(i)
		if !slices.Contains(slices.Collect(maps.Values(used)), n) {
			return n
		}
	}
}

func dedup(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ensureResolverLocked starts the container's embedded DNS server when
// it is on a user-defined network and has none yet. c.net.mu must be
// held.
func (d *Daemon) ensureResolverLocked(c *Container) error {
	if c.net.resolver != nil || c.net.netns == "" || len(d.userNetworks(c)) == 0 {
		return nil
	}
	_, h := c.snapshot()
	r, err := wnet.StartResolver(wnet.ResolverConfig{
		NetNSPath: c.net.netns,
		Networks:  func() []string { return d.userNetworks(c) },
		Names:     d.o.Network,
		Upstreams: d.upstreams(h),
		Logger:    d.log,
	})
	if err != nil {
		return err
	}
	c.net.resolver = r
	return nil
}

// userNetworks returns the IDs of the user-defined networks the
// container has an endpoint on, its first network first: the embedded
// DNS server answers from them.
func (d *Daemon) userNetworks(c *Container) []string {
	c.mu.Lock()
	st := c.networkStateLocked()
	primary := string(c.host.NetworkMode)
	var ids []string
	for _, name := range orderedNetworks(st, primary) {
		if es := st.Networks[name]; es.EndpointID != "" && es.NetworkID != "" {
			ids = append(ids, es.NetworkID)
		}
	}
	c.mu.Unlock()
	out := ids[:0]
	for _, id := range ids {
		if info, err := d.o.Network.Network(id); err == nil && info.UserDefined {
			out = append(out, id)
		}
	}
	return out
}

// upstreams are the servers the embedded DNS forwards to: the
// container's --dns, else the daemon's, else the host's resolvers
// (systemd-resolved's upstream file when the host uses its stub), from
// the daemon's namespace.
func (d *Daemon) upstreams(h *container.HostConfig) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range h.DNS {
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	if len(out) == 0 && d.o.Config != nil {
		for _, s := range d.o.Config.DNS {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
			}
		}
	}
	if len(out) == 0 {
		hr, err := wnet.HostResolvers(d.o.ResolvConf)
		if err != nil {
			d.log.Debug("no host resolvers for the embedded dns", zap.Error(err))
		}
		out = hr
	}
	return out
}

// stopNetworking releases a stopped container's networking: its DNS
// server, endpoints (veths, addresses, ports) and namespace file.
func (d *Daemon) stopNetworking(c *Container) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	d.releaseNetworkingLocked(c, nil)
}

// releaseNetworkingLocked is stopNetworking with c.net.mu held; it also
// clears rec's operational data when rec is not nil.
func (d *Daemon) releaseNetworkingLocked(c *Container, rec *Record) {
	if c.net.resolver != nil {
		if err := c.net.resolver.Close(); err != nil {
			d.log.Debug("embedded dns close", zap.String("container", c.ID()), zap.Error(err))
		}
		c.net.resolver = nil
	}
	c.mu.Lock()
	st := c.networkStateLocked().clone()
	c.mu.Unlock()
	if d.o.Network != nil {
		for name, es := range st.Networks {
			if es.EndpointID == "" {
				continue
			}
			if err := d.o.Network.Disconnect(context.Background(), cmp.Or(es.NetworkID, name), c.ID()); err != nil && !errdefs.IsNotFound(err) {
				d.log.Warn("cannot release endpoint", zap.String("container", c.ID()), zap.String("network", name), zap.Error(err))
			}
		}
	}
	if c.net.netns != "" {
		if err := wnet.RemoveNetNS(c.net.netns); err != nil {
			d.log.Warn("cannot remove network namespace", zap.String("container", c.ID()), zap.Error(err))
		}
	}
	c.net.netns, c.net.ifaces, c.net.gateway, c.net.published = "", nil, "", ""
	st.cleanOperational()
	c.setNetworkState(st, rec)
}

// restoreNetworking runs at boot, when no container runs: it removes the
// namespace files a dead daemon left, releases every container endpoint
// the controller still holds (addresses, ports, veths) and clears the
// containers' operational network data, so restarted containers get
// fresh endpoints and dead ones hold nothing.
func (d *Daemon) restoreNetworking() {
	if n, err := wnet.RemoveNetNSDir(d.netnsDir()); err != nil {
		d.log.Warn("cannot remove stale network namespaces", zap.Error(err))
	} else if n > 0 {
		d.log.Info("removed stale network namespaces", zap.Int("count", n))
	}
	if d.o.Network != nil {
		for _, ep := range d.o.Network.ContainerEndpoints() {
			if err := d.o.Network.Disconnect(context.Background(), ep.NetworkID, ep.EndpointID); err != nil && !errdefs.IsNotFound(err) {
				d.log.Warn("cannot release stale endpoint", zap.String("container", ep.ContainerID), zap.String("network", ep.NetworkID), zap.Error(err))
			}
		}
	}
	for _, c := range d.list() {
		c.mu.Lock()
		if st := c.rec.Network; st != nil && (st.SandboxKey != "" || st.Ports != nil || slices.ContainsFunc(slices.Collect(maps.Values(st.Networks)), func(es *network.EndpointSettings) bool { return es.EndpointID != "" })) {
			st = st.clone()
			st.cleanOperational()
			c.rec.Network = st
			c.saveOrLog(d.log)
		}
		c.mu.Unlock()
	}
}

// portBindings returns the ports a container publishes: its
// PortBindings (-p; an empty host port is a random one, a range the
// first free of it) and, with PublishAllPorts (-P), a random host port
// for every exposed port without a binding.
func portBindings(cfg *container.Config, h *container.HostConfig) ([]wnet.PortBinding, error) {
	var out []wnet.PortBinding
	keys := slices.SortedFunc(maps.Keys(h.PortBindings), comparePorts)
	for _, p := range keys {
		for _, b := range h.PortBindings[p] {
			pb := wnet.PortBinding{HostIP: b.HostIP.Unmap(), ContainerPort: p.Num(), Proto: string(p.Proto())}
			if b.HostPort != "" {
				r, err := network.ParsePortRange(b.HostPort)
				if err != nil {
					return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid port specification: %q", b.HostPort))
				}
				pb.HostPort, pb.HostPortEnd = r.Start(), r.End()
			}
			out = append(out, pb)
		}
	}
	if h.PublishAllPorts {
		for _, p := range slices.SortedFunc(maps.Keys(cfg.ExposedPorts), comparePorts) {
			if len(h.PortBindings[p]) == 0 {
				out = append(out, wnet.PortBinding{ContainerPort: p.Num(), Proto: string(p.Proto())})
			}
		}
	}
	return out, nil
}

func comparePorts(a, b network.Port) int {
	return cmp.Or(cmp.Compare(a.Num(), b.Num()), strings.Compare(string(a.Proto()), string(b.Proto())))
}

// portMap is inspect's Ports: every exposed port (none bound: a nil
// list) and the bound ones with their host address (0.0.0.0 for all)
// and port, added to old.
func portMap(cfg *container.Config, bound []wnet.PortBinding, old network.PortMap) network.PortMap {
	out := network.PortMap{}
	for k, v := range old {
		out[k] = v
	}
	for p := range cfg.ExposedPorts {
		if _, ok := out[p]; !ok {
			out[p] = nil
		}
	}
	for _, b := range bound {
		p, ok := network.PortFrom(b.ContainerPort, network.IPProtocol(cmp.Or(b.Proto, "tcp")))
		if !ok {
			continue
		}
		ip := b.HostIP
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		out[p] = append(out[p], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(b.HostPort))})
	}
	return out
}

// ConnectContainerToNetwork is POST /networks/{id}/connect: it adds the
// network (ID, name or ID prefix) to the container (ID, name or prefix)
// with the endpoint settings (aliases, --ip); a running container is
// attached at once (a new ethN, the embedded DNS started and resolv.conf
// pointed at it when this is its first user-defined network). Errors,
// with dockerd's texts: unknown container or network 404; a container
// in host, none or container:<id> mode, or the host or none network,
// 400; bad settings 400; already on the network 409.
func (d *Daemon) ConnectContainerToNetwork(ctx context.Context, ref, netRef string, settings *network.EndpointSettings) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if d.o.Network == nil {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", netRef))
	}
	info, err := d.o.Network.Network(netRef)
	if err != nil {
		return err
	}
	_, h := c.snapshot()
	mode := h.NetworkMode
	switch {
	case mode.IsContainer():
		return ErrConflictSharedNetwork
	case mode.IsHost(), info.Driver == NetworkHost:
		return ErrConflictHostNetwork
	case mode.IsNone(), info.Driver == "null":
		return ErrConflictNoNetwork
	}
	es, err := endpointConfig(info, settings)
	if err != nil {
		return err
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.mu.Lock()
	st := c.networkStateLocked().clone()
	rec := c.rec
	c.mu.Unlock()
	for name, cur := range st.Networks {
		if name == info.Name || (cur.NetworkID != "" && cur.NetworkID == info.ID) {
			return errdefs.ErrConflict.WithMessage(fmt.Sprintf("endpoint with name %s already exists in network %s", strings.TrimPrefix(rec.Name, "/"), info.Name))
		}
	}
	if c.net.netns == "" {
		// Not running: the network is used from the next start.
		st.Networks[info.Name] = es
		c.setNetworkState(st, nil)
		return d.saveContainer(c)
	}
	if err := d.connectEndpointLocked(ctx, c, &rec, info.Name, es, nil); err != nil {
		return err
	}
	if err := d.ensureResolverLocked(c); err != nil {
		d.log.Warn("embedded dns", zap.String("container", c.ID()), zap.Error(err))
	}
	d.refreshEtcFiles(c)
	return d.saveContainer(c)
}

// DisconnectContainerFromNetwork is POST /networks/{id}/disconnect: the
// network leaves the container's networks; a running container loses
// the interface at once (and its default route moves to another of its
// networks when it was this one's). With force and the container gone,
// an endpoint left for it is released. Errors: unknown container 404
// (unless force), unknown network 404, not on it 404, the host network
// 400.
func (d *Daemon) DisconnectContainerFromNetwork(ctx context.Context, ref, netRef string, force bool) error {
	if d.o.Network == nil {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", netRef))
	}
	c, err := d.get(ref)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			if derr := d.o.Network.Disconnect(ctx, netRef, ref); derr == nil {
				return nil
			}
		}
		return err
	}
	info, err := d.o.Network.Network(netRef)
	if err != nil {
		return err
	}
	_, h := c.snapshot()
	if h.NetworkMode.IsHost() || info.Driver == NetworkHost {
		return ErrConflictHostNetwork
	}
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	c.mu.Lock()
	st := c.networkStateLocked().clone()
	c.mu.Unlock()
	name := ""
	for n, es := range st.Networks {
		if n == info.Name || (es.NetworkID != "" && es.NetworkID == info.ID) {
			name = n
		}
	}
	if name == "" {
		return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("container %s is not connected to network %s", c.ID(), info.Name))
	}
	es := st.Networks[name]
	if es.EndpointID != "" {
		if err := d.o.Network.Disconnect(ctx, info.ID, c.ID()); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		delete(c.net.ifaces, info.ID)
		if c.net.published == info.ID {
			// Its published ports went with the endpoint.
			c.net.published = ""
			rec, _ := c.snapshot()
			st.Ports = portMap(rec.Config, nil, nil)
		}
	}
	delete(st.Networks, name)
	if c.net.gateway == info.ID {
		c.net.gateway = ""
		for _, n := range slices.Sorted(maps.Keys(st.Networks)) {
			if gw := st.Networks[n].Gateway; gw.IsValid() && c.net.netns != "" {
				if err := wnet.SetDefaultRoute(c.net.netns, gw); err != nil {
					d.log.Warn("cannot move the default route", zap.String("container", c.ID()), zap.Error(err))
					continue
				}
				c.net.gateway = st.Networks[n].NetworkID
				break
			}
		}
	}
	c.setNetworkState(st, nil)
	if c.net.netns != "" {
		d.refreshEtcFiles(c)
	}
	return d.saveContainer(c)
}

// saveContainer saves the container's record.
func (d *Daemon) saveContainer(c *Container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saveLocked()
}

// refreshEtcFiles rewrites a running container's hosts and resolv.conf
// in place (the files are bind-mounted: same inode) after its networks
// changed, as libnetwork does on connect and disconnect.
func (d *Daemon) refreshEtcFiles(c *Container) {
	rec, h := c.snapshot()
	hosts, err := d.hostsContent(c, &rec, h)
	if err == nil {
		err = rewriteInPlace(c.path(hostsFile), hosts)
	}
	if err == nil {
		var resolv string
		if resolv, err = d.resolvConfContent(c, &rec, h); err == nil {
			err = rewriteInPlace(c.path(resolvConfFile), resolv)
		}
	}
	if err != nil {
		d.log.Warn("cannot update the container's hosts and resolv.conf", zap.String("container", c.ID()), zap.Error(err))
	}
}

// rewriteInPlace truncates and writes path, keeping its inode.
func rewriteInPlace(path, body string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(body)
	return errors.Join(err, f.Close())
}

// defaultHosts is the hosts file of a container with a namespace of its
// own, before its extra hosts and its address, as dockerd's.
const defaultHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"

// hostsContent is the container's /etc/hosts: the joined container's
// with container:<id>; the host's with --network host; else dockerd's
// default entries; then the --add-host entries (host-gateway mapped to
// the default bridge's gateway) and the container's address on its
// first network with its hostname.
func (d *Daemon) hostsContent(c *Container, rec *Record, h *container.HostConfig) (string, error) {
	var b strings.Builder
	switch {
	case h.NetworkMode.IsContainer():
		if target, err := d.get(h.NetworkMode.ConnectedContainer()); err == nil {
			if body, err := os.ReadFile(target.path(hostsFile)); err == nil {
				return string(body), nil
			}
		}
		b.WriteString(defaultHosts)
	case h.NetworkMode.IsHost():
		body, err := os.ReadFile(d.o.Hosts)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		b.Write(body)
	default:
		b.WriteString(defaultHosts)
	}
	for _, eh := range h.ExtraHosts {
		name, ip, err := parseExtraHost(eh)
		if err != nil {
			return "", err
		}
		if ip == hostGatewayName {
			gw, ok := netip.Addr{}, false
			if d.o.Network != nil {
				gw, ok = d.o.Network.HostGateway()
			}
			if !ok {
				return "", errdefs.ErrInvalidArgument.WithMessage("unable to derive the IP value for host-gateway")
			}
			ip = gw.String()
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	if st := rec.Network; st != nil && !h.NetworkMode.IsHost() {
		for _, name := range orderedNetworks(st, string(h.NetworkMode)) {
			if a := st.Networks[name].IPAddress; a.IsValid() {
				host := rec.Config.Hostname
				if rec.Config.Domainname != "" {
					host = rec.Config.Hostname + "." + rec.Config.Domainname + " " + rec.Config.Hostname
				}
				fmt.Fprintf(&b, "%s\t%s\n", a, host)
				break
			}
		}
	}
	return b.String(), nil
}

// resolvConfContent is the container's /etc/resolv.conf: the joined
// container's with container:<id>; on a user-defined network the
// embedded DNS server's (nameserver 127.0.0.11, options ndots:0 unless
// --dns-opt sets ndots), with the servers it forwards to in a comment,
// as dockerd; else resolvConf's (the host's, filtered).
func (d *Daemon) resolvConfContent(c *Container, rec *Record, h *container.HostConfig) (string, error) {
	if h.NetworkMode.IsContainer() {
		if target, err := d.get(h.NetworkMode.ConnectedContainer()); err == nil {
			if body, err := os.ReadFile(target.path(resolvConfFile)); err == nil {
				return string(body), nil
			}
		}
		return d.resolvConf(h)
	}
	base, err := d.resolvConf(h)
	if err != nil || d.o.Network == nil || h.NetworkMode.IsHost() || len(d.userNetworks(c)) == 0 {
		return base, err
	}
	var search, opts []string
	for line := range strings.SplitSeq(base, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "search" {
			search = f[1:]
		}
		if len(f) > 1 && f[0] == "options" {
			opts = f[1:]
		}
	}
	if !slices.ContainsFunc(opts, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		opts = append([]string{"ndots:0"}, opts...)
	}
	var b strings.Builder
	b.WriteString("# Generated by wharfd: the embedded DNS server answers for containers on user-defined networks\n")
	b.WriteString("nameserver " + wnet.EmbeddedDNSAddr.Addr().String() + "\n")
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	b.WriteString("options " + strings.Join(opts, " ") + "\n")
	var ext []string
	for _, u := range d.upstreams(h) {
		ext = append(ext, u.Addr().String())
	}
	b.WriteString("\n# ExtServers: [" + strings.Join(ext, " ") + "]\n")
	return b.String(), nil
}

// networkSettings is inspect's NetworkSettings, as dockerd's: Networks
// (the endpoint settings by network name, with addresses while running),
// Ports, SandboxID and SandboxKey.
func (d *Daemon) networkSettings(rec *Record, h *container.HostConfig) *container.NetworkSettings {
	st := rec.Network.clone()
	if st == nil {
		st = &NetworkState{Networks: map[string]*network.EndpointSettings{}}
		if !h.NetworkMode.IsContainer() {
			st.Networks[cmp.Or(string(h.NetworkMode), NetworkBridge)] = &network.EndpointSettings{}
		}
	}
	if !rec.State.Running {
		st.cleanOperational()
	}
	ns := &container.NetworkSettings{SandboxID: st.SandboxID, SandboxKey: st.SandboxKey, Ports: st.Ports, Networks: st.Networks}
	if ns.Ports == nil {
		ns.Ports = network.PortMap{}
	}
	if rec.State.Running && ns.SandboxKey == "" && !h.NetworkMode.IsHost() {
		ns.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", rec.State.Pid)
	}
	return ns
}

// networkSummary is the NetworkSettings of GET /containers/json.
func (d *Daemon) networkSummary(rec *Record, h *container.HostConfig) *container.NetworkSettingsSummary {
	return &container.NetworkSettingsSummary{Networks: d.networkSettings(rec, h).Networks}
}

// portSummaries is the Ports of GET /containers/json: one entry per
// host binding, and one without a public port per exposed port not
// published, sorted by port.
func portSummaries(rec *Record) []container.PortSummary {
	out := []container.PortSummary{}
	if rec.Network == nil || !rec.State.Running {
		return out
	}
	for _, p := range slices.SortedFunc(maps.Keys(rec.Network.Ports), comparePorts) {
		bindings := rec.Network.Ports[p]
		if len(bindings) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bindings {
			n, _ := strconv.Atoi(b.HostPort)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	return out
}

// onNetwork reports whether the container is on one of the networks
// named (by name, full ID or ID prefix), for the network filter of GET
// /containers/json.
func (d *Daemon) onNetwork(rec *Record, h *container.HostConfig, want []string) bool {
	st := d.networkSettings(rec, h)
	for _, w := range want {
		for name, es := range st.Networks {
			if w == name || (es.NetworkID != "" && strings.HasPrefix(es.NetworkID, w)) {
				return true
			}
		}
		if string(h.NetworkMode) == w {
			return true
		}
	}
	return false
}
