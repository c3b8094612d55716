package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"go.podman.io/image/v5/types"
	"go.uber.org/zap"
)

func TestDecodeAuthConfig(t *testing.T) {
	tests := []struct {
		name      string
		give      string
		wantUser  string
		wantPass  string
		wantToken string
		wantErr   bool
	}{
		{name: "empty is anonymous", give: ""},
		{name: "base64url", give: base64.URLEncoding.EncodeToString([]byte(`{"username":"a","password":"p?>"}`)), wantUser: "a", wantPass: "p?>"},
		{name: "unpadded", give: base64.RawURLEncoding.EncodeToString([]byte(`{"username":"bo"}`)), wantUser: "bo"},
		{name: "identity token", give: base64.URLEncoding.EncodeToString([]byte(`{"identitytoken":"tok"}`)), wantToken: "tok"},
		{name: "legacy auth field", give: base64.URLEncoding.EncodeToString([]byte(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:pw")) + `"}`)), wantUser: "u", wantPass: "pw"},
		{name: "not base64", give: "%%%", wantErr: true},
		{name: "not JSON", give: base64.URLEncoding.EncodeToString([]byte("nope")), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ac, err := DecodeAuthConfig(tt.give)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "invalid X-Registry-Auth header: ") {
					t.Fatalf("err %v, want invalid X-Registry-Auth header", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.give == "" {
				if ac != nil {
					t.Fatalf("empty header gave %+v", ac)
				}
				return
			}
			if ac.Username != tt.wantUser || ac.Password != tt.wantPass || ac.IdentityToken != tt.wantToken {
				t.Errorf("got %+v", ac)
			}
		})
	}
}

func TestLoginHost(t *testing.T) {
	tests := []struct {
		give    string
		want    string
		wantErr bool
	}{
		{give: "", want: "docker.io"},
		{give: IndexServer, want: "docker.io"},
		{give: "registry-1.docker.io", want: "docker.io"},
		{give: "127.0.0.1:5000", want: "127.0.0.1:5000"},
		{give: "http://Reg.Example:5000/v2/", want: "reg.example:5000"},
		{give: "ftp://reg.example", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := LoginHost(tt.give)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LoginHost(%q) = %q, %v; want %q", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestIsInsecure(t *testing.T) {
	s, err := NewService(Options{Dir: t.TempDir(), Insecure: []string{"reg.example:5000", "10.1.0.0/16"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "localhost":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "inside.example":
			return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		give string
		want bool
	}{
		{give: "127.0.0.1:5000", want: true}, // 127.0.0.0/8 always
		{give: "127.5.6.7", want: true},
		{give: "localhost:5000", want: true},
		{give: "reg.example:5000", want: true},
		{give: "reg.example:5001", want: false},
		{give: "inside.example", want: true},
		{give: "10.2.0.1:443", want: false},
		{give: "unknown.example", want: false},
		{give: "docker.io", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := s.IsInsecure(context.Background(), tt.give); got != tt.want {
				t.Errorf("IsInsecure(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
	if got := strings.Join(s.InsecureRegistries(), ","); got != "127.0.0.0/8,10.1.0.0/16,reg.example:5000" {
		t.Errorf("InsecureRegistries() = %s", got)
	}
}

func TestMirrorsAndReload(t *testing.T) {
	dir := t.TempDir()
	s, err := NewService(Options{Dir: dir, Mirrors: []string{"https://mirror.example", "http://127.0.0.1:5001"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "registries.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`prefix = "docker.io"`, "location = \"mirror.example\"\ninsecure = false", "location = \"127.0.0.1:5001\"\ninsecure = true"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("registries.conf lacks %q:\n%s", want, conf)
		}
	}
	sys := s.SystemContext(context.Background(), "docker.io", &AuthConfig{Username: "u", Password: "p", RegistryToken: "rt"})
	if sys.DockerInsecureSkipTLSVerify != types.OptionalBoolUndefined || sys.DockerAuthConfig.Username != "u" || sys.DockerBearerRegistryToken != "rt" {
		t.Errorf("docker.io context: %+v", sys)
	}
	if sys.SystemRegistriesConfPath != filepath.Join(dir, "registries.conf") || !strings.HasPrefix(sys.AuthFilePath, dir) {
		t.Errorf("context reads host files: %+v", sys)
	}
	if sys := s.SystemContext(context.Background(), "127.0.0.1:5000", nil); sys.DockerInsecureSkipTLSVerify != types.OptionalBoolTrue || sys.DockerAuthConfig == nil {
		t.Errorf("loopback context: %+v", sys)
	}

	if err := s.Reload(nil, []string{"bad/entry x"}); err == nil {
		t.Error("Reload accepted a bad insecure registry")
	}
	if len(s.Mirrors()) != 2 {
		t.Errorf("a failed reload changed the mirrors: %v", s.Mirrors())
	}
	if err := s.Reload(nil, nil); err != nil {
		t.Fatal(err)
	}
	conf, _ = os.ReadFile(filepath.Join(dir, "registries.conf"))
	if len(s.Mirrors()) != 0 || strings.Contains(string(conf), "mirror") {
		t.Errorf("mirrors after reload: %v\n%s", s.Mirrors(), conf)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left %s", dir)
	}
}

func TestLoginUnreachable(t *testing.T) {
	s, err := NewService(Options{Dir: t.TempDir()}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// Port 1 on loopback: nothing listens there.
	_, err = s.Login(context.Background(), AuthConfig{Username: "u", Password: "p", ServerAddress: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("login to a closed port: %v, want an error naming it", err)
	}
}
