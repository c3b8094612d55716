package auth

import (
	"context"
	"net/http"

	registrytypes "github.com/moby/moby/api/types/registry"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/registry"
)

// Backend is what POST /auth uses of the registry service.
type Backend interface {
	// Login checks credentials against a registry and returns the
	// identity token to hand back ("" for none).
	Login(ctx context.Context, ac registry.AuthConfig) (string, error)
}

var _ Backend = (*registry.Service)(nil)

// New is stage 5 auth: the POST /auth route over the registry service.
func New(s *registry.Service) apiserver.Routes {
	return apiserver.Routes{Routes: Routes(s)}
}

// Routes returns the POST /auth route over b.
func Routes(b Backend) []apiserver.Route {
	return []apiserver.Route{{Method: http.MethodPost, Path: "/auth", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
		return login(ctx, b, w, r)
	}}}
}

// login is POST /auth: the body is an AuthConfig (username, password,
// serveraddress; Docker Hub when serveraddress is empty). Success is 200
// {"Status":"Login Succeeded","IdentityToken":…}; wrong credentials are
// 401 with the registry's reason, as dockerd; a malformed body is 400.
func login(ctx context.Context, b Backend, w http.ResponseWriter, r *http.Request) error {
	var ac registry.AuthConfig
	if err := apiserver.ReadJSON(r, &ac); err != nil {
		return err
	}
	token, err := b.Login(ctx, ac)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, registrytypes.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
}
