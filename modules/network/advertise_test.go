package network

import (
	"net/netip"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

func TestResolveAdvertiseAddr(t *testing.T) {
	ns := newTestNS(t)
	h := nsHandle(t, ns)
	// No default route: no address, skipped.
	a, err := ResolveAdvertiseAddr(h, "")
	if err != nil || a.Addr.IsValid() || a.SkipReason() == "" {
		t.Fatalf("without a default route: %+v %v", a, err)
	}
	addDummyRoute(t, ns, "wh-uplink", netip.MustParsePrefix("198.51.100.0/24"))
	l, _ := h.LinkByName("wh-uplink")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: netip.MustParseAddr("198.51.100.254").AsSlice()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		give       string
		wantAddr   string
		wantIface  string
		wantErrArg bool
	}{
		{name: "default route", give: "", wantAddr: "198.51.100.1", wantIface: "wh-uplink"},
		{name: "address", give: "203.0.113.9", wantAddr: "203.0.113.9"},
		{name: "interface", give: "wh-uplink", wantAddr: "198.51.100.1", wantIface: "wh-uplink"},
		{name: "unknown interface", give: "nosuch0", wantErrArg: true},
		{name: "interface without address", give: "lo", wantErrArg: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveAdvertiseAddr(h, tt.give)
			if tt.wantErrArg {
				if !cerrdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || got.Addr.String() != tt.wantAddr || got.Interface != tt.wantIface || got.SkipReason() != "" {
				t.Errorf("got %+v, %v; want %s on %q", got, err, tt.wantAddr, tt.wantIface)
			}
		})
	}
}
