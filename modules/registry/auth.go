package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/containerd/errdefs"
	registrytypes "github.com/moby/moby/api/types/registry"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
)

// AuthConfig is a client's credentials for one registry, as the Engine
// API carries them (the X-Registry-Auth header, POST /auth's body):
// username and password, or an identity token, or a registry (bearer)
// token.
type AuthConfig = registrytypes.AuthConfig

// AuthHeader is the request header that carries AuthConfig.
const AuthHeader = registrytypes.AuthHeader

// DecodeAuthConfig decodes an X-Registry-Auth header: base64url (padded
// or not; standard base64 is accepted too) of the JSON AuthConfig. An
// empty header is anonymous (nil, no error). The legacy "auth" field
// (base64 of "user:password") fills in a missing username and password.
// Anything else malformed is errdefs.ErrInvalidArgument, "invalid
// X-Registry-Auth header: …", as dockerd.
func DecodeAuthConfig(header string) (*AuthConfig, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return nil, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(header); err == nil {
			break
		}
	}
	if err != nil {
		return nil, invalidAuth(err)
	}
	var ac AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return nil, invalidAuth(err)
	}
	if err := fillFromAuth(&ac); err != nil {
		return nil, invalidAuth(err)
	}
	return &ac, nil
}

// fillFromAuth sets username and password from the legacy "auth" field
// when they are empty.
func fillFromAuth(ac *AuthConfig) error {
	if ac.Auth == "" || ac.Username != "" || ac.Password != "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(ac.Auth)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		return errors.New("auth: want base64 of user:password")
	}
	ac.Username, ac.Password = user, pass
	return nil
}

func invalidAuth(err error) error {
	return errdefs.ErrInvalidArgument.WithMessage("invalid X-Registry-Auth header: " + err.Error())
}

// LoginHost returns the registry host a server address names, as dockerd
// reads POST /auth's serveraddress: empty, Docker Hub's index or its
// registry host are docker.io; a URL gives its host; a bare
// host[:port][/path] its host[:port]. A scheme other than http and https
// is errdefs.ErrInvalidArgument.
func LoginHost(serverAddress string) (string, error) {
	if serverAddress == "" {
		return IndexName, nil
	}
	addr := serverAddress
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid server address: unable to parse: %v", err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
			"invalid server address %q: unsupported URL scheme %q: must be \"http\" or \"https\"", serverAddress, u.Scheme))
	}
	host := strings.ToLower(u.Host)
	switch host {
	case "":
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid server address %q: no host", serverAddress))
	case IndexHostname, DefaultRegistryHost, IndexName:
		return IndexName, nil
	}
	return host, nil
}

// Login checks ac's username and password against the registry its
// server address names (POST /auth), through go.podman.io/image's
// docker.CheckAuth, which follows the registry's challenge: basic auth or
// a bearer token from its token service. Mirrors are never asked. It
// returns the identity token to hand back, always "" here (the registry
// is asked for none). Wrong credentials are errdefs.ErrUnauthenticated
// (401) worded as dockerd's: `Get "https://host/v2/": unauthorized: …`;
// an unreachable registry is an error naming it.
func (s *Service) Login(ctx context.Context, ac AuthConfig) (string, error) {
	if err := fillFromAuth(&ac); err != nil {
		return "", errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	host, err := LoginHost(ac.ServerAddress)
	if err != nil {
		return "", err
	}
	sys := s.SystemContext(ctx, host, nil)
	err = docker.CheckAuth(ctx, sys, ac.Username, ac.Password, host)
	if err == nil {
		return "", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		scheme := "https"
		if sys.DockerInsecureSkipTLSVerify == types.OptionalBoolTrue {
			scheme = "http" // the last endpoint dockerd tries for an insecure registry
		}
		endpoint := scheme + "://" + registryHost(host) + "/v2/"
		return "", errdefs.ErrUnauthenticated.WithMessage(fmt.Sprintf("Get %q: unauthorized: %s", endpoint, unauthorizedDetail(unauth.Err)))
	}
	return "", fmt.Errorf("login to %s: %w", registryHost(host), err)
}

// registryHost is the host that serves host's registry API.
func registryHost(host string) string {
	if host == IndexName {
		return DefaultRegistryHost
	}
	return host
}

// unauthorizedDetail is the registry's reason for a 401, without the
// "unauthorized: " prefix the caller adds.
func unauthorizedDetail(err error) string {
	if err == nil {
		return "authentication required"
	}
	msg := strings.TrimPrefix(err.Error(), "unauthorized: ")
	if msg == "" {
		return "authentication required"
	}
	return msg
}
