package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// FilterTable is the nftables table (family ip) that holds every packet
// filter rule wharfd makes; nothing outside it is ever changed.
const FilterTable = "wharfd"

// Chains of FilterTable.
const (
	chainGuard       = "guard"       // filter, prerouting, raw priority
	chainForward     = "forward"     // filter, forward
	chainPrerouting  = "prerouting"  // nat, prerouting (DNAT of published ports)
	chainOutput      = "output"      // nat, output (DNAT of local traffic to published ports)
	chainPostrouting = "postrouting" // nat, postrouting (masquerade)
	setBridges       = "bridges"     // the bridges of all networks, for isolation
)

// Rule comments: every rule carries one, naming what owns it, so a
// network's or an endpoint's rules are found and removed by tag.
func netTag(id string) string           { return "wharfd:net:" + id }
func portTag(netID, epID string) string { return "wharfd:port:" + netID + ":" + epID }

// filter manages FilterTable in one namespace with google/nftables: each
// change is one netlink batch, which the kernel applies atomically, so a
// failed change leaves no rule behind.
type filter struct {
	ns namespace
}

func (f *filter) conn() (*nftables.Conn, error) {
	c, err := f.ns.nft()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func (f *filter) table() *nftables.Table {
	return &nftables.Table{Name: FilterTable, Family: nftables.TableFamilyIPv4}
}

type chains struct {
	guard, forward, pre, out, post *nftables.Chain
	bridges                        *nftables.Set
}

func (f *filter) chains(t *nftables.Table) chains {
	accept := nftables.ChainPolicyAccept
	return chains{
		guard:   &nftables.Chain{Name: chainGuard, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept},
		forward: &nftables.Chain{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept},
		pre:     &nftables.Chain{Name: chainPrerouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		out:     &nftables.Chain{Name: chainOutput, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept},
		post:    &nftables.Chain{Name: chainPostrouting, Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept},
		bridges: &nftables.Set{Table: t, Name: setBridges, KeyType: nftables.TypeIFName},
	}
}

// sync replaces FilterTable with exactly the rules nets call for, in one
// transaction: the table is deleted and built anew in the same batch, so
// rules left by an earlier run (or a crash) are gone without a moment
// with no rules, and restarts never duplicate a rule.
func (f *filter) sync(nets []*record) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	t := f.table()
	if old, err := c.ListTableOfFamily(FilterTable, nftables.TableFamilyIPv4); err == nil && old != nil {
		c.DelTable(t)
	}
	c.AddTable(t)
	ch := f.chains(t)
	for _, x := range []*nftables.Chain{ch.guard, ch.forward, ch.pre, ch.out, ch.post} {
		c.AddChain(x)
	}
	var elems []nftables.SetElement
	for _, n := range nets {
		if n.Driver == driverBridge && n.Bridge != "" {
			elems = append(elems, nftables.SetElement{Key: ifname(n.Bridge)})
		}
	}
	if err := c.AddSet(ch.bridges, elems); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, n := range nets {
		if n.Driver != driverBridge || n.Bridge == "" {
			continue
		}
		for _, r := range networkRules(ch, n) {
			c.AddRule(r)
		}
		for _, ep := range n.Endpoints {
			for _, r := range portRules(ch, n, ep) {
				c.AddRule(r)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: sync table %s: %w", FilterTable, err)
	}
	return nil
}

// addNetwork adds a network's rules and its bridge to the isolation set.
func (f *filter) addNetwork(n *record) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	ch := f.chains(f.table())
	if err := c.SetAddElements(ch.bridges, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, r := range networkRules(ch, n) {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: rules of network %s: %w", n.Name, err)
	}
	return nil
}

// removeNetwork deletes every rule of network n (its port rules too) and
// its bridge from the isolation set.
func (f *filter) removeNetwork(n *record) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	ch := f.chains(f.table())
	if err := f.delTagged(c, ch, func(tag string) bool {
		return tag == netTag(n.ID) || strings.HasPrefix(tag, "wharfd:port:"+n.ID+":")
	}); err != nil {
		return err
	}
	if err := c.SetDeleteElements(ch.bridges, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: remove rules of network %s: %w", n.Name, err)
	}
	return nil
}

// addPorts adds the DNAT rules of ep's published ports.
func (f *filter) addPorts(n *record, ep *Endpoint) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	rules := portRules(f.chains(f.table()), n, ep)
	if len(rules) == 0 {
		return nil
	}
	for _, r := range rules {
		c.AddRule(r)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: port rules: %w", err)
	}
	return nil
}

// removePorts deletes the rules of one endpoint's published ports.
func (f *filter) removePorts(netID, epID string) error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	tag := portTag(netID, epID)
	if err := f.delTagged(c, f.chains(f.table()), func(t string) bool { return t == tag }); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: remove port rules: %w", err)
	}
	return nil
}

// delTagged queues the deletion of every rule whose comment match
// accepts.
func (f *filter) delTagged(c *nftables.Conn, ch chains, match func(string) bool) error {
	for _, x := range []*nftables.Chain{ch.guard, ch.forward, ch.pre, ch.out, ch.post} {
		rules, err := c.GetRules(x.Table, x)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("nftables: list chain %s: %w", x.Name, err)
		}
		for _, r := range rules {
			if tag, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && match(tag) {
				if err := c.DelRule(r); err != nil {
					return fmt.Errorf("nftables: %w", err)
				}
			}
		}
	}
	return nil
}

// drop removes FilterTable altogether.
func (f *filter) drop() error {
	c, err := f.conn()
	if err != nil {
		return err
	}
	if old, err := c.ListTableOfFamily(FilterTable, nftables.TableFamilyIPv4); err != nil || old == nil {
		return nil
	}
	c.DelTable(f.table())
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", FilterTable, err)
	}
	return nil
}

// FilterRules lists the comments of the rules in FilterTable, one per
// rule, chain by chain, in the namespace at nsPath (empty: the daemon's
// own); nil when the table does not exist. Tests and diagnostics use it
// to count rules.
func FilterRules(nsPath string) ([]string, error) {
	ns, err := openNamespace(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	f := &filter{ns: ns}
	c, err := f.conn()
	if err != nil {
		return nil, err
	}
	if t, err := c.ListTableOfFamily(FilterTable, nftables.TableFamilyIPv4); err != nil || t == nil {
		return nil, nil
	}
	ch := f.chains(f.table())
	var out []string
	for _, x := range []*nftables.Chain{ch.guard, ch.forward, ch.pre, ch.out, ch.post} {
		rules, err := c.GetRules(x.Table, x)
		if err != nil {
			return nil, fmt.Errorf("nftables: list chain %s: %w", x.Name, err)
		}
		for _, r := range rules {
			tag, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			out = append(out, x.Name+" "+tag)
		}
	}
	return out, nil
}

// networkRules are a bridge network's rules:
//   - guard: packets from the bridge to 127.0.0.0/8 are dropped, since
//     the bridge has route_localnet on for published ports on loopback;
//   - forward: isolation from the other networks' bridges; with icc off,
//     bridge to bridge traffic dropped; internal networks drop all
//     traffic entering or leaving the bridge from elsewhere;
//   - postrouting: masquerade of the subnet leaving by another interface
//     (ip-masq / enable_ip_masquerade, not internal), and of
//     host-local sources entering the bridge (published ports reached on
//     loopback).
func networkRules(ch chains, n *record) []*nftables.Rule {
	tag := netTag(n.ID)
	br := ifname(n.Bridge)
	var rules []*nftables.Rule
	add := func(c *nftables.Chain, e ...expr.Any) {
		rules = append(rules, &nftables.Rule{Table: c.Table, Chain: c, Exprs: e, UserData: userdata.AppendString(nil, userdata.TypeComment, tag)})
	}
	add(ch.guard, concat(metaIs(expr.MetaKeyIIFNAME, br), ipIn(16, netip.MustParsePrefix("127.0.0.0/8")), verdict(expr.VerdictDrop))...)
	add(ch.forward, concat(metaIs(expr.MetaKeyIIFNAME, br),
		[]expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: setBridges}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: br}},
		verdict(expr.VerdictDrop))...)
	if !n.ICC {
		add(ch.forward, concat(metaIs(expr.MetaKeyIIFNAME, br), metaIs(expr.MetaKeyOIFNAME, br), verdict(expr.VerdictDrop))...)
	}
	if n.Internal {
		add(ch.forward, concat(metaIs(expr.MetaKeyIIFNAME, br), metaNot(expr.MetaKeyOIFNAME, br), verdict(expr.VerdictDrop))...)
		add(ch.forward, concat(metaIs(expr.MetaKeyOIFNAME, br), metaNot(expr.MetaKeyIIFNAME, br), verdict(expr.VerdictDrop))...)
	}
	if n.Masquerade && !n.Internal {
		add(ch.post, concat(ipIn(12, n.Subnet), metaNot(expr.MetaKeyOIFNAME, br), []expr.Any{&expr.Masq{}})...)
	}
	add(ch.post, concat(metaIs(expr.MetaKeyOIFNAME, br), fibLocal(true), []expr.Any{&expr.Masq{}})...)
	return rules
}

// portRules are the DNAT rules of an endpoint's published ports: from
// outside (prerouting) and from the host itself (output), for packets to
// any local address, or to HostIP when it is set.
func portRules(ch chains, n *record, ep *Endpoint) []*nftables.Rule {
	if !ep.Addr.IsValid() {
		return nil
	}
	tag := portTag(n.ID, ep.ID)
	var rules []*nftables.Rule
	for _, p := range ep.Ports {
		if !p.HostIP.IsValid() && p.HostIP != (netip.Addr{}) {
			continue
		}
		var match []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			match = ipIs(16, p.HostIP)
		} else {
			match = fibLocal(false)
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		e := concat(match,
			[]expr.Any{
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p.HostPort)},
				&expr.Immediate{Register: 1, Data: ep.Addr.AsSlice()},
				&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			})
		for _, c := range []*nftables.Chain{ch.pre, ch.out} {
			rules = append(rules, &nftables.Rule{Table: c.Table, Chain: c, Exprs: e, UserData: userdata.AppendString(nil, userdata.TypeComment, tag)})
		}
	}
	return rules
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

func metaIs(k expr.MetaKey, v []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: k, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: v}}
}

func metaNot(k expr.MetaKey, v []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: k, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: v}}
}

// ipIn matches the IPv4 header address at offset (12 source, 16
// destination) against prefix p.
func ipIn(offset uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func ipIs(offset uint32, a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

// fibLocal matches packets whose source (saddr) or destination address
// is local to the host ("fib saddr/daddr type local").
func fibLocal(saddr bool) []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: saddr, FlagDADDR: !saddr, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// ifname is an interface name as nftables compares it: NUL-padded to
// IFNAMSIZ.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}
