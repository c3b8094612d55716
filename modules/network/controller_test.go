package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	nettypes "github.com/moby/moby/api/types/network"
	"go.uber.org/zap/zaptest"

	"github.com/wharfd/wharfd/modules/config"
)

// testPools are the test's own pools: nothing on a host uses them, and
// they live only in the test's namespace anyway.
func testPools() []config.AddressPool {
	return []config.AddressPool{{Base: netip.MustParsePrefix("10.123.0.0/16"), Size: 24}}
}

// testOptions are options for a controller in the namespace at ns with
// state in root: no default bridge, the test pools, packet filter on.
func testOptions(t testing.TB, ns, root string) Options {
	return Options{
		Root: root, NetNS: ns, Bridge: BridgeMode{Disabled: true}, Pools: testPools(),
		ICC: true, IPTables: true, IPForward: true, IPMasq: true, Logger: zaptest.NewLogger(t),
	}
}

func newTestController(t testing.TB, opts Options) *Controller {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rulesOf returns the comments of the rules in the wharfd table of ns.
func rulesOf(t testing.TB, ns string) []string {
	t.Helper()
	r, err := FilterRules(ns)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func countTagged(rules []string, tag string) int {
	n := 0
	for _, r := range rules {
		if strings.HasSuffix(r, " "+tag) || strings.Contains(r, " "+tag+":") {
			n++
		}
	}
	return n
}

// recorder is an EventLogger that keeps the events.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) Log(typ events.Type, action events.Action, actor events.Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, string(typ)+" "+string(action)+" "+actor.Attributes["name"])
}

func TestBuiltinNetworks(t *testing.T) {
	ns := newTestNS(t)
	opts := testOptions(t, ns, t.TempDir())
	opts.Bridge = BridgeMode{Name: "docker0"} // in the test's namespace: not the host's
	c := newTestController(t, opts)
	var names []string
	for _, n := range c.List(context.Background()) {
		names = append(names, n.Name+"/"+n.Driver)
	}
	slices.Sort(names)
	if want := []string{"bridge/bridge", "host/host", "none/null"}; !slices.Equal(names, want) {
		t.Errorf("networks %v, want %v", names, want)
	}
	br, err := c.Get(context.Background(), "bridge")
	if err != nil {
		t.Fatal(err)
	}
	if got := br.IPAM.Config[0]; got.Subnet.String() != "10.123.0.0/24" || got.Gateway.String() != "10.123.0.1" {
		t.Errorf("default bridge IPAM %+v, want the first pool's first subnet", got)
	}
	if br.Options[OptBridgeName] != "docker0" || br.Options[optDefault] != "true" {
		t.Errorf("default bridge options %v", br.Options)
	}
	if linkNames(t, ns)["docker0"] != "bridge" {
		t.Error("docker0 missing in the test namespace")
	}
	for _, name := range []string{"bridge", "host", "none"} {
		err := c.Remove(context.Background(), name)
		if !cerrdefs.IsPermissionDenied(err) || err.Error() != name+" is a pre-defined network and cannot be removed" {
			t.Errorf("Remove(%s) = %v, want dockerd's 403", name, err)
		}
	}
	// The IDs survive a restart.
	c.Close()
	c2 := newTestController(t, opts)
	br2, err := c2.Get(context.Background(), "bridge")
	if err != nil || br2.ID != br.ID {
		t.Errorf("bridge ID after restart %s (%v), want %s", br2.ID, err, br.ID)
	}
}

func TestDefaultBridgeSkipsRoutedPool(t *testing.T) {
	ns := newTestNS(t)
	addDummyRoute(t, ns, "wh-dummy0", netip.MustParsePrefix("172.17.0.0/16"))
	opts := testOptions(t, ns, t.TempDir())
	opts.Pools = nil // dockerd's defaults, only in the test's namespace
	opts.Bridge = BridgeMode{Name: "docker0"}
	c := newTestController(t, opts)
	br, err := c.Get(context.Background(), "bridge")
	if err != nil {
		t.Fatal(err)
	}
	if got := br.IPAM.Config[0].Subnet.String(); got != "172.18.0.0/16" {
		t.Errorf("default bridge subnet %s, want 172.18.0.0/16 (172.17 is routed)", got)
	}
}

func TestDefaultBridgeBIPAndFixedCIDR(t *testing.T) {
	ns := newTestNS(t)
	opts := testOptions(t, ns, t.TempDir())
	opts.Bridge = BridgeMode{Name: "docker0"}
	opts.BIP = "10.77.0.254/24"
	opts.FixedCIDR = "10.77.0.64/26"
	c := newTestController(t, opts)
	br, err := c.Get(context.Background(), "bridge")
	if err != nil {
		t.Fatal(err)
	}
	cfg := br.IPAM.Config[0]
	if cfg.Subnet.String() != "10.77.0.0/24" || cfg.Gateway.String() != "10.77.0.254" || cfg.IPRange.String() != "10.77.0.64/26" {
		t.Errorf("IPAM %+v", cfg)
	}
	a, err := c.AllocateAddress("bridge", netip.Addr{})
	if err != nil || a.String() != "10.77.0.64/24" {
		t.Errorf("first address %v (%v), want 10.77.0.64/24 from the fixed CIDR", a, err)
	}
}

func TestCreateRemoveNetwork(t *testing.T) {
	ns := newTestNS(t)
	root := t.TempDir()
	opts := testOptions(t, ns, root)
	ev := &recorder{}
	opts.Events = ev
	c := newTestController(t, opts)
	ctx := context.Background()
	resp, err := c.Create(ctx, nettypes.CreateRequest{
		Name: "web", Labels: map[string]string{"a": "b"},
		Options: map[string]string{OptBridgeName: "wh-web", OptICC: "false", OptMTU: "1400"},
		IPAM:    &nettypes.IPAM{Config: []nettypes.IPAMConfig{{Subnet: netip.MustParsePrefix("10.50.0.0/24"), Gateway: netip.MustParseAddr("10.50.0.254")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	links := linkNames(t, ns)
	if links["wh-web"] != "bridge" {
		t.Fatalf("bridge wh-web missing: %v", links)
	}
	h := nsHandle(t, ns)
	l, _ := h.LinkByName("wh-web")
	if l.Attrs().MTU != 1400 {
		t.Errorf("bridge MTU %d, want 1400", l.Attrs().MTU)
	}
	if a, ok, _ := bridgeAddr(h, "wh-web"); !ok || a.String() != "10.50.0.254/24" {
		t.Errorf("bridge address %v, want 10.50.0.254/24", a)
	}
	rules := rulesOf(t, ns)
	// guard, isolation, icc=false, masquerade, local masquerade.
	if n := countTagged(rules, netTag(resp.ID)); n != 5 {
		t.Errorf("%d rules for the network, want 5:\n%s", n, strings.Join(rules, "\n"))
	}
	if _, err := os.Stat(filepath.Join(root, resp.ID+".json")); err != nil {
		t.Errorf("network file: %v", err)
	}
	in, err := c.Get(ctx, resp.ID[:6])
	if err != nil || in.Name != "web" || in.Labels["a"] != "b" || in.Driver != "bridge" {
		t.Errorf("Get by prefix: %+v %v", in, err)
	}

	if err := c.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := linkNames(t, ns)["wh-web"]; ok {
		t.Error("bridge left after remove")
	}
	if n := countTagged(rulesOf(t, ns), netTag(resp.ID)); n != 0 {
		t.Errorf("%d rules left after remove", n)
	}
	if _, err := os.Stat(filepath.Join(root, resp.ID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network file left: %v", err)
	}
	if _, err := c.Get(ctx, "web"); !cerrdefs.IsNotFound(err) || err.Error() != "network web not found" {
		t.Errorf("Get after remove = %v", err)
	}
	if want := []string{"network create web", "network destroy web"}; !slices.Equal(ev.got, want) {
		t.Errorf("events %v, want %v", ev.got, want)
	}
}

func TestCreateBadInput(t *testing.T) {
	ns := newTestNS(t)
	root := t.TempDir()
	c := newTestController(t, testOptions(t, ns, root))
	ctx := context.Background()
	if _, err := c.Create(ctx, nettypes.CreateRequest{Name: "taken", IPAM: ipam("10.60.0.0/24", "")}); err != nil {
		t.Fatal(err)
	}
	before := rulesOf(t, ns)
	beforeLinks := linkNames(t, ns)
	tests := []struct {
		name      string
		give      nettypes.CreateRequest
		wantClass func(error) bool
		wantMsg   string
	}{
		{name: "duplicate name", give: nettypes.CreateRequest{Name: "taken"}, wantClass: cerrdefs.IsConflict, wantMsg: "network with name taken already exists"},
		{name: "overlap", give: nettypes.CreateRequest{Name: "o", IPAM: ipam("10.60.0.128/25", "")}, wantClass: cerrdefs.IsPermissionDenied, wantMsg: "Pool overlaps"},
		{name: "gateway outside", give: nettypes.CreateRequest{Name: "g", IPAM: ipam("10.61.0.0/24", "10.62.0.1")}, wantClass: cerrdefs.IsInvalidArgument, wantMsg: "gateway 10.62.0.1 is not in subnet 10.61.0.0/24"},
		{name: "subnet not masked", give: nettypes.CreateRequest{Name: "m", IPAM: ipam("10.61.0.7/24", "")}, wantClass: cerrdefs.IsInvalidArgument, wantMsg: "it should be 10.61.0.0/24"},
		{name: "bad name", give: nettypes.CreateRequest{Name: "-x"}, wantClass: cerrdefs.IsInvalidArgument, wantMsg: "invalid network name"},
		{name: "unknown driver", give: nettypes.CreateRequest{Name: "d", Driver: "overlay"}, wantClass: cerrdefs.IsNotFound, wantMsg: `plugin "overlay" not found`},
		{name: "bad mtu", give: nettypes.CreateRequest{Name: "u", Options: map[string]string{OptMTU: "9x"}}, wantClass: cerrdefs.IsInvalidArgument, wantMsg: "driver.mtu"},
		{name: "bad icc", give: nettypes.CreateRequest{Name: "i", Options: map[string]string{OptICC: "maybe"}}, wantClass: cerrdefs.IsInvalidArgument, wantMsg: "enable_icc"},
		{name: "second host", give: nettypes.CreateRequest{Name: "h", Driver: "host"}, wantClass: cerrdefs.IsPermissionDenied, wantMsg: `only one instance of "host"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Create(ctx, tt.give)
			if err == nil || !tt.wantClass(err) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Create = %v, want %q of the right class", err, tt.wantMsg)
			}
		})
	}
	if after := rulesOf(t, ns); !slices.Equal(before, after) {
		t.Errorf("rules changed by refused creates:\n%v\n%v", before, after)
	}
	if after := linkNames(t, ns); len(after) != len(beforeLinks) {
		t.Errorf("links changed by refused creates: %v, was %v", after, beforeLinks)
	}
	files, _ := os.ReadDir(root)
	if len(files) != 3 { // host, none, taken
		t.Errorf("%d network files, want 3", len(files))
	}
}

func TestPoolExhaustion(t *testing.T) {
	ns := newTestNS(t)
	opts := testOptions(t, ns, t.TempDir())
	opts.Pools = []config.AddressPool{{Base: netip.MustParsePrefix("10.124.0.0/23"), Size: 24}}
	c := newTestController(t, opts)
	ctx := context.Background()
	var subnets []string
	for _, name := range []string{"a", "b"} {
		resp, err := c.Create(ctx, nettypes.CreateRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		in, _ := c.Get(ctx, resp.ID)
		subnets = append(subnets, in.IPAM.Config[0].Subnet.String()+" "+in.IPAM.Config[0].Gateway.String())
	}
	if want := []string{"10.124.0.0/24 10.124.0.1", "10.124.1.0/24 10.124.1.1"}; !slices.Equal(subnets, want) {
		t.Errorf("subnets %v, want %v", subnets, want)
	}
	_, err := c.Create(ctx, nettypes.CreateRequest{Name: "c"})
	if !errors.Is(err, ErrPoolsExhausted) {
		t.Errorf("third network: %v, want %v", err, ErrPoolsExhausted)
	}
	if err := c.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, nettypes.CreateRequest{Name: "c"}); err != nil {
		t.Errorf("after a remove the pool has room: %v", err)
	}
}

func TestIPTablesOff(t *testing.T) {
	ns := newTestNS(t)
	opts := testOptions(t, ns, t.TempDir())
	opts.IPTables = false
	c := newTestController(t, opts)
	if _, err := c.Create(context.Background(), nettypes.CreateRequest{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if r := rulesOf(t, ns); r != nil {
		t.Errorf("iptables=false made rules: %v", r)
	}
}

func ipam(subnet, gw string) *nettypes.IPAM {
	cfg := nettypes.IPAMConfig{Subnet: netip.MustParsePrefix(subnet)}
	if gw != "" {
		cfg.Gateway = netip.MustParseAddr(gw)
	}
	return &nettypes.IPAM{Config: []nettypes.IPAMConfig{cfg}}
}
