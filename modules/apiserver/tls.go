package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/wharfd/wharfd/modules/config"
)

// ServerTLSConfig returns the TLS configuration of tcp:// hosts, as
// dockerd's: TLS 1.2 or newer, the server certificate from --tlscert and
// --tlskey; with --tlsverify a client certificate signed by --tlscacert is
// required, and with --tls alone and a CA one is verified when the client
// presents it. Errors name the file that could not be used.
func ServerTLSConfig(c *config.Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("load TLS key pair (cert %q, key %q): %v", c.TLSCert, c.TLSKey, err))
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
	}
	if c.TLSCACert != "" {
		pem, err := os.ReadFile(c.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("TLS CA %q: no PEM certificate in it", c.TLSCACert))
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	if c.TLSVerify {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
