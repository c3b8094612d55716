package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage/pkg/reexec"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/internal/testimage"
)

func TestMain(m *testing.M) {
	// The store unpacks layers in a chrooted re-exec of this binary.
	if reexec.Init() {
		return
	}
	code := m.Run()
	if listStore.stop != nil {
		if err := listStore.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "shut down the list benchmark's store:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// env is a store on vfs in a temporary directory with the image service
// over it.
type env struct {
	dir    string
	store  *Store
	images *Images
	events *fakeEvents
}

type fakeEvent struct{ action, id, name string }

type fakeEvents struct{ got []fakeEvent }

func (f *fakeEvents) Log(_ events.Type, action events.Action, actor events.Actor) {
	f.got = append(f.got, fakeEvent{string(action), actor.ID, actor.Attributes["name"]})
}

func (f *fakeEvents) actions() string {
	var s []string
	for _, e := range f.got {
		s = append(s, e.action)
	}
	return strings.Join(s, ",")
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the store needs root (chown, chroot)")
	}
}

// newEnv opens a vfs store in dir (a new temporary directory when "") and
// shuts it down at cleanup, checking that no mount under dir remains.
func newEnv(t testing.TB, dir string) *env {
	t.Helper()
	requireRoot(t)
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := OpenStore(StoreOptions{Root: filepath.Join(dir, "root", "storage"), RunRoot: filepath.Join(dir, "exec", "storage"), Driver: "vfs"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Error(err)
		}
		assertNoMounts(t, dir)
	})
	db, err := NewImageDB(s)
	if err != nil {
		t.Fatal(err)
	}
	refs := NewReferences(db)
	if _, err := MigrateDataRoot(filepath.Join(dir, "root"), refs, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	ev := &fakeEvents{}
	return &env{dir: dir, store: s, events: ev, images: NewImageService(db, refs, ev, zap.NewNop())}
}

func assertNoMounts(t testing.TB, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("mount left behind: %s", line)
		}
	}
}

// counts returns how many images and layers the store holds and how many
// files its temporary directory has.
func (e *env) counts(t testing.TB) (images, layers, tmpFiles int) {
	t.Helper()
	imgs, err := e.store.cs.Images()
	if err != nil {
		t.Fatal(err)
	}
	ls, err := e.store.cs.Layers()
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.ReadDir(e.store.tmp)
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs), len(ls), len(tmp)
}

func (e *env) load(t testing.TB, archive []byte) []string {
	t.Helper()
	var lines []string
	err := e.images.Load(context.Background(), bytes.NewReader(archive), true, func(p Progress) {
		if p.Message != "" {
			lines = append(lines, strings.TrimSuffix(p.Message, "\n"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestLoadKeepsConfigDigestAsID(t *testing.T) {
	e := newEnv(t, "")
	img := testimage.BusyboxImage(t, "busybox:latest")
	tests := []struct {
		name     string
		give     []byte
		wantLine string
	}{
		{name: "docker-archive", give: testimage.DockerArchive(t, img), wantLine: "Loaded image: busybox:latest"},
		{name: "gzip docker-archive", give: testimage.Gzip(t, testimage.DockerArchive(t, img)), wantLine: "Loaded image: busybox:latest"},
		{name: "oci archive with a full name", give: testimage.OCIArchive(t, img, "docker.io/library/ocibox:1"), wantLine: "Loaded image: ocibox:1"},
		{name: "oci archive with a bare tag", give: testimage.OCIArchive(t, img, "latest"), wantLine: "Loaded image ID: " + img.ID()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := e.load(t, tt.give)
			if len(lines) != 1 || lines[0] != tt.wantLine {
				t.Errorf("load said %q, want %q", lines, tt.wantLine)
			}
			got, err := e.images.Resolve(context.Background(), img.ID())
			if err != nil {
				t.Fatal(err)
			}
			if got.FullID() != img.ID() {
				t.Errorf("ID %s, want the config digest %s", got.FullID(), img.ID())
			}
		})
	}
	sums, err := e.images.List(context.Background(), ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || strings.Join(sums[0].RepoTags, ",") != "busybox:latest,ocibox:1" {
		t.Errorf("list %+v, want one image tagged busybox:latest and ocibox:1", sums)
	}
	if sums[0].Size < int64(len(testimage.Busybox(t))) {
		t.Errorf("size %d is less than busybox itself", sums[0].Size)
	}
}

func TestLoadBadArchiveLeavesNothing(t *testing.T) {
	e := newEnv(t, "")
	img := testimage.BusyboxImage(t, "busybox:latest")
	good := testimage.DockerArchive(t, img)
	gz := testimage.Gzip(t, good)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	layerName := strings.TrimPrefix(img.ID(), "sha256:")
	tests := []struct {
		name    string
		give    []byte
		wantErr string
	}{
		{name: "not a tar", give: []byte(strings.Repeat("this is not a tar archive\n", 100)), wantErr: "invalid archive"},
		{name: "empty", give: nil, wantErr: "invalid archive"},
		{name: "truncated", give: good[:len(good)/2], wantErr: "truncated"},
		{name: "corrupt gzip", give: corrupt, wantErr: "invalid archive"},
		{name: "truncated gzip", give: gz[:len(gz)-100], wantErr: "invalid archive"},
		{name: "no manifest", give: testimage.Tar(t, testimage.Entry{Name: "hello", Body: []byte("hi")}), wantErr: "no manifest.json"},
		{name: "manifest names a missing layer", give: testimage.RawDockerArchive(t,
			[]testimage.ManifestItem{{Config: layerName + ".json", RepoTags: []string{"broken:1"}, Layers: []string{"missing/layer.tar"}}},
			map[string][]byte{layerName + ".json": img.Config}), wantErr: `manifest.json names "missing/layer.tar", which is not in the archive`},
		{name: "second layer missing", give: testimage.RawDockerArchive(t,
			[]testimage.ManifestItem{{Config: "c.json", RepoTags: []string{"broken:2"}, Layers: []string{"l1/layer.tar", "l2/layer.tar"}}},
			map[string][]byte{"c.json": testimage.NewImage(t, testimage.Config{}, nil, img.Layers[0], []byte("x")).Config, "l1/layer.tar": img.Layers[0]}), wantErr: `"l2/layer.tar"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.images.Load(context.Background(), bytes.NewReader(tt.give), false, nil)
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("load: %v, want an invalid-argument error containing %q", err, tt.wantErr)
			}
			if imgs, layers, tmp := e.counts(t); imgs+layers+tmp != 0 {
				t.Errorf("left behind %d images, %d layers, %d temporary files", imgs, layers, tmp)
			}
		})
	}
}

func TestImportNeverWritesOutsideTheLayer(t *testing.T) {
	e := newEnv(t, "")
	outside := t.TempDir() // a directory an archive aims at
	tests := []struct {
		name string
		give []testimage.Entry
	}{
		{name: "dot-dot path", give: []testimage.Entry{{Name: "../../../../../../.." + outside + "/dotdot", Body: []byte("x")}}},
		{name: "absolute path", give: []testimage.Entry{{Name: outside + "/absolute", Body: []byte("x")}}},
		{name: "write through absolute symlink", give: []testimage.Entry{
			{Name: "escape", Type: '2', Linkname: outside},
			{Name: "escape/through-symlink", Body: []byte("x")},
		}},
		{name: "write through relative symlink", give: []testimage.Entry{
			{Name: "up", Type: '2', Linkname: "../../../../../../../../../.." + outside},
			{Name: "up/through-relative", Body: []byte("x")},
		}},
		{name: "hard link outside", give: []testimage.Entry{
			{Name: "hard", Type: '1', Linkname: "../../../../../../../../.." + outside + "/target"},
		}},
	}
	if err := os.WriteFile(filepath.Join(outside, "target"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.images.Import(context.Background(), bytes.NewReader(testimage.Tar(t, tt.give...)), ImportOptions{Message: "crafted"})
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Errorf("import: %v, want success or an invalid-argument error", err)
			}
			entries, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Errorf("the archive wrote outside the layer: %v", entries)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "keep" {
				t.Errorf("target outside changed to %q", b)
			}
		})
	}
}

func TestImportWithChanges(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	ref, err := ParseNamed("myrepo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.images.Import(ctx, bytes.NewReader(testimage.Gzip(t, testimage.RootFS(t))), ImportOptions{
		Ref: ref, Message: "Imported from -",
		Changes: []string{`CMD ["sh","-c","echo hi"]`, "ENV A=1 B=\"two words\"", "EXPOSE 80 53/udp", "LABEL team=core",
			"USER nobody", "VOLUME /data", "WORKDIR /srv", "WORKDIR app"},
	})
	if err != nil {
		t.Fatal(err)
	}
	insp, err := e.images.Inspect(ctx, "myrepo/app:1")
	if err != nil {
		t.Fatal(err)
	}
	c := insp.Config
	checks := []struct{ name, got, want string }{
		{"id", insp.ID, id},
		{"cmd", strings.Join(c.Cmd, " "), "sh -c echo hi"},
		{"env", strings.Join(c.Env, ";"), "A=1;B=two words"},
		{"label", c.Labels["team"], "core"},
		{"user", c.User, "nobody"},
		{"workdir", c.WorkingDir, "/srv/app"},
		{"comment", insp.Comment, "Imported from -"},
		{"os", insp.Os, "linux"},
		{"tags", strings.Join(insp.RepoTags, ","), "myrepo/app:1"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	hist, err := e.images.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Comment != "Imported from -" || hist[0].ID != id || hist[0].Size == 0 {
		t.Errorf("history %+v", hist)
	}
	if got := e.events.actions(); got != "tag,import" {
		t.Errorf("events %s, want tag,import", got)
	}
	// The same tar again is the same layer, and a new image.
	if _, err := e.images.Import(ctx, bytes.NewReader(testimage.RootFS(t)), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if imgs, layers, tmp := e.counts(t); imgs != 2 || layers != 1 || tmp != 0 {
		t.Errorf("%d images, %d layers, %d temporary files; want 2, 1, 0", imgs, layers, tmp)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	e := newEnv(t, "")
	tests := []struct {
		name     string
		giveBody []byte
		giveOpts ImportOptions
		wantErr  string
	}{
		{name: "bad change", giveBody: testimage.RootFS(t), giveOpts: ImportOptions{Changes: []string{"RUN rm -rf /"}}, wantErr: "run is not a valid change command"},
		{name: "bad port", giveBody: testimage.RootFS(t), giveOpts: ImportOptions{Changes: []string{"EXPOSE http"}}, wantErr: "invalid containerPort"},
		{name: "windows", giveBody: testimage.RootFS(t), giveOpts: ImportOptions{Platform: &platformWindows}, wantErr: "operating system is not supported"},
		{name: "not a tar", giveBody: []byte(strings.Repeat("garbage ", 200)), wantErr: "invalid archive"},
		{name: "truncated", giveBody: testimage.RootFS(t)[:50000], wantErr: "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.images.Import(context.Background(), bytes.NewReader(tt.giveBody), tt.giveOpts)
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("import: %v, want invalid argument %q", err, tt.wantErr)
			}
			if imgs, layers, tmp := e.counts(t); imgs+layers+tmp != 0 {
				t.Errorf("left behind %d images, %d layers, %d temporary files", imgs, layers, tmp)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	img := testimage.BusyboxImage(t, "busybox:latest", "127.0.0.1:5000/team/app:1")
	e.load(t, testimage.DockerArchive(t, img))
	hex := strings.TrimPrefix(img.ID(), "sha256:")
	tests := []struct {
		give    string
		wantErr string
	}{
		{give: "busybox"},
		{give: "busybox:latest"},
		{give: "docker.io/library/busybox"},
		{give: "127.0.0.1:5000/team/app:1"},
		{give: img.ID()},
		{give: hex},
		{give: hex[:12]},
		{give: "busybox:2", wantErr: "No such image: busybox:2"},
		{give: "nosuch", wantErr: "No such image: nosuch"},
		{give: "BadName", wantErr: "invalid reference format"},
		{give: "sha256:" + strings.Repeat("0", 64), wantErr: "No such image: sha256:"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := e.images.Resolve(ctx, tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.HasPrefix(tt.wantErr, "No such") && !errdefs.IsNotFound(err) {
					t.Errorf("%v is not a not-found error", err)
				}
				if strings.HasPrefix(tt.wantErr, "invalid") && !errdefs.IsInvalidArgument(err) {
					t.Errorf("%v is not an invalid-argument error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.FullID() != img.ID() {
				t.Errorf("resolved to %s", got.FullID())
			}
		})
	}
}

func TestTagAndDelete(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	img := testimage.BusyboxImage(t, "busybox:latest")
	e.load(t, testimage.DockerArchive(t, img))
	ref, _ := ParseNamed("other/name:v1")
	if err := e.images.Tag(ctx, "busybox", ref); err != nil {
		t.Fatal(err)
	}
	// Two repositories: deleting by ID needs force.
	_, err := e.images.Delete(ctx, img.ID()[7:19], false, true)
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "image is referenced in multiple repositories") {
		t.Fatalf("delete by ID: %v, want the multiple-repositories conflict", err)
	}
	recs, err := e.images.Delete(ctx, "other/name:v1", false, true)
	if err != nil || len(recs) != 1 || recs[0].Untagged != "other/name:v1" {
		t.Fatalf("untag: %+v, %v", recs, err)
	}
	recs, err = e.images.Delete(ctx, "busybox", false, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 || recs[0].Untagged != "busybox:latest" || recs[1].Deleted != img.ID() {
		t.Errorf("delete records %+v, want untagged busybox:latest, deleted the image and its layer", recs)
	}
	if imgs, layers, _ := e.counts(t); imgs+layers != 0 {
		t.Errorf("%d images and %d layers remain", imgs, layers)
	}
	if _, err := e.images.Delete(ctx, "busybox", false, true); !errdefs.IsNotFound(err) {
		t.Errorf("second delete: %v, want not found", err)
	}
	if got := e.events.actions(); got != "load,tag,tag,untag,untag,delete" {
		t.Errorf("events %s", got)
	}
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	rootfs := testimage.RootFS(t)
	old := testimage.NewImage(t, testimage.Config{Labels: map[string]string{"tier": "old"}}, []string{"app:old"}, rootfs)
	mid := testimage.NewImage(t, testimage.Config{Labels: map[string]string{"tier": "mid"}, Created: testimage.Epoch.Add(1e9)}, nil, rootfs)
	young := testimage.NewImage(t, testimage.Config{Labels: map[string]string{"tier": "new"}, Created: testimage.Epoch.Add(2e9)}, []string{"app:new", "other:1"}, rootfs)
	e.load(t, testimage.DockerArchive(t, old, mid, young))
	tests := []struct {
		name     string
		give     Filters
		wantIDs  []string
		wantTags string
		wantErr  string
	}{
		{name: "all newest first", wantIDs: []string{young.ID(), mid.ID(), old.ID()}},
		{name: "dangling", give: Filters{"dangling": {"true"}}, wantIDs: []string{mid.ID()}},
		{name: "not dangling", give: Filters{"dangling": {"false"}}, wantIDs: []string{young.ID(), old.ID()}},
		{name: "label", give: Filters{"label": {"tier=old"}}, wantIDs: []string{old.ID()}},
		{name: "label key", give: Filters{"label": {"tier"}}, wantIDs: []string{young.ID(), mid.ID(), old.ID()}},
		{name: "reference", give: Filters{"reference": {"app"}}, wantIDs: []string{young.ID(), old.ID()}, wantTags: "app:new"},
		{name: "reference glob", give: Filters{"reference": {"oth*"}}, wantIDs: []string{young.ID()}, wantTags: "other:1"},
		{name: "before", give: Filters{"before": {"app:new"}}, wantIDs: []string{mid.ID(), old.ID()}},
		{name: "since", give: Filters{"since": {"app:old"}}, wantIDs: []string{young.ID(), mid.ID()}},
		{name: "unknown filter", give: Filters{"colour": {"red"}}, wantErr: "invalid filter 'colour'"},
		{name: "bad dangling", give: Filters{"dangling": {"maybe"}}, wantErr: "invalid filter 'dangling=maybe'"},
		{name: "before unknown image", give: Filters{"before": {"nosuch:1"}}, wantErr: "No such image: nosuch:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.images.List(ctx, ListOptions{Filters: tt.give})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
			}
			if strings.Join(ids, " ") != strings.Join(tt.wantIDs, " ") {
				t.Errorf("ids %v, want %v", ids, tt.wantIDs)
			}
			if tt.wantTags != "" && strings.Join(got[0].RepoTags, ",") != tt.wantTags {
				t.Errorf("tags %v, want %s", got[0].RepoTags, tt.wantTags)
			}
		})
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	a := testimage.BusyboxImage(t, "busybox:latest", "busybox:1")
	b := testimage.NewImage(t, testimage.Config{Cmd: []string{"true"}}, nil, testimage.RootFS(t), testimage.Tar(t, testimage.Entry{Name: "etc/motd", Body: []byte("hi\n")}))
	e.load(t, testimage.DockerArchive(t, a, b))
	var buf bytes.Buffer
	if err := e.images.Save(ctx, []string{"busybox", b.ID()[7:19]}, &buf); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID(), b.ID()} {
		if _, err := e.images.Delete(ctx, id, true, true); err != nil {
			t.Fatal(err)
		}
	}
	if imgs, layers, _ := e.counts(t); imgs+layers != 0 {
		t.Fatalf("%d images and %d layers remain", imgs, layers)
	}
	lines := e.load(t, buf.Bytes())
	want := "Loaded image: busybox:latest,Loaded image: busybox:1,Loaded image ID: " + b.ID()
	if strings.Join(lines, ",") != want && strings.Join(lines, ",") != "Loaded image: busybox:1,Loaded image: busybox:latest,Loaded image ID: "+b.ID() {
		t.Errorf("load said %q, want %q", lines, want)
	}
	for _, id := range []string{a.ID(), b.ID()} {
		if _, err := e.images.Resolve(ctx, id); err != nil {
			t.Errorf("after the round trip: %v", err)
		}
	}
	if err := e.images.Save(ctx, []string{"nosuch"}, &buf); !errdefs.IsNotFound(err) {
		t.Errorf("save of an unknown image: %v", err)
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	tagged := testimage.BusyboxImage(t, "busybox:latest")
	dangling := testimage.NewImage(t, testimage.Config{Cmd: []string{"x"}}, nil, testimage.Tar(t, testimage.Entry{Name: "f", Body: []byte("dangling")}))
	e.load(t, testimage.DockerArchive(t, tagged, dangling))
	rep, err := e.images.Prune(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 2 || rep.ImagesDeleted[0].Deleted != dangling.ID() || rep.SpaceReclaimed == 0 {
		t.Errorf("prune report %+v, want the dangling image and its layer", rep)
	}
	rep, err = e.images.Prune(ctx, Filters{"dangling": {"false"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 3 || rep.ImagesDeleted[0].Untagged != "busybox:latest" {
		t.Errorf("prune dangling=false report %+v", rep)
	}
	if _, err := e.images.Prune(ctx, Filters{"reference": {"x"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("prune with a bad filter: %v", err)
	}
}

func TestStoreDriverChoice(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "storage")
	open := func(driver string, opts ...string) (*Store, error) {
		return OpenStore(StoreOptions{Root: root, RunRoot: filepath.Join(dir, "run"), Driver: driver, Options: opts}, zap.NewNop())
	}
	s, err := open("vfs")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.cs.PutLayer("", "", nil, "", false, nil, bytes.NewReader(testimage.Tar(t, testimage.Entry{Name: "a", Body: []byte("a")}))); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		giveDriver string
		giveOpts   []string
		wantDriver string
		wantErr    string
	}{
		{name: "existing data keeps its driver", wantDriver: "vfs"},
		{name: "explicit other driver refused", giveDriver: "overlay2", wantErr: `storage driver "overlay2" requested, but ` + root + ` holds data of storage driver "vfs"`},
		{name: "unknown driver", giveDriver: "aufs", wantErr: `unknown storage driver "aufs"`},
		{name: "option without value", giveDriver: "vfs", giveOpts: []string{"size"}, wantErr: `invalid storage option "size"`},
		{name: "option for another driver", giveDriver: "vfs", giveOpts: []string{"overlay2.size=1G"}, wantErr: "it is for storage driver overlay2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := open(tt.giveDriver, tt.giveOpts...)
			if tt.wantErr != "" {
				if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("open: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown()
			if s.Driver() != tt.wantDriver {
				t.Errorf("driver %s, want %s", s.Driver(), tt.wantDriver)
			}
		})
	}
	assertNoMounts(t, dir)
}

func TestOverlayByDefault(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	s, err := OpenStore(StoreOptions{Root: filepath.Join(dir, "storage"), RunRoot: filepath.Join(dir, "run")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	drv := s.Driver()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	assertNoMounts(t, dir)
	if drv != DriverOverlay && drv != DriverVFS {
		t.Fatalf("driver %q", drv)
	}
	if drv == DriverVFS {
		t.Skip("overlay not supported here: fell back to vfs")
	}
}

func TestMigration(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	dataRoot := filepath.Join(dir, "root")
	schema := filepath.Join(dataRoot, SchemaFile)
	if b, err := os.ReadFile(schema); err != nil || strings.TrimSpace(string(b)) != `{"version":1}` {
		t.Fatalf("fresh data root schema file %q, %v", b, err)
	}
	// A data root from before the schema file, with names another tool
	// wrote, and a temporary file of a crashed earlier attempt.
	img := testimage.BusyboxImage(t)
	e.load(t, testimage.DockerArchive(t, img))
	id := strings.TrimPrefix(img.ID(), "sha256:")
	if err := e.store.cs.SetNames(id, []string{"busybox", "docker.io/library/busybox:latest", "Not A Reference"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(schema); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(schema+".tmp", []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := MigrateDataRoot(dataRoot, e.images.refs, zap.NewNop())
	if err != nil || got.Version != SchemaVersion {
		t.Fatalf("migrate: %+v, %v", got, err)
	}
	names, err := e.store.cs.Names(id)
	if err != nil || strings.Join(names, ",") != "docker.io/library/busybox:latest" {
		t.Errorf("names after migration %q, %v", names, err)
	}
	// Rerunning (a crash before the version was written) changes nothing.
	if err := normaliseNames(e.images.refs, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.images.Resolve(context.Background(), "busybox"); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(schema, []byte(`{"version":99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = MigrateDataRoot(dataRoot, e.images.refs, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than this daemon's 1") {
		t.Errorf("newer schema: %v", err)
	}
	if err := os.WriteFile(schema, []byte(`garbage`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := MigrateDataRoot(dataRoot, e.images.refs, zap.NewNop()); err == nil {
		t.Error("a garbled schema file was accepted")
	}
}

var platformWindows = ocispec.Platform{OS: "windows", Architecture: "amd64"}
