package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newContainerNS makes a namespace with CreateNetNS in a temporary
// directory, removed when the test ends.
func newContainerNS(t testing.TB) string {
	t.Helper()
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "sandbox")
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Error(err)
		}
	})
	return path
}

func mounted(t testing.TB, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), " "+path+" ")
}

func TestCreateNetNS(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "abc")
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	if !mounted(t, path) {
		t.Fatal("namespace file is not a mount")
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	own, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	if ns.Equal(own) {
		t.Error("CreateNetNS gave the caller's own namespace")
	}
	own.Close()
	ns.Close()
	links := linkNames(t, path)
	if len(links) != 1 {
		t.Errorf("links in a new namespace: %v, want lo only", links)
	}
	lo, err := nsHandle(t, path).LinkByName("lo")
	if err != nil || lo.Attrs().Flags&1 == 0 {
		t.Errorf("lo not up: %v", err)
	}
	if err := CreateNetNS(path); err == nil {
		t.Error("CreateNetNS over an existing file succeeded")
	}
	if !mounted(t, path) {
		t.Error("a refused CreateNetNS undid the existing namespace")
	}
	// A failed create leaves nothing: no such directory.
	bad := filepath.Join(dir, "nosuch", "x")
	if err := CreateNetNS(bad); err == nil {
		t.Error("CreateNetNS in a missing directory succeeded")
	}
	if err := CreateNetNS(filepath.Join(dir, "second")); err != nil {
		t.Fatal(err)
	}
	n, err := RemoveNetNSDir(dir)
	if err != nil || n != 2 {
		t.Errorf("RemoveNetNSDir = %d, %v; want 2", n, err)
	}
	for _, p := range []string{path, filepath.Join(dir, "second")} {
		if mounted(t, p) {
			t.Errorf("%s still mounted", p)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if err := RemoveNetNS(path); err != nil {
		t.Errorf("RemoveNetNS of a removed namespace: %v", err)
	}
	if n, err := RemoveNetNSDir(filepath.Join(dir, "nosuch")); n != 0 || err != nil {
		t.Errorf("RemoveNetNSDir of a missing dir = %d, %v", n, err)
	}
}

func TestICCIsolatesBridgePorts(t *testing.T) {
	host := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	tests := []struct {
		name      string
		giveICC   string
		wantReach bool
	}{
		{name: "icc on", giveICC: "true", wantReach: true},
		{name: "icc off", giveICC: "false", wantReach: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := userNet(t, c, fmt.Sprintf("icc%d", i), fmt.Sprintf("10.80.%d.0/24", i), map[string]string{OptICC: tt.giveICC})
			a, b := newContainerNS(t), newContainerNS(t)
			attA, err := c.Connect(ctx, n.ID, EndpointRequest{ContainerID: "a", NetNSPath: a})
			if err != nil {
				t.Fatal(err)
			}
			attB, err := c.Connect(ctx, n.ID, EndpointRequest{ContainerID: "b", NetNSPath: b})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(ctx, n.ID, "a")
			defer c.Disconnect(ctx, n.ID, "b")
			if err := ping(t, a, attA.Gateway); err != nil {
				t.Errorf("ping the gateway: %v", err)
			}
			err = pingWithin(t, a, attB.Endpoint.Addr, time.Second)
			if got := err == nil; got != tt.wantReach {
				t.Errorf("container to container: reached %v (%v), want %v", got, err, tt.wantReach)
			}
		})
	}
}

func TestSecondNetworkDefaultRoute(t *testing.T) {
	host := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	first := userNet(t, c, "first", "10.81.0.0/24", nil)
	second := userNet(t, c, "second", "10.82.0.0/24", nil)
	ns := newContainerNS(t)
	if _, err := c.Connect(ctx, "first", EndpointRequest{ContainerID: "x", NetNSPath: ns}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, "second", EndpointRequest{ContainerID: "x", NetNSPath: ns, IfName: "eth1", NoDefaultRoute: true}); err != nil {
		t.Fatal(err)
	}
	defaultVia := func() string {
		routes, err := nsHandle(t, ns).RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				return r.Gw.String()
			}
		}
		return ""
	}
	if got := defaultVia(); got != first.IPAM.Config[0].Gateway.String() {
		t.Errorf("default route via %q after the second network, want the first's gateway", got)
	}
	if _, ok := linkNames(t, ns)["eth1"]; !ok {
		t.Error("no eth1 for the second network")
	}
	if err := c.Disconnect(ctx, "first", "x"); err != nil {
		t.Fatal(err)
	}
	if err := SetDefaultRoute(ns, second.IPAM.Config[0].Gateway); err != nil {
		t.Fatal(err)
	}
	if got := defaultVia(); got != second.IPAM.Config[0].Gateway.String() {
		t.Errorf("default route via %q after SetDefaultRoute, want the second's gateway", got)
	}
	if err := SetDefaultRoute(ns, netip.MustParseAddr("10.99.0.1")); err == nil {
		t.Error("SetDefaultRoute through an unreachable gateway succeeded")
	}
	if err := c.Disconnect(ctx, "second", "x"); err != nil {
		t.Fatal(err)
	}
}

func TestPublishPortRange(t *testing.T) {
	host := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	userNet(t, c, "ranges", "10.83.0.0/24", nil)
	_, taken := holdPort(t, host)
	if taken > 65530 {
		t.Skipf("held port %d too close to the top for a range", taken)
	}
	att, err := c.Connect(ctx, "ranges", EndpointRequest{ContainerID: "r", Ports: []PortBinding{{HostPort: taken, HostPortEnd: taken + 3, ContainerPort: 80}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := att.Endpoint.Ports[0]; got.HostPort != taken+1 || got.HostPortEnd != 0 {
		t.Errorf("range %d-%d with %d taken gave %+v, want %d", taken, taken+3, taken, got, taken+1)
	}
	if err := c.Disconnect(ctx, "ranges", "r"); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkInfoAndContainerEndpoints(t *testing.T) {
	host := newTestNS(t)
	opts := testOptions(t, host, t.TempDir())
	opts.Bridge = BridgeMode{Name: DefaultBridgeName}
	c := newTestController(t, opts)
	ctx := context.Background()
	user := userNet(t, c, "info", "10.84.0.0/24", nil)
	tests := []struct {
		name            string
		giveRef         string
		wantName        string
		wantUserDefined bool
		wantConfigured  bool
	}{
		{name: "default bridge", giveRef: "bridge", wantName: "bridge"},
		{name: "user by name", giveRef: "info", wantName: "info", wantUserDefined: true, wantConfigured: true},
		{name: "user by prefix", giveRef: user.ID[:8], wantName: "info", wantUserDefined: true, wantConfigured: true},
		{name: "host", giveRef: "host", wantName: "host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := c.Network(tt.giveRef)
			if err != nil {
				t.Fatal(err)
			}
			if info.Name != tt.wantName || info.UserDefined != tt.wantUserDefined || info.IPAMConfigured != tt.wantConfigured {
				t.Errorf("Network(%q) = %+v", tt.giveRef, info)
			}
		})
	}
	if _, err := c.Network("nosuch"); err == nil {
		t.Error("Network(nosuch) found one")
	}
	bridge, _ := c.Get(ctx, "bridge")
	if gw, ok := c.HostGateway(); !ok || gw != bridge.IPAM.Config[0].Gateway {
		t.Errorf("HostGateway = %v, %v; want the default bridge's gateway %v", gw, ok, bridge.IPAM.Config[0].Gateway)
	}
	if _, err := c.Connect(ctx, "info", EndpointRequest{ContainerID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, "bridge", EndpointRequest{ContainerID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, "bridge", EndpointRequest{}); err != nil { // no container: not listed
		t.Fatal(err)
	}
	eps := c.ContainerEndpoints()
	got := map[string]string{}
	for _, ep := range eps {
		got[ep.ContainerID] = ep.NetworkID
	}
	if len(eps) != 2 || got["c1"] != user.ID || got["c2"] != bridge.ID {
		t.Errorf("ContainerEndpoints = %+v", eps)
	}
	for _, ep := range eps {
		if err := c.Disconnect(ctx, ep.NetworkID, ep.EndpointID); err != nil {
			t.Error(err)
		}
	}
	if eps := c.ContainerEndpoints(); len(eps) != 0 {
		t.Errorf("endpoints left: %+v", eps)
	}

	noBridge := testOptions(t, newTestNS(t), t.TempDir())
	if _, ok := newTestController(t, noBridge).HostGateway(); ok {
		t.Error("HostGateway with the default bridge disabled")
	}
}
