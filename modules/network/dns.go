package network

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// EmbeddedDNSAddr is where containers on user-defined networks find the
// embedded DNS server, as with dockerd: 127.0.0.11:53 inside their own
// network namespace (their resolv.conf names 127.0.0.11).
var EmbeddedDNSAddr = netip.MustParseAddrPort("127.0.0.11:53")

// dnsTTL is the TTL of the records the embedded server answers, in
// seconds, as dockerd's.
const dnsTTL = 600

// NameLookup is what the embedded DNS server asks about containers; the
// Controller implements it.
type NameLookup interface {
	// LookupName returns the addresses on network netID of the
	// containers answering to name (name, alias or short ID).
	LookupName(netID, name string) []netip.Addr
	// LookupAddr returns the container name with address a on netID.
	LookupAddr(netID string, a netip.Addr) (string, bool)
}

var _ NameLookup = (*Controller)(nil)

// ResolverConfig configures one container's embedded DNS server.
type ResolverConfig struct {
	// NetNSPath is the container's network namespace; lo must be up in
	// it. Empty serves in the daemon's own namespace (tests only).
	NetNSPath string
	// Addr is the address served, EmbeddedDNSAddr when zero.
	Addr netip.AddrPort
	// Networks returns the IDs of the user-defined networks the
	// container is on, in priority order; it is asked at each query so
	// connect and disconnect take effect at once.
	Networks func() []string
	// Names answers for containers.
	Names NameLookup
	// Upstreams are the resolvers unknown names are forwarded to, from
	// the daemon's namespace (so a host resolver on loopback works);
	// HostResolvers gives the host's. None answers SERVFAIL.
	Upstreams []netip.AddrPort
	// Logger logs; nil logs nothing.
	Logger *zap.Logger
}

// Resolver is a running embedded DNS server (UDP and TCP) of one
// container. It answers A and PTR queries for container names, aliases
// and short IDs on the container's networks, answers AAAA for them with
// no record (IPv4 only), and forwards everything else to the upstreams.
type Resolver struct {
	cfg     ResolverConfig
	servers []*dns.Server
	client  *dns.Client
	wg      sync.WaitGroup
}

// StartResolver binds cfg.Addr (UDP and TCP) inside the namespace and
// serves it until Close. Binding fails if the address is taken.
func StartResolver(cfg ResolverConfig) (*Resolver, error) {
	if !cfg.Addr.IsValid() {
		cfg.Addr = EmbeddedDNSAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Networks == nil {
		cfg.Networks = func() []string { return nil }
	}
	ns, err := openNamespace(cfg.NetNSPath)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	var pc net.PacketConn
	var ln net.Listener
	if err := ns.do(func() (err error) {
		if pc, err = net.ListenPacket("udp4", cfg.Addr.String()); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", cfg.Addr.String()); err != nil {
			pc.Close()
			return err
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("embedded DNS on %s: %w", cfg.Addr, err)
	}
	r := &Resolver{cfg: cfg, client: &dns.Client{Timeout: 4 * time.Second}}
	h := dns.HandlerFunc(r.serve)
	r.servers = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range r.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				cfg.Logger.Debug("embedded dns stopped", zap.Error(err))
			}
		}()
		<-started
	}
	return r, nil
}

// Close stops the server and waits for its goroutines.
func (r *Resolver) Close() error {
	var errs []error
	for _, s := range r.servers {
		errs = append(errs, s.Shutdown())
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

func (r *Resolver) serve(w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	if m := r.local(q); m != nil {
		w.WriteMsg(m)
		return
	}
	w.WriteMsg(r.forward(w, q))
}

// local answers q from the containers' names, or returns nil when the
// name is not a container's.
func (r *Resolver) local(q *dns.Msg) *dns.Msg {
	qq := q.Question[0]
	name := strings.TrimSuffix(qq.Name, ".")
	switch qq.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		for _, netID := range r.cfg.Networks() {
			addrs := r.cfg.Names.LookupName(netID, name)
			if len(addrs) == 0 {
				continue
			}
			m := new(dns.Msg)
			m.SetReply(q)
			m.Authoritative = true
			if qq.Qtype == dns.TypeA {
				for _, a := range addrs {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: dnsTTL}, A: a.AsSlice()})
				}
			}
			return m
		}
	case dns.TypePTR:
		ip := net.ParseIP(reverseToIP(qq.Name))
		a, ok := netip.AddrFromSlice(ip.To4())
		if !ok {
			return nil
		}
		for _, netID := range r.cfg.Networks() {
			if host, ok := r.cfg.Names.LookupAddr(netID, a); ok {
				m := new(dns.Msg)
				m.SetReply(q)
				m.Authoritative = true
				m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: dnsTTL}, Ptr: dns.Fqdn(host)})
				return m
			}
		}
	}
	return nil
}

// reverseToIP turns 4.3.2.1.in-addr.arpa. into 1.2.3.4 ("" otherwise).
func reverseToIP(name string) string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return ""
	}
	p := strings.Split(rest, ".")
	if len(p) != 4 {
		return ""
	}
	return p[3] + "." + p[2] + "." + p[1] + "." + p[0]
}

// forward asks the upstreams in turn, over the transport the query came
// by; SERVFAIL when none answers.
func (r *Resolver) forward(w dns.ResponseWriter, q *dns.Msg) *dns.Msg {
	c := *r.client
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		c.Net = "tcp"
	}
	for _, up := range r.cfg.Upstreams {
		resp, _, err := c.Exchange(q, up.String())
		if err != nil {
			r.cfg.Logger.Debug("dns upstream", zap.Stringer("upstream", up), zap.Error(err))
			continue
		}
		return resp
	}
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	return m
}

// HostResolvers returns the nameservers of the host's resolv.conf at
// path, on port 53. When the only one is systemd-resolved's stub
// (127.0.0.53), it reads the upstream file
// /run/systemd/resolve/resolv.conf instead, as dockerd does.
func HostResolvers(path string) ([]netip.AddrPort, error) {
	ns, err := readNameservers(path)
	if err != nil {
		return nil, err
	}
	if len(ns) == 1 && ns[0] == netip.MustParseAddr("127.0.0.53") {
		if up, err := readNameservers("/run/systemd/resolve/resolv.conf"); err == nil && len(up) > 0 {
			ns = up
		}
	}
	out := make([]netip.AddrPort, 0, len(ns))
	for _, a := range ns {
		out = append(out, netip.AddrPortFrom(a, 53))
	}
	return out, nil
}

func readNameservers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read resolvers: %w", err)
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				out = append(out, a.Unmap())
			}
		}
	}
	return out, sc.Err()
}
