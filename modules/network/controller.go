package network

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
)

// Drivers of the networks wharfd knows, as dockerd names them.
const (
	driverBridge = "bridge"
	driverHost   = "host"
	driverNull   = "null"
)

// Driver options of bridge networks (docker network create -o), as
// dockerd names them.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptICC        = "com.docker.network.bridge.enable_icc"
	OptMasquerade = "com.docker.network.bridge.enable_ip_masquerade"
	OptMTU        = "com.docker.network.driver.mtu"
	optDefault    = "com.docker.network.bridge.default_bridge"
	optHostBind   = "com.docker.network.bridge.host_binding_ipv4"
)

// EventLogger is the part of the event bus the controller uses: network
// events create, connect, disconnect and destroy, with dockerd's
// attributes (name, type; container on connect and disconnect).
type EventLogger interface {
	Log(typ events.Type, action events.Action, actor events.Actor)
}

// Options configure a Controller.
type Options struct {
	// Root is the directory networks are persisted in,
	// <data root>/network.
	Root string
	// NetNS is the network namespace the controller manages, a path;
	// empty is the daemon's own. Tests give a namespace of their own so
	// the host's links and packet filter are never touched.
	NetNS string
	// Bridge says whether there is a default bridge, and its link.
	Bridge BridgeMode
	// MTU is the default bridge's MTU, and user networks' unless they
	// set com.docker.network.driver.mtu.
	MTU MTU
	// BIP is the default bridge's address and prefix (--bip); empty lets
	// the pools decide.
	BIP string
	// FixedCIDR limits the default bridge's container addresses
	// (--fixed-cidr).
	FixedCIDR string
	// Pools are the pools subnets are picked from; nil means
	// DefaultAddressPools.
	Pools []config.AddressPool
	// ICC allows container to container traffic on the default bridge.
	ICC bool
	// IPTables lets the controller manage its packet filter table; false
	// leaves the packet filter alone (no masquerade, no icc=false, no
	// port DNAT).
	IPTables bool
	// IPForward turns on net.ipv4.ip_forward.
	IPForward bool
	// IPMasq masquerades traffic leaving the default bridge.
	IPMasq bool
	// Events, when set, receives network events.
	Events EventLogger
	// Logger logs; nil logs nothing.
	Logger *zap.Logger
}

// OptionsFromConfig returns the options the daemon configuration gives,
// with root as the data root.
func OptionsFromConfig(c *config.Config, root string, mtu MTU, mode BridgeMode) Options {
	return Options{
		Root: filepath.Join(root, "network"), Bridge: mode, MTU: mtu,
		BIP: c.BIP, FixedCIDR: c.FixedCIDR, Pools: c.DefaultAddressPools,
		ICC: c.ICC, IPTables: c.IPTables, IPForward: c.IPForward, IPMasq: c.IPMasq,
	}
}

// Controller owns the networks: the built-ins (bridge, host, none) and
// user-defined bridge networks, their IPAM, links, packet filter rules
// and endpoints. Safe for concurrent use.
type Controller struct {
	opts Options
	ns   namespace
	nl   *netlink.Handle
	fw   *filter // nil with IPTables off
	st   *store
	log  *zap.Logger

	mu    sync.Mutex
	nets  map[string]*netState // by ID
	ports map[string][]int     // endpoint ID → port reservation sockets
}

type netState struct {
	rec   *record
	addrs *addrSpace // nil for host and none
}

// New opens the network state under opts.Root and brings the namespace
// in line with it: built-in networks made, the default bridge set up
// (unless disabled), user networks' bridges recreated when missing, the
// packet filter table rebuilt in one transaction and published ports
// reserved again. Close releases what New holds; links and rules stay,
// as dockerd leaves them, for the next start to reconcile.
func New(opts Options) (_ *Controller, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Pools == nil {
		opts.Pools = DefaultAddressPools()
	}
	if opts.MTU <= 0 {
		opts.MTU = DefaultMTU
	}
	ns, err := openNamespace(opts.NetNS)
	if err != nil {
		return nil, err
	}
	c := &Controller{opts: opts, ns: ns, log: opts.Logger.With(zap.String("module", "network")), nets: map[string]*netState{}, ports: map[string][]int{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.nl, err = ns.handle(); err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if opts.IPTables {
		c.fw = &filter{ns: ns}
	}
	if c.st, err = newStore(opts.Root); err != nil {
		return nil, err
	}
	recs, bad, err := c.st.load()
	if err != nil {
		return nil, err
	}
	for _, p := range bad {
		c.log.Warn("unreadable network file skipped", zap.String("path", p))
	}
	if opts.IPForward {
		if err := ns.setSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return nil, err
		}
	}
	byName := map[string]*record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	for _, bi := range []struct{ name, driver string }{{nettypes.NetworkHost, driverHost}, {nettypes.NetworkNone, driverNull}} {
		r := byName[bi.name]
		if r == nil || r.Driver != bi.driver {
			r = &record{ID: newID(), Name: bi.name, Driver: bi.driver, Created: time.Now().UTC()}
			if err := c.st.save(r); err != nil {
				return nil, err
			}
		}
		c.nets[r.ID] = &netState{rec: r}
	}
	for _, r := range recs {
		if r.Driver != driverBridge || r.Name == nettypes.NetworkBridge {
			continue
		}
		if err := c.restoreBridge(r); err != nil {
			return nil, fmt.Errorf("network %s: %w", r.Name, err)
		}
	}
	if old := byName[nettypes.NetworkBridge]; opts.Bridge.Disabled {
		if old != nil {
			if err := c.st.remove(old.ID); err != nil {
				return nil, err
			}
		}
	} else if err := c.setupDefaultBridge(old); err != nil {
		return nil, fmt.Errorf("default bridge %s: %w", opts.Bridge.Name, err)
	}
	if c.fw != nil {
		if err := c.fw.sync(c.records()); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nets {
		for _, ep := range n.rec.Endpoints {
			if len(ep.Ports) == 0 {
				continue
			}
			_, fds, err := reservePorts(c.ns, ep.Ports)
			if err != nil {
				c.log.Warn("published port not reserved again", zap.String("network", n.rec.Name), zap.String("endpoint", ep.ID), zap.Error(err))
				continue
			}
			c.ports[ep.ID] = fds
		}
	}
	return c, nil
}

// Close releases the controller's sockets and handles. Links, rules and
// files stay.
func (c *Controller) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, fds := range c.ports {
		closeFDs(fds)
		delete(c.ports, id)
	}
	if c.nl != nil {
		c.nl.Close()
		c.nl = nil
	}
	c.ns.close()
	return nil
}

func (c *Controller) records() []*record {
	out := make([]*record, 0, len(c.nets))
	for _, n := range c.nets {
		out = append(out, n.rec)
	}
	slices.SortFunc(out, func(a, b *record) int { return a.Created.Compare(b.Created) })
	return out
}

// restoreBridge takes a persisted user network back: its bridge made
// again if it went away (a reboot), its endpoints' addresses marked used.
func (c *Controller) restoreBridge(r *record) error {
	created, err := ensureBridge(c.nl, r.Bridge, r.Gateway, r.Subnet, r.MTU)
	if err != nil {
		return err
	}
	if created {
		r.OwnsBridge = true
	}
	if err := c.bridgeSysctls(r.Bridge); err != nil {
		return err
	}
	st := &netState{rec: r, addrs: newAddrSpace(r.Subnet, r.IPRange, r.Gateway)}
	for _, ep := range r.Endpoints {
		if ep.Addr.IsValid() {
			st.addrs.take(ep.Addr)
		}
	}
	c.nets[r.ID] = st
	return nil
}

// bridgeSysctls sets route_localnet on a bridge when wharfd manages the
// packet filter, so that ports published on the host's loopback reach
// containers (the guard chain drops what the bridge itself sends to
// 127.0.0.0/8).
func (c *Controller) bridgeSysctls(name string) error {
	if c.fw == nil {
		return nil
	}
	return c.ns.setSysctl("net/ipv4/conf/"+name+"/route_localnet", "1")
}

// setupDefaultBridge makes the bridge network: its subnet from --bip,
// else the bridge's existing address, else the old record's subnet when
// still free, else the first free pool; --fixed-cidr limits its
// addresses.
func (c *Controller) setupDefaultBridge(old *record) error {
	name := c.opts.Bridge.Name
	var subnet netip.Prefix
	var gw netip.Addr
	existing, has, err := bridgeAddr(c.nl, name)
	if err != nil {
		return err
	}
	if !has && name != DefaultBridgeName {
		if _, err := c.nl.LinkByName(name); err != nil {
			return fmt.Errorf("bridge device with non default name %s must be created manually", name)
		}
	}
	used, err := c.usedPrefixes(name, "")
	if err != nil {
		return err
	}
	switch {
	case c.opts.BIP != "":
		p, err := netip.ParsePrefix(c.opts.BIP)
		if err != nil {
			return fmt.Errorf("invalid bip %q: %w", c.opts.BIP, err)
		}
		subnet, gw = p.Masked(), p.Addr()
	case has:
		subnet, gw = existing.Masked(), existing.Addr()
	case old != nil && old.Subnet.IsValid() && !overlapsAny(old.Subnet, used):
		subnet, gw = old.Subnet, old.Gateway
	default:
		if subnet, err = PickSubnet(c.opts.Pools, used); err != nil {
			return err
		}
		gw = firstHost(subnet)
	}
	var ipRange netip.Prefix
	if c.opts.FixedCIDR != "" {
		p, err := netip.ParsePrefix(c.opts.FixedCIDR)
		if err != nil {
			return fmt.Errorf("invalid fixed-cidr %q: %w", c.opts.FixedCIDR, err)
		}
		ipRange = p.Masked()
		if ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) {
			return fmt.Errorf("fixed-cidr %s is not within the bridge subnet %s", ipRange, subnet)
		}
	}
	r := &record{
		ID: newID(), Name: nettypes.NetworkBridge, Driver: driverBridge, Created: time.Now().UTC(),
		Subnet: subnet, IPRange: ipRange, Gateway: gw, Bridge: name, MTU: int(c.opts.MTU),
		ICC: c.opts.ICC, Masquerade: c.opts.IPMasq,
		Options: map[string]string{
			optDefault:    "true",
			OptICC:        strconv.FormatBool(c.opts.ICC),
			OptMasquerade: strconv.FormatBool(c.opts.IPMasq),
			optHostBind:   "0.0.0.0",
			OptBridgeName: name,
			OptMTU:        strconv.Itoa(int(c.opts.MTU)),
		},
	}
	if old != nil {
		r.ID, r.Created, r.Endpoints, r.OwnsBridge = old.ID, old.Created, old.Endpoints, old.OwnsBridge
	}
	created, err := ensureBridge(c.nl, name, gw, subnet, r.MTU)
	if err != nil {
		return err
	}
	r.OwnsBridge = r.OwnsBridge || created
	if err := c.bridgeSysctls(name); err != nil {
		return err
	}
	st := &netState{rec: r, addrs: newAddrSpace(subnet, ipRange, gw)}
	for id, ep := range r.Endpoints {
		if !ep.Addr.IsValid() || st.addrs.take(ep.Addr) != nil {
			delete(r.Endpoints, id) // no longer fits the bridge's subnet
		}
	}
	if err := c.st.save(r); err != nil {
		return err
	}
	c.nets[r.ID] = st
	c.log.Info("default bridge ready", zap.String("bridge", name), zap.Stringer("subnet", subnet), zap.Stringer("gateway", gw))
	return nil
}

// usedPrefixes returns the subnets a new one must not overlap: the other
// networks' (all but skipID) and the namespace's routes (but those
// through the link skipLink).
func (c *Controller) usedPrefixes(skipLink, skipID string) ([]netip.Prefix, error) {
	used, err := routedPrefixes(c.nl, skipLink)
	if err != nil {
		return nil, err
	}
	for id, n := range c.nets {
		if id != skipID && n.rec.Subnet.IsValid() {
			used = append(used, n.rec.Subnet)
		}
	}
	return used, nil
}

// Network name rules, dockerd's restricted name pattern.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a user-defined bridge network, as POST /networks/create:
// a subnet from req.IPAM (one IPv4 config: subnet, ip-range, gateway) or
// the first free pool, a bridge link (br-<id[:12]> unless
// com.docker.network.bridge.name says otherwise), its rules, and its
// file. Errors: a bad name, driver, option or IPAM config is
// InvalidArgument (400); a duplicate name Conflict (409); a subnet that
// overlaps another network's PermissionDenied (403, as dockerd); a
// driver other than bridge NotFound. A failure leaves no link, rule or
// file behind.
func (c *Controller) Create(ctx context.Context, req nettypes.CreateRequest) (nettypes.CreateResponse, error) {
	rec, err := c.prepare(req)
	if err != nil {
		return nettypes.CreateResponse{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nl == nil {
		return nettypes.CreateResponse{}, cerrdefs.ErrUnavailable.WithMessage("network controller is closed")
	}
	for _, n := range c.nets {
		if n.rec.Name == rec.Name {
			return nettypes.CreateResponse{}, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("network with name %s already exists", rec.Name))
		}
		if n.rec.Bridge != "" && n.rec.Bridge == rec.Bridge {
			return nettypes.CreateResponse{}, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("bridge name %s is already used by network %s", rec.Bridge, n.rec.Name))
		}
	}
	used, err := c.usedPrefixes("", "")
	if err != nil {
		return nettypes.CreateResponse{}, err
	}
	if rec.Subnet.IsValid() {
		for _, n := range c.nets {
			if n.rec.Subnet.IsValid() && n.rec.Subnet.Overlaps(rec.Subnet) {
				return nettypes.CreateResponse{}, cerrdefs.ErrPermissionDenied.WithMessage("invalid pool request: Pool overlaps with other one on this address space")
			}
		}
	} else {
		if rec.Subnet, err = PickSubnet(c.opts.Pools, used); err != nil {
			return nettypes.CreateResponse{}, err
		}
		rec.Gateway = firstHost(rec.Subnet)
	}
	if l, err := c.nl.LinkByName(rec.Bridge); err == nil && l != nil {
		return nettypes.CreateResponse{}, cerrdefs.ErrConflict.WithMessage(fmt.Sprintf("bridge name %s: a link of that name exists", rec.Bridge))
	}
	if _, err := ensureBridge(c.nl, rec.Bridge, rec.Gateway, rec.Subnet, rec.MTU); err != nil {
		return nettypes.CreateResponse{}, err
	}
	rec.OwnsBridge = true
	undo := func() { deleteLink(c.nl, rec.Bridge) }
	if err := c.bridgeSysctls(rec.Bridge); err != nil {
		undo()
		return nettypes.CreateResponse{}, err
	}
	if c.fw != nil {
		if err := c.fw.addNetwork(rec); err != nil {
			undo()
			return nettypes.CreateResponse{}, err
		}
		undo = func() { c.fw.removeNetwork(rec); deleteLink(c.nl, rec.Bridge) }
	}
	if err := c.st.save(rec); err != nil {
		undo()
		return nettypes.CreateResponse{}, err
	}
	c.nets[rec.ID] = &netState{rec: rec, addrs: newAddrSpace(rec.Subnet, rec.IPRange, rec.Gateway)}
	c.log.Info("network created", zap.String("network", rec.Name), zap.String("id", rec.ID), zap.Stringer("subnet", rec.Subnet))
	c.event(events.ActionCreate, rec, nil)
	return nettypes.CreateResponse{ID: rec.ID}, nil
}

// prepare checks a create request and builds the record, without the
// subnet when the pools decide it.
func (c *Controller) prepare(req nettypes.CreateRequest) (*record, error) {
	invalid := func(format string, a ...any) error {
		return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
	}
	switch {
	case req.Name == "":
		return nil, invalid("network name is required")
	case !validName.MatchString(req.Name):
		return nil, invalid("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	switch req.Driver {
	case "", driverBridge:
	case driverHost, driverNull:
		return nil, cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("only one instance of %q network is allowed", req.Driver))
	default:
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", req.Driver))
	}
	switch {
	case req.Scope != "" && req.Scope != "local":
		return nil, invalid("invalid scope %q: only local networks are supported", req.Scope)
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		return nil, cerrdefs.ErrNotImplemented.WithMessage("IPv6 networks are not supported")
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return nil, invalid("IPv4 cannot be disabled on a bridge network")
	case req.Ingress, req.ConfigOnly, req.ConfigFrom != nil:
		return nil, invalid("ingress and config-only networks are swarm features, not supported")
	}
	rec := &record{
		ID: newID(), Name: req.Name, Driver: driverBridge, Created: time.Now().UTC(),
		Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options,
		MTU: int(c.opts.MTU), ICC: true, Masquerade: true,
	}
	rec.Bridge = "br-" + rec.ID[:12]
	for k, v := range req.Options {
		switch k {
		case OptBridgeName:
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \t\n") {
				return nil, invalid("invalid bridge name %q: at most 15 characters, no '/' or space", v)
			}
			rec.Bridge = v
		case OptICC, OptMasquerade:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, invalid("invalid value %q for %s: want true or false", v, k)
			}
			if k == OptICC {
				rec.ICC = b
			} else {
				rec.Masquerade = b
			}
		case OptMTU:
			m, err := strconv.Atoi(v)
			if err != nil || m < 68 || m > 65535 {
				return nil, invalid("invalid value %q for %s: want an MTU between 68 and 65535", v, k)
			}
			rec.MTU = m
		}
	}
	if req.IPAM != nil {
		if d := req.IPAM.Driver; d != "" && d != "default" {
			return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("plugin %q not found", d))
		}
		if len(req.IPAM.Config) > 1 {
			return nil, invalid("invalid network config: only one IPv4 subnet is supported")
		}
		if len(req.IPAM.Config) == 1 {
			cfg := req.IPAM.Config[0]
			if !cfg.Subnet.IsValid() {
				if cfg.IPRange.IsValid() || cfg.Gateway.IsValid() {
					return nil, invalid("invalid network config: ip-range and gateway need a subnet")
				}
			} else {
				gw := ""
				if cfg.Gateway.IsValid() {
					gw = cfg.Gateway.String()
				}
				rng := ""
				if cfg.IPRange.IsValid() {
					rng = cfg.IPRange.String()
				}
				s, r, g, err := validateIPAM(cfg.Subnet.String(), rng, gw)
				if err != nil {
					return nil, err
				}
				rec.Subnet, rec.IPRange, rec.Gateway, rec.IPAMConfigured = s, r, g, true
			}
		}
	}
	return rec, nil
}

// Remove deletes a user-defined network, as DELETE /networks/{id}: its
// rules, its bridge (when wharfd made it) and its file. Errors, with
// dockerd's wording: not found (404); a built-in network "bridge is a
// pre-defined network and cannot be removed" (403); a network with
// endpoints "error while removing network: network x id … has active
// endpoints" (403).
func (c *Controller) Remove(ctx context.Context, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(ref)
	if err != nil {
		return err
	}
	return c.remove(n)
}

func (c *Controller) remove(n *netState) error {
	r := n.rec
	if r.builtin() {
		return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("%s is a pre-defined network and cannot be removed", r.Name))
	}
	if len(r.Endpoints) > 0 {
		return cerrdefs.ErrPermissionDenied.WithMessage(fmt.Sprintf("error while removing network: network %s id %s has active endpoints", r.Name, r.ID))
	}
	if c.fw != nil {
		if err := c.fw.removeNetwork(r); err != nil {
			return err
		}
	}
	if r.OwnsBridge {
		if err := deleteLink(c.nl, r.Bridge); err != nil {
			return err
		}
	}
	if err := c.st.remove(r.ID); err != nil {
		return err
	}
	delete(c.nets, r.ID)
	c.log.Info("network removed", zap.String("network", r.Name), zap.String("id", r.ID))
	c.event(events.ActionDestroy, r, nil)
	return nil
}

// Prune removes the user-defined networks without endpoints that keep
// accepts (nil keeps all), and returns their names, as POST
// /networks/prune. A network that fails to go is left and logged.
func (c *Controller) Prune(ctx context.Context, keep func(nettypes.Inspect) bool) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.records() {
		n := c.nets[r.ID]
		if r.builtin() || len(r.Endpoints) > 0 || (keep != nil && !keep(c.inspect(n))) {
			continue
		}
		if err := c.remove(n); err != nil {
			c.log.Warn("prune network", zap.String("network", r.Name), zap.Error(err))
			continue
		}
		out = append(out, r.Name)
	}
	return out, nil
}

// List returns every network, in creation order.
func (c *Controller) List(ctx context.Context) []nettypes.Inspect {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []nettypes.Inspect
	for _, r := range c.records() {
		out = append(out, c.inspect(c.nets[r.ID]))
	}
	return out
}

// Get returns one network by ID, name or unique ID prefix, as GET
// /networks/{id}: NotFound "network x not found" when none matches,
// InvalidArgument when a prefix matches several.
func (c *Controller) Get(ctx context.Context, ref string) (nettypes.Inspect, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.lookup(ref)
	if err != nil {
		return nettypes.Inspect{}, err
	}
	return c.inspect(n), nil
}

// lookup finds a network as dockerd does: full ID, then name, then ID
// prefix.
func (c *Controller) lookup(ref string) (*netState, error) {
	if n, ok := c.nets[ref]; ok {
		return n, nil
	}
	for _, n := range c.nets {
		if n.rec.Name == ref {
			return n, nil
		}
	}
	var found []*netState
	if ref != "" {
		for id, n := range c.nets {
			if strings.HasPrefix(id, ref) {
				found = append(found, n)
			}
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", ref))
	default:
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found)))
	}
}

func (r *record) builtin() bool {
	return r.Driver == driverHost || r.Driver == driverNull || r.Name == nettypes.NetworkBridge
}

// inspect renders a network in the API's shape.
func (c *Controller) inspect(n *netState) nettypes.Inspect {
	r := n.rec
	in := nettypes.Inspect{
		Network: nettypes.Network{
			Name: r.Name, ID: r.ID, Scope: "local", Driver: r.Driver, EnableIPv4: r.Driver == driverBridge,
			Internal: r.Internal, Attachable: r.Attachable,
			IPAM:    nettypes.IPAM{Driver: "default", Config: []nettypes.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{},
		},
		Containers: map[string]nettypes.EndpointResource{},
	}
	in.Created = r.Created
	for k, v := range r.Options {
		in.Options[k] = v
	}
	for k, v := range r.Labels {
		in.Labels[k] = v
	}
	if r.Subnet.IsValid() {
		in.IPAM.Config = append(in.IPAM.Config, nettypes.IPAMConfig{Subnet: r.Subnet, IPRange: r.IPRange, Gateway: r.Gateway})
	}
	for _, ep := range r.Endpoints {
		key := ep.ContainerID
		if key == "" {
			key = ep.ID
		}
		res := nettypes.EndpointResource{Name: ep.Name, EndpointID: ep.ID}
		if ep.Addr.IsValid() {
			res.IPv4Address = netip.PrefixFrom(ep.Addr, r.Subnet.Bits())
			res.MacAddress = nettypes.HardwareAddr(macFor(ep.Addr))
		}
		in.Containers[key] = res
	}
	return in
}

// event sends a network event when an event logger is set.
func (c *Controller) event(action events.Action, r *record, extra map[string]string) {
	if c.opts.Events == nil {
		return
	}
	attrs := map[string]string{"name": r.Name, "type": r.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	c.opts.Events.Log(events.NetworkEventType, action, events.Actor{ID: r.ID, Attributes: attrs})
}

// newID returns a 64 hex digit network or endpoint ID.
func newID() string { return randomHex(32) }
