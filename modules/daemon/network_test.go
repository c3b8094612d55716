package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"go.uber.org/zap"

	wnet "github.com/wharfd/wharfd/modules/network"
)

func TestPortBindings(t *testing.T) {
	p := network.MustParsePort
	tests := []struct {
		name    string
		giveCfg *container.Config
		giveHC  *container.HostConfig
		want    []wnet.PortBinding
		wantErr bool
	}{
		{name: "none", giveCfg: &container.Config{}, giveHC: &container.HostConfig{}},
		{
			name:    "fixed on loopback",
			giveCfg: &container.Config{},
			giveHC:  &container.HostConfig{PortBindings: network.PortMap{p("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}}}},
			want:    []wnet.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, HostPortEnd: 8080, ContainerPort: 80, Proto: "tcp"}},
		},
		{
			name:    "random and range, sorted by port",
			giveCfg: &container.Config{},
			giveHC: &container.HostConfig{PortBindings: network.PortMap{
				p("53/udp"): {{HostPort: "5300-5310"}},
				p("22/tcp"): {{}},
			}},
			want: []wnet.PortBinding{
				{ContainerPort: 22, Proto: "tcp"},
				{HostPort: 5300, HostPortEnd: 5310, ContainerPort: 53, Proto: "udp"},
			},
		},
		{
			name:    "publish all skips bound ports",
			giveCfg: &container.Config{ExposedPorts: network.PortSet{p("80/tcp"): {}, p("443/tcp"): {}}},
			giveHC:  &container.HostConfig{PublishAllPorts: true, PortBindings: network.PortMap{p("80/tcp"): {{HostPort: "8080"}}}},
			want: []wnet.PortBinding{
				{HostPort: 8080, HostPortEnd: 8080, ContainerPort: 80, Proto: "tcp"},
				{ContainerPort: 443, Proto: "tcp"},
			},
		},
		{
			name:    "bad host port",
			giveCfg: &container.Config{},
			giveHC:  &container.HostConfig{PortBindings: network.PortMap{p("80/tcp"): {{HostPort: "x"}}}},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := portBindings(tt.giveCfg, tt.giveHC)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Errorf("error %v is not InvalidArgument", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("portBindings = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPortMapAndSummaries(t *testing.T) {
	cfg := &container.Config{ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("9000/tcp"): {}}}
	bound := []wnet.PortBinding{
		{ContainerPort: 80, HostPort: 32768, Proto: "tcp"},
		{ContainerPort: 53, HostPort: 5353, Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1")},
	}
	pm := portMap(cfg, bound, nil)
	if b := pm[network.MustParsePort("80/tcp")]; len(b) != 1 || b[0].HostIP.String() != "0.0.0.0" || b[0].HostPort != "32768" {
		t.Errorf("80/tcp: %+v", b)
	}
	if b, ok := pm[network.MustParsePort("9000/tcp")]; !ok || b != nil {
		t.Errorf("exposed 9000/tcp: %v, %v; want a nil binding", b, ok)
	}
	rec := &Record{Network: &NetworkState{Ports: pm}, State: State{Running: true}}
	got := portSummaries(rec)
	want := []container.PortSummary{
		{IP: netip.MustParseAddr("127.0.0.1"), PrivatePort: 53, PublicPort: 5353, Type: "udp"},
		{IP: netip.MustParseAddr("0.0.0.0"), PrivatePort: 80, PublicPort: 32768, Type: "tcp"},
		{PrivatePort: 9000, Type: "tcp"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("portSummaries = %+v\nwant %+v", got, want)
	}
	rec.State.Running = false
	if got := portSummaries(rec); len(got) != 0 {
		t.Errorf("a stopped container lists ports %+v", got)
	}
}

func TestEndpointConfig(t *testing.T) {
	user := wnet.NetworkInfo{ID: "u1", Name: "app", Driver: "bridge", UserDefined: true, IPAMConfigured: true, Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	pooled := user
	pooled.IPAMConfigured = false
	bridge := wnet.NetworkInfo{ID: "b1", Name: "bridge", Driver: "bridge", Subnet: netip.MustParsePrefix("172.17.0.0/16")}
	ip := func(s string) *network.EndpointSettings {
		return &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(s)}}
	}
	tests := []struct {
		name     string
		giveInfo wnet.NetworkInfo
		giveES   *network.EndpointSettings
		wantIP   string
		wantErr  string
	}{
		{name: "nil settings", giveInfo: bridge},
		{name: "ip on user network", giveInfo: user, giveES: ip("10.1.0.9"), wantIP: "10.1.0.9"},
		{name: "ip on default bridge", giveInfo: bridge, giveES: ip("172.17.0.9"), wantErr: "user specified IP address is supported on user defined networks only"},
		{name: "alias on default bridge", giveInfo: bridge, giveES: &network.EndpointSettings{Aliases: []string{"x"}}, wantErr: "network-scoped aliases are only supported for user-defined networks"},
		{name: "ip without configured subnet", giveInfo: pooled, giveES: ip("10.1.0.9"), wantErr: "user specified IP address is supported only when connecting to networks with user configured subnets"},
		{name: "ip outside the subnet", giveInfo: user, giveES: ip("10.2.0.9"), wantErr: "no configured subnet contains IP address 10.2.0.9"},
		{name: "ipv6", giveInfo: user, giveES: &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::1")}}, wantErr: "IPv6"},
		{name: "operational data dropped", giveInfo: user, giveES: &network.EndpointSettings{EndpointID: "e", IPAddress: netip.MustParseAddr("10.1.0.3"), Aliases: []string{"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := endpointConfig(tt.giveInfo, tt.giveES)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NetworkID != tt.giveInfo.ID || got.EndpointID != "" || got.IPAddress.IsValid() {
				t.Errorf("endpointConfig = %+v", got)
			}
			if tt.wantIP != "" && (got.IPAMConfig == nil || got.IPAMConfig.IPv4Address.String() != tt.wantIP) {
				t.Errorf("IPAMConfig %+v, want %s", got.IPAMConfig, tt.wantIP)
			}
		})
	}
}

func TestPrepareNetworkingConflicts(t *testing.T) {
	d := &Daemon{log: zap.NewNop(), byID: map[string]*Container{}, names: map[string]string{}}
	ctr := container.NetworkMode("container:other")
	tests := []struct {
		name     string
		giveUser *container.Config
		giveHC   *container.HostConfig
		giveNC   *network.NetworkingConfig
		wantErr  error
		wantMsg  string
		wantWarn string
	}{
		{name: "hostname", giveUser: &container.Config{Hostname: "h"}, giveHC: &container.HostConfig{NetworkMode: ctr}, wantErr: ErrConflictNetworkHostname},
		{name: "dns", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: ctr, DNS: []netip.Addr{netip.MustParseAddr("1.1.1.1")}}, wantErr: ErrConflictNetworkAndDNS},
		{name: "extra hosts", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: ctr, ExtraHosts: []string{"a:1.2.3.4"}}, wantErr: ErrConflictNetworkHosts},
		{name: "publish all", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: ctr, PublishAllPorts: true}, wantErr: ErrConflictNetworkPublishPorts},
		{name: "expose", giveUser: &container.Config{ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}}, giveHC: &container.HostConfig{NetworkMode: ctr}, wantErr: ErrConflictNetworkExposePorts},
		{name: "endpoints", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: ctr}, giveNC: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"x": {}}}, wantErr: ErrConflictSharedNetwork},
		{name: "none and another", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: NetworkNone}, giveNC: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"app": {}}}, wantErr: ErrConflictNoNetwork},
		{name: "host and another", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: NetworkHost}, giveNC: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"app": {}}}, wantErr: ErrConflictHostNetwork},
		{name: "bad add-host", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: NetworkBridge, ExtraHosts: []string{"a:b"}}, wantMsg: `invalid IP address in add-host: "b"`},
		{name: "host gateway", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: NetworkBridge, ExtraHosts: []string{"gw:host-gateway"}}},
		{name: "host mode ports", giveUser: &container.Config{}, giveHC: &container.HostConfig{NetworkMode: NetworkHost, PublishAllPorts: true}, wantWarn: "Published ports are discarded when using host network mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, warnings, err := d.prepareNetworking(tt.giveUser, &container.Config{}, tt.giveHC, tt.giveNC)
			switch {
			case tt.wantErr != nil:
				if err != tt.wantErr {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			case tt.wantMsg != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument %q", err, tt.wantMsg)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if tt.wantWarn != "" && !slices.Contains(warnings, tt.wantWarn) {
				t.Errorf("warnings %q, want %q", warnings, tt.wantWarn)
			}
			if _, ok := st.Networks[string(tt.giveHC.NetworkMode)]; !ok {
				t.Errorf("networks %v lack the mode's", st.Networks)
			}
		})
	}
}

func TestNetworkStateClone(t *testing.T) {
	st := &NetworkState{
		SandboxID: "s", SandboxKey: "/k",
		Networks: map[string]*network.EndpointSettings{"app": {EndpointID: "e", IPAddress: netip.MustParseAddr("10.0.0.2"), Aliases: []string{"a"}}},
		Ports:    network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "80"}}},
	}
	c := st.clone()
	c.cleanOperational()
	c.Networks["app"].Aliases[0] = "changed"
	if st.SandboxKey != "/k" || st.Networks["app"].EndpointID != "e" || st.Networks["app"].Aliases[0] != "a" || len(st.Ports) != 1 {
		t.Errorf("clone shares state with the original: %+v", st)
	}
	if c.SandboxKey != "" || c.Ports != nil || c.Networks["app"].IPAddress.IsValid() || c.Networks["app"].EndpointID != "" {
		t.Errorf("cleanOperational left %+v", c)
	}
	if (*NetworkState)(nil).clone() != nil {
		t.Error("clone of nil is not nil")
	}
}

func TestOrderedNetworksAndIfNames(t *testing.T) {
	st := &NetworkState{Networks: map[string]*network.EndpointSettings{"b": {}, "a": {}, "z": {}, "m": {}}}
	if got := orderedNetworks(st, "m"); !slices.Equal(got, []string{"m", "a", "b", "z"}) {
		t.Errorf("orderedNetworks = %v", got)
	}
	if got := orderedNetworks(st, "nosuch"); !slices.Equal(got, []string{"a", "b", "m", "z"}) {
		t.Errorf("orderedNetworks without primary = %v", got)
	}
	if got := nextIfName(map[string]string{"n1": "eth0", "n2": "eth2"}); got != "eth1" {
		t.Errorf("nextIfName = %s, want eth1", got)
	}
	if got := nextIfName(nil); got != "eth0" {
		t.Errorf("nextIfName(nil) = %s", got)
	}
}

func TestHostsContent(t *testing.T) {
	d := &Daemon{o: Options{Hosts: "/nonexistent"}, log: zap.NewNop(), byID: map[string]*Container{}, names: map[string]string{}}
	rec := &Record{Config: &container.Config{Hostname: "box", Domainname: "example.test"}, Network: &NetworkState{Networks: map[string]*network.EndpointSettings{
		"app": {IPAddress: netip.MustParseAddr("10.1.0.5")},
	}}}
	got, err := d.hostsContent(nil, rec, &container.HostConfig{NetworkMode: "app", ExtraHosts: []string{"db:10.9.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, defaultHosts) || !strings.HasSuffix(got, "10.9.9.9\tdb\n10.1.0.5\tbox.example.test box\n") {
		t.Errorf("hosts:\n%s", got)
	}
	if _, err := d.hostsContent(nil, rec, &container.HostConfig{NetworkMode: "app", ExtraHosts: []string{"gw:host-gateway"}}); err == nil || !strings.Contains(err.Error(), "unable to derive the IP value for host-gateway") {
		t.Errorf("host-gateway without a default bridge: %v", err)
	}
}
