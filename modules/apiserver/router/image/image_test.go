package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"go.podman.io/storage/pkg/reexec"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/internal/testimage"
	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/storage"
)

func TestMain(m *testing.M) {
	// The store unpacks layers in a chrooted re-exec of this binary.
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// newServer serves the image routes over an image service on a vfs store
// in a temporary directory, mapping handler errors as the API server does.
func newServer(t *testing.T) (*httptest.Server, *storage.Images) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the store needs root (chown, chroot)")
	}
	dir := t.TempDir()
	st, err := storage.OpenStore(storage.StoreOptions{Root: filepath.Join(dir, "storage"), RunRoot: filepath.Join(dir, "run"), Driver: "vfs"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	db, err := storage.NewImageDB(st)
	if err != nil {
		t.Fatal(err)
	}
	refs := storage.NewReferences(db)
	if _, err := storage.MigrateDataRoot(dir, refs, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	svc := storage.NewImageService(db, refs, nil, zap.NewNop())
	rt, err := apiserver.CompileRoutes(Routes(svc, nil))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, vars, ok := rt.Lookup(r.Method, r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if err := h(r.Context(), w, r, vars); err != nil {
			apiserver.WriteError(w, err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, svc
}

func do(t *testing.T, srv *httptest.Server, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
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
	return resp.StatusCode, b
}

// messages decodes a JSON progress stream.
func messages(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestImageRoutes(t *testing.T) {
	srv, _ := newServer(t)
	img := testimage.BusyboxImage(t, "127.0.0.1:5000/team/app:1")

	code, body := do(t, srv, "POST", "/images/load?quiet=0", testimage.Gzip(t, testimage.DockerArchive(t, img)))
	if code != 200 || !strings.Contains(string(body), `"stream":"Loaded image: 127.0.0.1:5000/team/app:1\n"`) {
		t.Fatalf("load: %d %s", code, body)
	}
	if !strings.Contains(string(body), `"status":"Loading layer"`) {
		t.Errorf("load without quiet streamed no layer progress: %s", body)
	}

	changes := url.Values{"repo": {"imported"}, "tag": {"v1"}, "fromSrc": {"-"}, "changes": {`CMD ["sh"]`, "ENV A=b"}}
	code, body = do(t, srv, "POST", "/images/create?"+changes.Encode(), testimage.RootFS(t))
	msgs := messages(t, body)
	if code != 200 || len(msgs) != 1 || !strings.HasPrefix(msgs[0]["status"].(string), "sha256:") {
		t.Fatalf("import: %d %s", code, body)
	}
	importedID := msgs[0]["status"].(string)

	tests := []struct {
		name       string
		giveMethod string
		givePath   string
		giveBody   []byte
		wantCode   int
		wantBody   string
	}{
		{name: "list", giveMethod: "GET", givePath: "/images/json", wantCode: 200, wantBody: `"RepoTags":["imported:v1"]`},
		{name: "list filter", giveMethod: "GET", givePath: "/images/json?filters=" + url.QueryEscape(`{"reference":{"127.0.0.1:5000/team/app":true}}`), wantCode: 200, wantBody: `"RepoTags":["127.0.0.1:5000/team/app:1"]`},
		{name: "list legacy filter form", giveMethod: "GET", givePath: "/images/json?filters=" + url.QueryEscape(`{"dangling":["true"]}`), wantCode: 200, wantBody: `[]`},
		{name: "list bad filter", giveMethod: "GET", givePath: "/images/json?filters=" + url.QueryEscape(`{"colour":{"red":true}}`), wantCode: 400, wantBody: `invalid filter 'colour'`},
		{name: "inspect name with registry port and slashes", giveMethod: "GET", givePath: "/images/127.0.0.1:5000/team/app:1/json", wantCode: 200, wantBody: `"Id":"` + img.ID() + `"`},
		{name: "inspect by short ID", giveMethod: "GET", givePath: "/images/" + img.ID()[7:19] + "/json", wantCode: 200, wantBody: `"RepoTags":["127.0.0.1:5000/team/app:1"]`},
		{name: "inspect unknown", giveMethod: "GET", givePath: "/images/nosuch/json", wantCode: 404, wantBody: `{"message":"No such image: nosuch"}`},
		{name: "inspect invalid reference", giveMethod: "GET", givePath: "/images/Bad:Name/json", wantCode: 400, wantBody: `invalid reference format`},
		{name: "history", giveMethod: "GET", givePath: "/images/imported:v1/history", wantCode: 200, wantBody: `"Comment":"Imported from -"`},
		{name: "tag", giveMethod: "POST", givePath: "/images/imported:v1/tag?repo=localhost:5000/x/y&tag=2", wantCode: 201},
		{name: "tag invalid", giveMethod: "POST", givePath: "/images/imported:v1/tag?repo=UPPER", wantCode: 400, wantBody: `invalid reference format`},
		{name: "tag unknown", giveMethod: "POST", givePath: "/images/nosuch/tag?repo=a", wantCode: 404, wantBody: `No such image: nosuch`},
		{name: "load garbage", giveMethod: "POST", givePath: "/images/load", giveBody: []byte("not an archive at all"), wantCode: 400, wantBody: `invalid archive`},
		{name: "import bad change", giveMethod: "POST", givePath: "/images/create?fromSrc=-&changes=RUN+x", giveBody: testimage.RootFS(t), wantCode: 400, wantBody: `run is not a valid change command`},
		{name: "import truncated", giveMethod: "POST", givePath: "/images/create?fromSrc=-", giveBody: testimage.RootFS(t)[:10000], wantCode: 400, wantBody: `truncated`},
		{name: "import bad repo", giveMethod: "POST", givePath: "/images/create?fromSrc=-&repo=a:b:c", giveBody: testimage.RootFS(t), wantCode: 400, wantBody: `invalid reference format`},
		{name: "save unknown", giveMethod: "GET", givePath: "/images/get?names=nosuch", wantCode: 404, wantBody: `No such image: nosuch`},
		{name: "remove unknown", giveMethod: "DELETE", givePath: "/images/nosuch", wantCode: 404, wantBody: `No such image: nosuch`},
		{name: "untag", giveMethod: "DELETE", givePath: "/images/localhost:5000/x/y:2", wantCode: 200, wantBody: `[{"Untagged":"localhost:5000/x/y:2"}]`},
		{name: "prune bad filter", giveMethod: "POST", givePath: "/images/prune?filters=" + url.QueryEscape(`{"x":{"y":true}}`), wantCode: 400, wantBody: `invalid filter 'x'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, srv, tt.giveMethod, tt.givePath, tt.giveBody)
			if code != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s: %d %s, want %d with %s", tt.giveMethod, tt.givePath, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}

	// Save both images, remove them, load the archive: same IDs, same tags.
	code, archive := do(t, srv, "GET", "/images/get?names=imported:v1&names=127.0.0.1:5000/team/app:1", nil)
	if code != 200 {
		t.Fatalf("save: %d %s", code, archive)
	}
	for _, name := range []string{"imported:v1", "127.0.0.1:5000/team/app:1"} {
		code, body := do(t, srv, "DELETE", "/images/"+name, nil)
		if code != 200 || !strings.Contains(string(body), `"Deleted"`) {
			t.Fatalf("remove %s: %d %s", name, code, body)
		}
	}
	code, body = do(t, srv, "POST", "/images/load", archive)
	if code != 200 || !strings.Contains(string(body), "Loaded image: imported:v1") || !strings.Contains(string(body), "Loaded image: 127.0.0.1:5000/team/app:1") {
		t.Fatalf("load of saved archive: %d %s", code, body)
	}
	code, body = do(t, srv, "GET", "/images/json", nil)
	var list []image.Summary
	if err := json.Unmarshal(body, &list); err != nil || code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	ids := map[string]bool{}
	for _, s := range list {
		ids[s.ID] = true
	}
	if len(list) != 2 || !ids[img.ID()] || !ids[importedID] {
		t.Errorf("after save and load: %+v, want %s and %s", list, img.ID(), importedID)
	}

	code, body = do(t, srv, "POST", "/images/prune?filters="+url.QueryEscape(`{"dangling":{"false":true}}`), nil)
	var rep image.PruneReport
	if err := json.Unmarshal(body, &rep); err != nil || code != 200 || rep.SpaceReclaimed == 0 {
		t.Errorf("prune: %d %s", code, body)
	}
}
