// Package network is wharfd's networking: the default bridge's settings
// now, the network controller (networks, IPAM, bridge driver, port
// publishing) as it lands.
//
// Seed steps living here:
//
//   - 3.1 mtu: the default MTU, 1500 unless --mtu sets it (NewMTU).
//   - 3.3 bridge-mode: whether the default bridge is disabled
//     (--bridge=none) and its interface name (NewBridgeMode).
package network
