package network

import (
	"context"
	"fmt"
	"testing"

	nettypes "github.com/moby/moby/api/types/network"
	"go.uber.org/zap"
)

// BenchmarkNetworkCreateRemove measures one docker network create + rm:
// subnet from the pools, bridge link, nftables rules, file; then all of
// it removed. In a namespace of the benchmark's own.
func BenchmarkNetworkCreateRemove(b *testing.B) {
	ns := newTestNS(b)
	c := newTestController(b, benchOptions(b, ns))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("bench%d", i)
		if _, err := c.Create(ctx, nettypes.CreateRequest{Name: name}); err != nil {
			b.Fatal(err)
		}
		if err := c.Remove(ctx, name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVethAttach measures Connect + Disconnect of an endpoint with a
// veth pair into a namespace (address, MTU, lo, default route), without
// published ports.
func BenchmarkVethAttach(b *testing.B) {
	host := newTestNS(b)
	ctr := newTestNS(b)
	c := newTestController(b, benchOptions(b, host))
	ctx := context.Background()
	if _, err := c.Create(ctx, nettypes.CreateRequest{Name: "bench", IPAM: ipam("10.90.0.0/16", "")}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("c%d", i)
		if _, err := c.Connect(ctx, "bench", EndpointRequest{ContainerID: id, NetNSPath: ctr}); err != nil {
			b.Fatal(err)
		}
		if err := c.Disconnect(ctx, "bench", id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishPort measures Connect + Disconnect of an endpoint with
// one published TCP port (bound socket, two DNAT rules), no veth.
func BenchmarkPublishPort(b *testing.B) {
	host := newTestNS(b)
	c := newTestController(b, benchOptions(b, host))
	ctx := context.Background()
	if _, err := c.Create(ctx, nettypes.CreateRequest{Name: "bench", IPAM: ipam("10.91.0.0/16", "")}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("c%d", i)
		if _, err := c.Connect(ctx, "bench", EndpointRequest{ContainerID: id, Ports: []PortBinding{{ContainerPort: 80}}}); err != nil {
			b.Fatal(err)
		}
		if err := c.Disconnect(ctx, "bench", id); err != nil {
			b.Fatal(err)
		}
	}
}

// benchOptions are testOptions without logging.
func benchOptions(b *testing.B, ns string) Options {
	o := testOptions(b, ns, b.TempDir())
	o.Logger = zap.NewNop()
	return o
}
