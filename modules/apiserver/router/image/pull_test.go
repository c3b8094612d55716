package image

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/distribution"
)

func TestPullReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		giveImage, giveTag string
		want               string
		wantErr            bool
	}{
		{giveImage: "busybox", want: "docker.io/library/busybox:latest"},
		{giveImage: "busybox", giveTag: "1.36", want: "docker.io/library/busybox:1.36"},
		{giveImage: "127.0.0.1:5000/team/app:2", want: "127.0.0.1:5000/team/app:2"},
		{giveImage: "127.0.0.1:5000/team/app", giveTag: d, want: "127.0.0.1:5000/team/app@" + d},
		{giveImage: "app@" + d, want: "docker.io/library/app@" + d},
		{giveImage: "", wantErr: true},
		{giveImage: "UPPER", wantErr: true},
		{giveImage: "app", giveTag: "bad tag", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.giveImage+"+"+tt.giveTag, func(t *testing.T) {
			got, err := pullReference(tt.giveImage, tt.giveTag)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// fakeDistribution records what the routes ask and plays a script.
type fakeDistribution struct {
	pulled, pushed string
	err            error
}

func (f *fakeDistribution) Pull(_ context.Context, o distribution.PullOptions) error {
	f.pulled = o.Ref.String()
	if o.Auth != nil {
		f.pulled += " as " + o.Auth.Username
	}
	o.Progress(jsonstream.Message{Status: "Pulling from library/busybox", ID: "latest"})
	return f.err
}

func (f *fakeDistribution) Push(_ context.Context, o distribution.PushOptions) error {
	f.pushed = o.Ref.String()
	return f.err
}

func TestDistributionRoutes(t *testing.T) {
	tests := []struct {
		name       string
		giveTarget string
		giveAuth   string
		giveErr    error
		wantStatus int
		wantBody   string
		wantPulled string
		wantPushed string
	}{
		{name: "pull", giveTarget: "/images/create?fromImage=busybox&tag=1", giveAuth: "eyJ1c2VybmFtZSI6ImEifQ==", wantStatus: 200,
			wantBody: `"status":"Pulling from library/busybox"`, wantPulled: "docker.io/library/busybox:1 as a"},
		{name: "pull error in the stream", giveTarget: "/images/create?fromImage=busybox", giveErr: errors.New("boom"), wantStatus: 200,
			wantBody: `"errorDetail":{"message":"boom"}`, wantPulled: "docker.io/library/busybox:latest"},
		{name: "bad auth header", giveTarget: "/images/create?fromImage=busybox", giveAuth: "%%%", wantStatus: 400, wantBody: "invalid X-Registry-Auth header"},
		{name: "bad platform", giveTarget: "/images/create?fromImage=busybox&platform=a/b/c/d", wantStatus: 400},
		{name: "push with tag", giveTarget: "/images/127.0.0.1:5000/app/push?tag=2", wantStatus: 200, wantPushed: "127.0.0.1:5000/app:2"},
		{name: "push not found", giveTarget: "/images/app/push", giveErr: errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: app"),
			wantStatus: 404, wantBody: "An image does not exist locally", wantPushed: "docker.io/library/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDistribution{err: tt.giveErr}
			routes, pull := DistributionRoutes(f)
			routes = append(routes, apiserver.Route{Method: http.MethodPost, Path: "/images/create", Handler: apiserver.HandlerFunc(pull)})
			rt, err := apiserver.CompileRoutes(routes)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, tt.giveTarget, nil)
			if tt.giveAuth != "" {
				req.Header.Set("X-Registry-Auth", tt.giveAuth)
			}
			w := httptest.NewRecorder()
			h, vars, ok := rt.Lookup(req.Method, req.URL.Path)
			if !ok {
				t.Fatalf("no route for %s", req.URL.Path)
			}
			if err := h(req.Context(), w, req, vars); err != nil {
				apiserver.WriteError(w, err)
			}
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("%d %s, want %d with %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if f.pulled != tt.wantPulled || f.pushed != tt.wantPushed {
				t.Errorf("pulled %q pushed %q, want %q %q", f.pulled, f.pushed, tt.wantPulled, tt.wantPushed)
			}
		})
	}
}
