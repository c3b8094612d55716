package network

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream starts a DNS server on loopback (a free port) that answers
// every A query with 198.51.100.7.
func upstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) }, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(198, 51, 100, 7)})
		w.WriteMsg(m)
	})}
	done := make(chan struct{})
	go func() { s.ActivateAndServe(); close(done) }()
	<-started
	t.Cleanup(func() { s.Shutdown(); <-done })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestEmbeddedDNS(t *testing.T) {
	host := newTestNS(t)
	ctr := newTestNS(t)
	c := newTestController(t, testOptions(t, host, t.TempDir()))
	ctx := context.Background()
	n := userNet(t, c, "dnsnet", "10.74.0.0/24", nil)
	id := "0123456789ab" + "cdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := c.Connect(ctx, "dnsnet", EndpointRequest{ContainerID: id, Name: "web", Aliases: []string{"www"}, IP: netip.MustParseAddr("10.74.0.10")}); err != nil {
		t.Fatal(err)
	}
	r, err := StartResolver(ResolverConfig{NetNSPath: ctr, Names: c, Networks: func() []string { return []string{n.ID} }, Upstreams: []netip.AddrPort{upstream(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	tests := []struct {
		name     string
		giveName string
		giveType uint16
		giveNet  string
		want     []string
	}{
		{name: "container name", giveName: "web.", giveType: dns.TypeA, want: []string{"10.74.0.10"}},
		{name: "alias", giveName: "www.", giveType: dns.TypeA, want: []string{"10.74.0.10"}},
		{name: "short id", giveName: "0123456789ab.", giveType: dns.TypeA, want: []string{"10.74.0.10"}},
		{name: "case", giveName: "WEB.", giveType: dns.TypeA, want: []string{"10.74.0.10"}},
		{name: "over tcp", giveName: "web.", giveType: dns.TypeA, giveNet: "tcp", want: []string{"10.74.0.10"}},
		{name: "aaaa of a container", giveName: "web.", giveType: dns.TypeAAAA, want: nil},
		{name: "ptr", giveName: "10.0.74.10.in-addr.arpa.", giveType: dns.TypePTR, want: []string{"web."}},
		{name: "forwarded", giveName: "example.test.", giveType: dns.TypeA, want: []string{"198.51.100.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion(tt.giveName, tt.giveType)
			var resp *dns.Msg
			if err := inNS(t, ctr, func() (err error) {
				cl := &dns.Client{Net: tt.giveNet, Timeout: 5 * time.Second}
				resp, _, err = cl.Exchange(q, EmbeddedDNSAddr.String())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if resp.Rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %s", dns.RcodeToString[resp.Rcode])
			}
			var got []string
			for _, rr := range resp.Answer {
				switch v := rr.(type) {
				case *dns.A:
					got = append(got, v.A.String())
				case *dns.PTR:
					got = append(got, v.Ptr)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("answers %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHostResolvers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(p, []byte("# comment\nnameserver 198.51.100.1\nnameserver ::ffff:198.51.100.2\nsearch example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := HostResolvers(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:53"), netip.MustParseAddrPort("198.51.100.2:53")}; !slices.Equal(got, want) {
		t.Errorf("HostResolvers = %v, want %v", got, want)
	}
}
