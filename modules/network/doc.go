// Package network is wharfd's networking: the default bridge's settings,
// the node address, and the network controller (networks, IPAM, bridge
// driver, packet filter, port publishing, embedded DNS).
//
// Seed steps living here:
//
//   - 3.1 mtu: the default MTU, 1500 unless --mtu sets it (NewMTU).
//   - 3.3 bridge-mode: whether the default bridge is disabled
//     (--bridge=none) and its interface name (NewBridgeMode).
//   - 3.21 advertise: the node address, the default-route interface's
//     (NewAdvertise, ResolveAdvertiseAddr).
//   - 3.22 netcontroller: the networks (NewNetController, Controller).
//
// The controller persists one JSON file per network under
// <data root>/network. Built-ins are bridge (the default bridge, on
// docker0 unless -b names another), host and none. Subnets come from
// dockerd's default pools (or --default-address-pool), skipping any that
// a route of the host already covers.
//
// Packet filter: github.com/google/nftables. Every rule lives in the
// table "ip wharfd" (chains guard, forward, prerouting, output,
// postrouting) and carries a comment naming the network or endpoint it
// belongs to; each change is one netlink batch, which the kernel applies
// atomically, and each start rebuilds the table from the network files
// in one batch, so restarts never duplicate a rule. Nothing outside the
// table is touched, --iptables=false makes none.
//
// Containers: Connect allocates an address (or takes --ip), wires the
// container's namespace to the bridge with a veth pair (CreateVeth) and
// publishes ports. A published port is a bound socket (which reserves
// it: a taken port fails with PortAllocatedError) plus DNAT rules for
// traffic from outside and from the host; loopback works without a
// userland proxy through route_localnet on the bridge, with masquerade of
// host-local sources and a guard rule dropping what the bridge sends to
// 127.0.0.0/8. StartResolver serves the embedded DNS (127.0.0.11 in the
// container's namespace) for user-defined networks.
package network
