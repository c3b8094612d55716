package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wharfd/wharfd/modules/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testRoutes are the routes of the handler tests, the panicking one
// included: it exists only here.
func testRoutes() []Route {
	return []Route{
		{Method: "GET", Path: "/version", Handler: func(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
			return WriteJSON(w, http.StatusOK, map[string]string{"negotiated": APIVersion(ctx)})
		}},
		{Method: "POST", Path: "/containers/create", Handler: func(_ context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			var body struct{ Image string }
			if err := ReadJSON(r, &body); err != nil {
				return err
			}
			return WriteJSON(w, http.StatusCreated, map[string]string{"Image": body.Image})
		}},
		{Method: "GET", Path: "/containers/{name}/json", Handler: func(_ context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
			return WriteJSON(w, http.StatusOK, vars)
		}},
		{Method: "GET", Path: "/panic", Handler: func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error {
			var m map[string]int
			m["boom"]++ // a real nil-map panic
			return nil
		}},
	}
}

func newTestServer(t *testing.T, cfg *config.Config, log *zap.Logger) *httptest.Server {
	t.Helper()
	if cfg == nil {
		cfg = &config.Config{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	mw, err := NewMiddlewares(MiddlewaresParams{Config: cfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := CompileRoutes(testRoutes())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(rt, mw, log))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, srv *httptest.Server, method, path, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	srv := newTestServer(t, nil, nil)
	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveType   string
		giveBody   string
		wantStatus int
		wantBody   string // exact JSON-trimmed body, or "" to skip
	}{
		{name: "unversioned is newest", giveMethod: "GET", givePath: "/version", wantStatus: 200, wantBody: `{"negotiated":"1.56"}`},
		{name: "versioned", giveMethod: "GET", givePath: "/v1.45/version", wantStatus: 200, wantBody: `{"negotiated":"1.45"}`},
		{name: "minimum", giveMethod: "GET", givePath: "/v1.40/version", wantStatus: 200, wantBody: `{"negotiated":"1.40"}`},
		{name: "too new", giveMethod: "GET", givePath: "/v9.99/version", wantStatus: 400, wantBody: `{"message":"client version 9.99 is too new. Maximum supported API version is 1.56"}`},
		{name: "too old", giveMethod: "GET", givePath: "/v1.11/version", wantStatus: 400, wantBody: `{"message":"client version 1.11 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version"}`},
		{name: "unknown path", giveMethod: "GET", givePath: "/nosuchthing", wantStatus: 404, wantBody: `{"message":"page not found"}`},
		{name: "unknown versioned path", giveMethod: "GET", givePath: "/v1.45/containers/abc/start", wantStatus: 404, wantBody: `{"message":"page not found"}`},
		{name: "wrong method", giveMethod: "DELETE", givePath: "/version", wantStatus: 404, wantBody: `{"message":"page not found"}`},
		{name: "vars", giveMethod: "GET", givePath: "/v1.45/containers/a/b/json", wantStatus: 200, wantBody: `{"name":"a/b"}`},
		{name: "json body", giveMethod: "POST", givePath: "/containers/create", giveType: "application/json", giveBody: `{"Image":"busybox"}`, wantStatus: 201, wantBody: `{"Image":"busybox"}`},
		{name: "text/plain body", giveMethod: "POST", givePath: "/containers/create", giveType: "text/plain", giveBody: `{"Image":"busybox"}`, wantStatus: 400, wantBody: `{"message":"unsupported Content-Type header (text/plain): must be 'application/json'"}`},
		{name: "malformed body", giveMethod: "POST", givePath: "/containers/create", giveType: "application/json", giveBody: `{"Image":`, wantStatus: 400, wantBody: `{"message":"invalid JSON: got EOF while reading request body"}`},
		{name: "options preflight", giveMethod: "OPTIONS", givePath: "/v1.45/containers/create", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.giveMethod, tt.givePath, tt.giveType, tt.giveBody)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantBody != "" {
				if strings.TrimSpace(body) != tt.wantBody {
					t.Errorf("body %s, want %s", body, tt.wantBody)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			}
			for k, want := range map[string]string{"Api-Version": "1.56", "Ostype": "linux", "Docker-Experimental": "false"} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if s := resp.Header.Get("Server"); !strings.HasPrefix(s, "wharfd/") || !strings.HasSuffix(s, " (linux)") {
				t.Errorf("Server = %q, want wharfd/<version> (linux)", s)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Error("CORS header sent without --api-cors-header")
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	srv := newTestServer(t, nil, zap.New(core))
	resp, body := do(t, srv, "GET", "/panic", "", "")
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	var e ErrorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Message, "assignment to entry in nil map") {
		t.Errorf("body %s: want a message naming the panic", body)
	}
	if logs.FilterMessage("api handler panicked").Len() != 1 {
		t.Errorf("panic not logged: %v", logs.All())
	}
	// The server keeps serving.
	if resp, _ := do(t, srv, "GET", "/version", "", ""); resp.StatusCode != 200 {
		t.Errorf("next request: status %d, want 200", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	srv := newTestServer(t, &config.Config{CORSHeaders: "https://ui.example"}, zap.New(core))
	if logs.Len() != 1 || !strings.Contains(logs.All()[0].Message, "api-cors-header") {
		t.Errorf("no boot warning: %v", logs.All())
	}
	for _, method := range []string{"OPTIONS", "GET"} {
		t.Run(method, func(t *testing.T) {
			resp, _ := do(t, srv, method, "/v1.45/version", "", "")
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://ui.example" {
				t.Errorf("Allow-Origin %q", got)
			}
			if got := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "OPTIONS") {
				t.Errorf("Allow-Methods %q", got)
			}
		})
	}
}

func TestMinAPIVersion(t *testing.T) {
	srv := newTestServer(t, &config.Config{MinAPIVersion: "1.24"}, nil)
	if resp, body := do(t, srv, "GET", "/v1.24/version", "", ""); resp.StatusCode != 200 {
		t.Errorf("1.24 with min 1.24: %d %s", resp.StatusCode, body)
	}
	_, body := do(t, srv, "GET", "/v1.23/version", "", "")
	if !strings.Contains(body, "Minimum supported API version is 1.24") {
		t.Errorf("body %s", body)
	}
	if _, err := NewMiddlewares(MiddlewaresParams{Config: &config.Config{MinAPIVersion: "1.12"}, Logger: zap.NewNop()}); err == nil {
		t.Error("min-api-version 1.12 accepted")
	}
}

func TestDebugLogMasksSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	srv := newTestServer(t, nil, zap.New(core))
	do(t, srv, "POST", "/containers/create", "application/json", `{"Image":"busybox","Auth":{"password":"hunter2","Secret":"s"}}`)
	entries := logs.FilterMessage("api request").All()
	if len(entries) != 1 {
		t.Fatalf("%d request log entries, want 1", len(entries))
	}
	f := entries[0].ContextMap()
	if f["method"] != "POST" || f["path"] != "/containers/create" || f["status"] != int64(201) {
		t.Errorf("fields %v", f)
	}
	if _, ok := f["duration"]; !ok {
		t.Error("no duration")
	}
	form, _ := f["form_data"].(string)
	if !strings.Contains(form, "busybox") || strings.Contains(form, "hunter2") || strings.Contains(form, `"s"`) {
		t.Errorf("form_data %q: want the body with secrets masked", form)
	}
}

func TestJSONStream(t *testing.T) {
	rec := httptest.NewRecorder()
	s := NewJSONStream(rec)
	if err := s.Progress("abc", "Downloading", 10, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Status("", "Loaded image: busybox:latest"); err != nil {
		t.Fatal(err)
	}
	// A stream that ended well: nothing written, nil back.
	if err := s.Error(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Error(io.ErrUnexpectedEOF); err != nil {
		t.Fatal(err)
	}
	want := `{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"abc"}
{"status":"Loaded image: busybox:latest"}
{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}
`
	if rec.Body.String() != want {
		t.Errorf("stream:\n%s\nwant:\n%s", rec.Body.String(), want)
	}
	if !rec.Flushed || rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("flushed %v, code %d, type %q", rec.Flushed, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Before anything is written, Error hands the error back for a
	// proper status.
	if err := NewJSONStream(httptest.NewRecorder()).Error(io.EOF); err != io.EOF { //nolint:errorlint // identity is the point
		t.Errorf("Error before start = %v, want io.EOF", err)
	}
}
