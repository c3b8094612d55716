package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ping sends one ICMP echo to dst from the namespace at ns and waits up
// to 5s for the reply.
func ping(t testing.TB, ns string, dst netip.Addr) error {
	t.Helper()
	return pingWithin(t, ns, dst, 5*time.Second)
}

// pingWithin is ping waiting up to wait for the reply.
func pingWithin(t testing.TB, ns string, dst netip.Addr, wait time.Duration) error {
	t.Helper()
	return inNS(t, ns, func() error {
		c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("wharfd")}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 1500)
		for {
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				return err
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err == nil && m.Type == ipv4.ICMPTypeEchoReply && peer.String() == dst.String() {
				return nil
			}
		}
	})
}

// userNet creates a bridge network on subnet in c.
func userNet(t testing.TB, c *Controller, name, subnet string, opts map[string]string) nettypes.Inspect {
	t.Helper()
	req := nettypes.CreateRequest{Name: name, Options: opts}
	if subnet != "" {
		req.IPAM = ipam(subnet, "")
	}
	resp, err := c.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Get(context.Background(), resp.ID)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestConnectVethPing(t *testing.T) {
	host := newTestNS(t)
	ctr := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	n := userNet(t, c, "app", "10.70.0.0/24", map[string]string{OptMTU: "1450"})
	att, err := c.Connect(ctx, "app", EndpointRequest{ContainerID: strings.Repeat("ab", 32), Name: "web", NetNSPath: ctr})
	if err != nil {
		t.Fatal(err)
	}
	if att.Endpoint.Addr.String() != "10.70.0.2" || att.Gateway.String() != "10.70.0.1" || att.PrefixLen != 24 || att.MTU != 1450 {
		t.Errorf("attachment %+v", att)
	}
	h := nsHandle(t, ctr)
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatalf("eth0 in the container namespace: %v", err)
	}
	if eth.Attrs().MTU != 1450 || eth.Attrs().HardwareAddr.String() != "02:42:0a:46:00:02" {
		t.Errorf("eth0 MTU %d MAC %s", eth.Attrs().MTU, eth.Attrs().HardwareAddr)
	}
	if a, ok, _ := bridgeAddr(h, "eth0"); !ok || a.String() != "10.70.0.2/24" {
		t.Errorf("eth0 address %v", a)
	}
	routes, _ := h.RouteList(nil, 2)
	hasDefault := false
	for _, r := range routes {
		hasDefault = hasDefault || ((r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.70.0.1")
	}
	if !hasDefault {
		t.Errorf("no default route via the gateway: %v", routes)
	}
	if err := ping(t, ctr, n.IPAM.Config[0].Gateway); err != nil {
		t.Errorf("ping gateway from the container namespace: %v", err)
	}
	in, _ := c.Get(ctx, "app")
	if ep, ok := in.Containers[att.Endpoint.ContainerID]; !ok || ep.Name != "web" || ep.IPv4Address.String() != "10.70.0.2/24" {
		t.Errorf("inspect containers %+v", in.Containers)
	}
	if got := c.LookupName(n.ID, "WEB"); len(got) != 1 || got[0] != att.Endpoint.Addr {
		t.Errorf("LookupName = %v", got)
	}
	if got := c.LookupName(n.ID, "abababababab"); len(got) != 1 {
		t.Errorf("LookupName short ID = %v", got)
	}
	if err := c.Remove(ctx, "app"); !cerrdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "error while removing network: network app id "+n.ID+" has active endpoints") {
		t.Errorf("Remove with an endpoint = %v", err)
	}
	if err := c.Disconnect(ctx, "app", att.Endpoint.ContainerID); err != nil {
		t.Fatal(err)
	}
	if _, ok := linkNames(t, host)[att.Endpoint.HostVeth]; ok {
		t.Error("host veth left after disconnect")
	}
	if _, ok := linkNames(t, ctr)["eth0"]; ok {
		t.Error("eth0 left in the container namespace after disconnect")
	}
	if err := c.Remove(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	for name, typ := range linkNames(t, host) {
		if typ == "veth" || typ == "bridge" {
			t.Errorf("%s %s left", typ, name)
		}
	}
}

func TestConnectAddresses(t *testing.T) {
	host := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	userNet(t, c, "small", "10.71.0.0/30", nil) // one address: .2
	tests := []struct {
		name      string
		giveIP    string
		wantAddr  string
		wantClass func(error) bool
	}{
		{name: "outside", giveIP: "10.72.0.2", wantClass: cerrdefs.IsInvalidArgument},
		{name: "gateway", giveIP: "10.71.0.1", wantClass: cerrdefs.IsInvalidArgument},
		{name: "given", giveIP: "10.71.0.2", wantAddr: "10.71.0.2"},
		{name: "taken", giveIP: "10.71.0.2", wantClass: cerrdefs.IsConflict},
		{name: "exhausted", wantClass: cerrdefs.IsUnavailable},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := EndpointRequest{ContainerID: fmt.Sprintf("c%d", i)}
			if tt.giveIP != "" {
				req.IP = netip.MustParseAddr(tt.giveIP)
			}
			att, err := c.Connect(ctx, "small", req)
			if tt.wantClass != nil {
				if !tt.wantClass(err) {
					t.Fatalf("Connect = %v, want another class", err)
				}
				return
			}
			if err != nil || att.Endpoint.Addr.String() != tt.wantAddr {
				t.Fatalf("Connect = %+v, %v", att, err)
			}
		})
	}
	if _, err := c.Connect(ctx, "host", EndpointRequest{ContainerID: "x"}); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("Connect to host = %v, want invalid argument", err)
	}
}

// freePort returns a TCP port free on 127.0.0.1 of the namespace ns, and a
// listener holding it.
func holdPort(t testing.TB, ns string) (net.Listener, uint16) {
	t.Helper()
	var l net.Listener
	if err := inNS(t, ns, func() (err error) {
		l, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, uint16(l.Addr().(*net.TCPAddr).Port)
}

func TestPublishPorts(t *testing.T) {
	host := newTestNS(t)
	ctr := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	n := userNet(t, c, "pub", "10.73.0.0/24", nil)

	// A server in the "container" on port 80.
	var srv net.Listener
	if err := inNS(t, ctr, func() (err error) {
		srv, err = net.Listen("tcp4", "0.0.0.0:80")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			conn, err := srv.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, "hello from the container\n")
			conn.Close()
		}
	}()

	// A taken port: clear conflict, nothing left.
	_, taken := holdPort(t, host)
	before := rulesOf(t, host)
	_, err := c.Connect(ctx, "pub", EndpointRequest{ContainerID: "bad", NetNSPath: ctr, Ports: []PortBinding{{HostPort: taken, ContainerPort: 80}}})
	var pa *PortAllocatedError
	if !errors.As(err, &pa) || !cerrdefs.IsConflict(err) || !strings.HasPrefix(err.Error(), "driver failed programming external connectivity on endpoint  (") ||
		!strings.HasSuffix(err.Error(), fmt.Sprintf("): Bind for 0.0.0.0:%d failed: port is already allocated", taken)) {
		t.Fatalf("taken port: %v", err)
	}
	if after := rulesOf(t, host); !slices.Equal(before, after) {
		t.Errorf("rules left by the refused connect")
	}
	for name, typ := range linkNames(t, host) {
		if typ == "veth" {
			t.Errorf("veth %s left by the refused connect", name)
		}
	}

	// A random host port on loopback reaches the container.
	att, err := c.Connect(ctx, "pub", EndpointRequest{ContainerID: "good", NetNSPath: ctr, Ports: []PortBinding{
		{HostIP: netip.MustParseAddr("127.0.0.1"), ContainerPort: 80},
		{ContainerPort: 53, Proto: "udp"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := att.Endpoint.Ports[0]
	lo, hi := 0, 0
	inNS(t, host, func() error { lo, hi = ephemeralRange(); return nil })
	if int(p.HostPort) < lo || int(p.HostPort) > hi || att.Endpoint.Ports[1].HostPort == 0 {
		t.Errorf("random host ports %v outside %d-%d", att.Endpoint.Ports, lo, hi)
	}
	if n := countTagged(rulesOf(t, host), portTag(n.ID, att.Endpoint.ID)); n != 4 {
		t.Errorf("%d port rules, want 4 (2 ports × prerouting, output)", n)
	}
	// The reservation holds the port against others.
	if err := inNS(t, host, func() error {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p.HostPort))
		if err == nil {
			l.Close()
			return errors.New("published port could be bound by another program")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	var got string
	if err := inNS(t, host, func() error {
		conn, err := net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", p.HostPort), 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		b, err := io.ReadAll(conn)
		got = string(b)
		return err
	}); err != nil {
		t.Fatalf("connect to the published port on loopback: %v", err)
	}
	if got != "hello from the container\n" {
		t.Errorf("read %q through the published port", got)
	}

	if err := c.Disconnect(ctx, "pub", "good"); err != nil {
		t.Fatal(err)
	}
	if n := countTagged(rulesOf(t, host), portTag(n.ID, att.Endpoint.ID)); n != 0 {
		t.Errorf("%d port rules left", n)
	}
	if err := inNS(t, host, func() error {
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p.HostPort))
		if err != nil {
			return fmt.Errorf("port still reserved after disconnect: %w", err)
		}
		return l.Close()
	}); err != nil {
		t.Error(err)
	}
}

func TestRestartReconcilesRules(t *testing.T) {
	host := newTestNS(t)
	root := t.TempDir()
	opts := testOptions(t, host, root)
	opts.Bridge = BridgeMode{Name: "docker0"}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	userNet(t, c, "r1", "", map[string]string{OptICC: "false"})
	if _, err := c.Create(ctx, nettypes.CreateRequest{Name: "r2", Internal: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(ctx, "r1", EndpointRequest{ContainerID: "p", Ports: []PortBinding{{ContainerPort: 80}}}); err != nil {
		t.Fatal(err)
	}
	want := rulesOf(t, host)
	slices.Sort(want)
	// The rules of a network whose file is gone (a crash between the two)
	// must go at the next start.
	stray := userNet(t, c, "stray", "", nil)
	c.Close()
	if n := countTagged(rulesOf(t, host), netTag(stray.ID)); n == 0 {
		t.Fatal("stray network has no rules")
	}
	if err := os.Remove(filepath.Join(root, stray.ID+".json")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		c, err := New(opts)
		if err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		got := rulesOf(t, host)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("restart %d: rules\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		c.Close()
	}
	c = newTestController(t, opts)
	if len(c.List(ctx)) != 5 {
		t.Errorf("networks after restarts: %d, want 5", len(c.List(ctx)))
	}
	if err := c.Disconnect(ctx, "r1", "p"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"r1", "r2"} {
		if err := c.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	rules := rulesOf(t, host)
	br, _ := c.Get(ctx, "bridge")
	for _, r := range rules {
		if !strings.HasSuffix(r, netTag(br.ID)) {
			t.Errorf("rule left that is not the default bridge's: %s", r)
		}
	}
}
