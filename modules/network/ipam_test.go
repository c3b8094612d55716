package network

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/wharfd/wharfd/modules/config"
)

func TestDefaultAddressPools(t *testing.T) {
	pools := DefaultAddressPools()
	if len(pools) != 16 {
		t.Fatalf("%d pools, want 16 (172.17-172.31 and 192.168/16)", len(pools))
	}
	if pools[0].Base.String() != "172.17.0.0/16" || pools[0].Size != 16 {
		t.Errorf("first pool %+v", pools[0])
	}
	if last := pools[15]; last.Base.String() != "192.168.0.0/16" || last.Size != 20 {
		t.Errorf("last pool %+v", last)
	}
}

func TestPickSubnet(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name      string
		givePools []config.AddressPool
		giveUsed  []netip.Prefix
		want      string
		wantErr   error
	}{
		{name: "first default", givePools: DefaultAddressPools(), want: "172.17.0.0/16"},
		{name: "route on 172.17 skipped", givePools: DefaultAddressPools(), giveUsed: []netip.Prefix{p("172.17.5.0/24")}, want: "172.18.0.0/16"},
		{name: "all 172 used", givePools: DefaultAddressPools(), giveUsed: []netip.Prefix{p("172.16.0.0/12")}, want: "192.168.0.0/20"},
		{name: "192.168 in 20s", givePools: DefaultAddressPools(), giveUsed: []netip.Prefix{p("172.16.0.0/12"), p("192.168.0.0/20")}, want: "192.168.16.0/20"},
		{name: "custom pool", givePools: []config.AddressPool{{Base: p("10.10.0.0/16"), Size: 24}}, giveUsed: []netip.Prefix{p("10.10.0.0/24")}, want: "10.10.1.0/24"},
		{name: "wider route covers pool", givePools: []config.AddressPool{{Base: p("10.10.0.0/16"), Size: 24}}, giveUsed: []netip.Prefix{p("10.0.0.0/8")}, wantErr: ErrPoolsExhausted},
		{name: "exhausted", givePools: []config.AddressPool{{Base: p("10.10.0.0/23"), Size: 24}}, giveUsed: []netip.Prefix{p("10.10.0.0/24"), p("10.10.1.0/24")}, wantErr: ErrPoolsExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PickSubnet(tt.givePools, tt.giveUsed)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !cerrdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want %v (invalid argument)", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("PickSubnet = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestAddrSpace(t *testing.T) {
	s := newAddrSpace(netip.MustParsePrefix("10.0.0.0/29"), netip.Prefix{}, netip.MustParseAddr("10.0.0.1"))
	var got []string
	for {
		a, ok := s.next()
		if !ok {
			break
		}
		got = append(got, a.String())
	}
	want := []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	s.release(netip.MustParseAddr("10.0.0.4"))
	if a, ok := s.next(); !ok || a.String() != "10.0.0.4" {
		t.Errorf("after release next = %v %v, want 10.0.0.4", a, ok)
	}
	tests := []struct {
		name    string
		give    string
		wantErr error
	}{
		{name: "gateway", give: "10.0.0.1", wantErr: ErrAddressOutOfRange},
		{name: "broadcast", give: "10.0.0.7", wantErr: ErrAddressOutOfRange},
		{name: "outside", give: "10.0.1.2", wantErr: ErrAddressOutOfRange},
		{name: "in use", give: "10.0.0.2", wantErr: ErrAddressInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.take(netip.MustParseAddr(tt.give)); !errors.Is(err, tt.wantErr) {
				t.Errorf("take(%s) = %v, want %v", tt.give, err, tt.wantErr)
			}
		})
	}
}

func TestAddrSpaceRange(t *testing.T) {
	s := newAddrSpace(netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.0.128/30"), netip.MustParseAddr("10.0.0.1"))
	for _, want := range []string{"10.0.0.128", "10.0.0.129", "10.0.0.130", "10.0.0.131"} {
		if a, ok := s.next(); !ok || a.String() != want {
			t.Fatalf("next = %v %v, want %s", a, ok, want)
		}
	}
	if a, ok := s.next(); ok {
		t.Errorf("range full, got %v", a)
	}
}

func TestValidateIPAM(t *testing.T) {
	tests := []struct {
		name        string
		giveSubnet  string
		giveRange   string
		giveGateway string
		wantGateway string
		wantErr     string
	}{
		{name: "subnet only", giveSubnet: "10.1.0.0/24", wantGateway: "10.1.0.1"},
		{name: "gateway", giveSubnet: "10.1.0.0/24", giveGateway: "10.1.0.254", wantGateway: "10.1.0.254"},
		{name: "range", giveSubnet: "10.1.0.0/24", giveRange: "10.1.0.128/25", wantGateway: "10.1.0.1"},
		{name: "bad cidr", giveSubnet: "10.1.0.0/33", wantErr: "invalid subnet 10.1.0.0/33"},
		{name: "not masked", giveSubnet: "10.1.0.5/24", wantErr: "it should be 10.1.0.0/24"},
		{name: "gateway outside", giveSubnet: "10.1.0.0/24", giveGateway: "10.2.0.1", wantErr: "gateway 10.2.0.1 is not in subnet 10.1.0.0/24"},
		{name: "gateway broadcast", giveSubnet: "10.1.0.0/24", giveGateway: "10.1.0.255", wantErr: "network or broadcast"},
		{name: "bad gateway", giveSubnet: "10.1.0.0/24", giveGateway: "10.1.0.1/24", wantErr: "invalid gateway address 10.1.0.1/24"},
		{name: "range outside", giveSubnet: "10.1.0.0/24", giveRange: "10.2.0.0/25", wantErr: "not within subnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, g, err := validateIPAM(tt.giveSubnet, tt.giveRange, tt.giveGateway)
			if tt.wantErr != "" {
				if err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want invalid argument with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || g.String() != tt.wantGateway {
				t.Errorf("gateway %v, err %v; want %s", g, err, tt.wantGateway)
			}
		})
	}
}
