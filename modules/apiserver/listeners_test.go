package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfd/wharfd/modules/config"
)

func bindForTest(t *testing.T, cfg *config.Config) (*Listeners, *observer.ObservedLogs, error) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	lc := fxtest.NewLifecycle(t)
	l, err := NewListeners(ListenersParams{Config: cfg, Logger: zap.New(core), Lifecycle: lc})
	if err == nil {
		t.Cleanup(func() { lc.RequireStart().RequireStop() })
	}
	return l, logs, err
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the socket is chowned to root and the group")
	}
}

// someGroup returns a group of this host other than root.
func someGroup(t *testing.T) *user.Group {
	t.Helper()
	for _, name := range []string{"daemon", "adm", "sys", "users", "nogroup"} {
		if g, err := user.LookupGroup(name); err == nil && g.Gid != "0" {
			return g
		}
	}
	t.Skip("no non-root group on this host")
	return nil
}

func TestUnixSocket(t *testing.T) {
	needRoot(t)
	g := someGroup(t)
	gid, _ := strconv.Atoi(g.Gid)
	tests := []struct {
		name      string
		giveGroup string
		giveSet   bool // -G given
		wantGID   int
		wantErr   string
		wantWarn  bool
	}{
		{name: "named group", giveGroup: g.Name, giveSet: true, wantGID: gid},
		{name: "numeric group", giveGroup: g.Gid, giveSet: true, wantGID: gid},
		{name: "missing explicit group", giveGroup: "no-such-group-wharfd", giveSet: true, wantErr: `socket group "no-such-group-wharfd"`},
		{name: "missing default group", giveGroup: "no-such-group-wharfd", wantGID: 0, wantWarn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "run", "api.sock")
			l, logs, err := bindForTest(t, &config.Config{Hosts: []string{"unix://" + sock}, Group: tt.giveGroup, GroupExplicit: tt.giveSet})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if _, err := os.Lstat(sock); err == nil {
					t.Error("socket left behind after the failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
				t.Errorf("mode %v, want socket 0660", fi.Mode())
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != 0 || int(st.Gid) != tt.wantGID {
				t.Errorf("owner %d:%d, want 0:%d", st.Uid, st.Gid, tt.wantGID)
			}
			if got := logs.FilterMessage("socket group not found: the API socket is root-only").Len() == 1; got != tt.wantWarn {
				t.Errorf("warning logged %v, want %v", got, tt.wantWarn)
			}
			if len(l.All()) != 1 || l.All()[0].Addr != "unix://"+sock {
				t.Errorf("listeners %v", l.All())
			}
		})
	}
}

func TestUnixSocketStaleAndForeign(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	// A stale socket (its listener gone) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, _, err := bindForTest(t, &config.Config{Hosts: []string{"unix://" + stale}, Group: "0"}); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	// A regular file is not ours to remove.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = bindForTest(t, &config.Config{Hosts: []string{"unix://" + file}, Group: "0"})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("err = %v, want not a socket", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Error("the file was touched")
	}
}

func TestTCPWithoutTLS(t *testing.T) {
	_, _, err := bindForTest(t, &config.Config{Hosts: []string{"tcp://127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "without TLS") || !strings.Contains(err.Error(), "--tls=false") {
		t.Fatalf("err = %v, want a refusal explaining the risk", err)
	}
	l, logs, err := bindForTest(t, &config.Config{Hosts: []string{"tcp://127.0.0.1:0"}, TLSExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	if logs.FilterMessageSnippet("without TLS").Len() != 1 {
		t.Errorf("no warning: %v", logs.All())
	}
	if a := l.All()[0].Addr; !strings.HasPrefix(a, "tcp://127.0.0.1:") || strings.HasSuffix(a, ":0") {
		t.Errorf("addr %q, want the bound port", a)
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir, and returns their paths.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := testPKI{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		cert, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, cert, "CERTIFICATE", der)
		writePEM(t, keyPath, "EC PRIVATE KEY", kb)
		return cert, keyPath
	}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSVerify(t *testing.T) {
	pki := newTestPKI(t)
	cfg := &config.Config{
		Hosts: []string{"tcp://127.0.0.1:0"}, TLS: true, TLSVerify: true,
		TLSCACert: pki.ca, TLSCert: pki.serverCert, TLSKey: pki.serverKey,
	}
	l, _, err := bindForTest(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := l.All()[0]
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK")) }), ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln.Listener) }()
	t.Cleanup(func() { srv.Close(); <-done })

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(pki.ca)
	pool.AppendCertsFromPEM(caPEM)
	url := "https://" + strings.TrimPrefix(ln.Addr, "tcp://") + "/_ping"
	get := func(certs []tls.Certificate, minV, maxV uint16) error {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: minV, MaxVersion: maxV}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	clientCert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(nil, tls.VersionTLS12, 0); err == nil {
		t.Error("a client without a certificate was served")
	}
	if err := get([]tls.Certificate{clientCert}, tls.VersionTLS12, 0); err != nil {
		t.Errorf("a client with a CA-signed certificate: %v", err)
	}
	if err := get([]tls.Certificate{clientCert}, tls.VersionTLS10, tls.VersionTLS11); err == nil {
		t.Error("TLS 1.1 accepted")
	}
}

func TestTLSBadFiles(t *testing.T) {
	_, _, err := bindForTest(t, &config.Config{
		Hosts: []string{"tcp://127.0.0.1:0"}, TLS: true,
		TLSCert: filepath.Join(t.TempDir(), "none.pem"), TLSKey: filepath.Join(t.TempDir(), "none-key.pem"),
	})
	if err == nil || !strings.Contains(err.Error(), "load TLS key pair") {
		t.Fatalf("err = %v", err)
	}
}

func TestPickActivated(t *testing.T) {
	files := []activatedFile{{fd: 3, name: "api"}, {fd: 4, name: "api"}, {fd: 5, name: "other"}}
	tests := []struct {
		name      string
		giveFiles []activatedFile
		giveSpec  string
		want      []int
		wantErr   string
	}{
		{name: "all", giveFiles: files, giveSpec: "", want: []int{0, 1, 2}},
		{name: "star", giveFiles: files, giveSpec: "*", want: []int{0, 1, 2}},
		{name: "by number", giveFiles: files, giveSpec: "4", want: []int{1}},
		{name: "by name", giveFiles: files, giveSpec: "api", want: []int{0, 1}},
		{name: "number out of range", giveFiles: files, giveSpec: "9", wantErr: "systemd passed fds 3 to 5 only"},
		{name: "unknown name", giveFiles: files, giveSpec: "nope", wantErr: "no socket of that name"},
		{name: "none passed", giveSpec: "", wantErr: "no sockets were passed by systemd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickActivated(tt.giveFiles, tt.giveSpec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
