package volumes

import (
	"context"
	"errors"
	"fmt"
	stdmaps "maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
)

// recorder is an EventLogger that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []string // "action id attr=value …", attributes sorted
}

func (r *recorder) Log(typ events.Type, action events.Action, actor events.Actor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := string(typ) + " " + string(action) + " " + actor.ID
	keys := make([]string, 0, len(actor.Attributes))
	for k := range actor.Attributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s += " " + k + "=" + actor.Attributes[k]
	}
	r.events = append(r.events, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

// newTestService opens a service on a fresh directory, with an event
// recorder, and mounts replaced by a fake that records them.
func newTestService(t *testing.T) (*Service, *recorder, *fakeMounts) {
	t.Helper()
	ev := &recorder{}
	s, err := New(Options{Root: filepath.Join(t.TempDir(), "volumes"), UID: os.Geteuid(), GID: os.Getegid(), Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeMounts{mounted: map[string]string{}}
	s.mountFn, s.unmountFn = fm.mount, fm.unmount
	return s, ev, fm
}

// fakeMounts stands in for mount(2) in tests that count mounts.
type fakeMounts struct {
	mounted map[string]string // target → "device type options"
	calls   []string
	fail    error
}

func (f *fakeMounts) mount(device, target, fstype, options string) error {
	if f.fail != nil {
		return f.fail
	}
	f.calls = append(f.calls, "mount "+filepath.Base(filepath.Dir(target)))
	f.mounted[target] = device + " " + fstype + " " + options
	return nil
}

func (f *fakeMounts) unmount(target string) error {
	f.calls = append(f.calls, "unmount "+filepath.Base(filepath.Dir(target)))
	delete(f.mounted, target)
	return nil
}

func create(t *testing.T, s *Service, o CreateOptions) volume.Volume {
	t.Helper()
	v, _, err := s.Create(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCreate(t *testing.T) {
	s, ev, _ := newTestService(t)
	ctx := context.Background()
	v, created, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new volume")
	}
	want := filepath.Join(s.Root(), "data", "_data")
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != want || v.Labels["a"] != "1" {
		t.Errorf("volume = %+v", v)
	}
	if ok, _ := regexp.MatchString(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`, v.CreatedAt); !ok {
		t.Errorf("CreatedAt = %q, want RFC 3339 to the second", v.CreatedAt)
	}
	st, err := os.Stat(want)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Errorf("data directory: %v, %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(s.Root(), "data")); err != nil || st.Mode().Perm() != 0o701 {
		t.Errorf("volume directory: %v, %v", st, err)
	}
	if got := ev.take(); !slices.Equal(got, []string{"volume create data driver=local"}) {
		t.Errorf("events = %q", got)
	}

	// The same name again: the existing volume, no event, labels kept.
	again, created, err := s.Create(ctx, CreateOptions{Name: "data", Driver: "local", Labels: map[string]string{"b": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if created || again.CreatedAt != v.CreatedAt || again.Labels["a"] != "1" || again.Labels["b"] != "" {
		t.Errorf("second create = %+v, created %v", again, created)
	}
	if got := ev.take(); len(got) != 0 {
		t.Errorf("events for an existing volume: %q", got)
	}
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 1 {
		t.Errorf("volumes directory holds %d entries, want 1", len(entries))
	}
}

func TestCreateAnonymous(t *testing.T) {
	s, _, _ := newTestService(t)
	v := create(t, s, CreateOptions{Labels: map[string]string{"x": "y"}})
	if ok, _ := regexp.MatchString(`^[0-9a-f]{64}$`, v.Name); !ok {
		t.Errorf("name %q is not 64 hex digits", v.Name)
	}
	if l, ok := v.Labels[AnonymousLabel]; !ok || l != "" || v.Labels["x"] != "y" {
		t.Errorf("labels = %v", v.Labels)
	}
	w := create(t, s, CreateOptions{})
	if w.Name == v.Name {
		t.Error("two anonymous volumes share a name")
	}
}

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name      string
		give      CreateOptions
		wantErr   string
		wantClass func(error) bool
	}{
		{"short name", CreateOptions{Name: "a"},
			"create a: volume name is too short, names should be at least two alphanumeric characters", errdefs.IsInvalidArgument},
		{"slash", CreateOptions{Name: "foo/bar"},
			`create foo/bar: "foo/bar" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`, errdefs.IsInvalidArgument},
		{"leading dot", CreateOptions{Name: ".hidden"}, `create .hidden: ".hidden" includes invalid characters`, errdefs.IsInvalidArgument},
		{"dot dot", CreateOptions{Name: ".."}, `create ..: ".." includes invalid characters`, errdefs.IsInvalidArgument},
		{"unknown driver", CreateOptions{Name: "x1", Driver: "nfs"},
			`create x1: error looking up volume plugin nfs: plugin "nfs" not found`, errdefs.IsNotFound},
		{"unknown option", CreateOptions{Name: "x1", DriverOpts: map[string]string{"foo": "bar"}},
			`create x1: invalid option: "foo"`, errdefs.IsInvalidArgument},
		{"type without device", CreateOptions{Name: "x1", DriverOpts: map[string]string{"type": "tmpfs"}},
			`create x1: missing required option: "device"`, errdefs.IsInvalidArgument},
		{"device without type", CreateOptions{Name: "x1", DriverOpts: map[string]string{"device": "tmpfs"}},
			`create x1: missing required option: "type"`, errdefs.IsInvalidArgument},
		{"o alone", CreateOptions{Name: "x1", DriverOpts: map[string]string{"o": "size=1m"}},
			`create x1: missing required option: "device"`, errdefs.IsInvalidArgument},
		{"size", CreateOptions{Name: "x1", DriverOpts: map[string]string{"size": "10m"}},
			"create x1: quota size requested but no quota support", errdefs.IsInvalidArgument},
		{"bad size", CreateOptions{Name: "x1", DriverOpts: map[string]string{"size": "lots"}},
			"create x1: invalid size: 'lots'", errdefs.IsInvalidArgument},
		{"cifs port", CreateOptions{Name: "x1", DriverOpts: map[string]string{"type": "cifs", "device": "//h:445/share"}},
			"create x1: port not allowed in CIFS device URL, include 'port' in 'o='", errdefs.IsInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ev, _ := newTestService(t)
			_, _, err := s.Create(context.Background(), tt.give)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !tt.wantClass(err) {
				t.Errorf("err %v has the wrong class", err)
			}
			if entries, _ := os.ReadDir(s.Root()); len(entries) != 0 {
				t.Errorf("failed create left %d entries", len(entries))
			}
			if got := ev.take(); len(got) != 0 {
				t.Errorf("events = %q", got)
			}
		})
	}
}

func TestCreateValidOptions(t *testing.T) {
	s, _, _ := newTestService(t)
	give := map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=10m,uid=1000"}
	v := create(t, s, CreateOptions{Name: "tmp", DriverOpts: give})
	if !stdmaps.Equal(v.Options, give) {
		t.Errorf("options = %v, want %v", v.Options, give)
	}
	give["o"] = "changed"
	if got, _ := s.Get(context.Background(), "tmp"); got.Options["o"] != "size=10m,uid=1000" {
		t.Errorf("the service shares the caller's map: %v", got.Options)
	}
}

func TestPersistence(t *testing.T) {
	root := filepath.Join(t.TempDir(), "volumes")
	s, err := New(Options{Root: root, UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created := create(t, s, CreateOptions{Name: "keep", Labels: map[string]string{"k": "v"}, DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	anon := create(t, s, CreateOptions{})
	if err := os.WriteFile(filepath.Join(anon.Mountpoint, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	create(t, s, CreateOptions{Name: "gone"})
	if err := s.Remove(ctx, "gone", false); err != nil {
		t.Fatal(err)
	}
	// Leftovers of an interrupted create and remove, a stray file, a
	// dockerd-style volume without metadata, a volume with bad metadata.
	for _, d := range []string{".create-123", ".remove-old-abc/_data", "legacy/_data", "broken/_data", "notavolume"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "broken", metaFileName), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(root, "stray"), nil, 0o600)

	s2, err := New(Options{Root: root, UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s2.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range got {
		names = append(names, v.Name)
	}
	want := []string{anon.Name, "keep", "legacy"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("volumes after reopening = %v, want %v", names, want)
	}
	keep, err := s2.Get(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if keep.CreatedAt != created.CreatedAt || keep.Labels["k"] != "v" || keep.Options["type"] != "tmpfs" {
		t.Errorf("reloaded volume = %+v, want %+v", keep, created)
	}
	if b, err := os.ReadFile(filepath.Join(anon.Mountpoint, "f")); string(b) != "hello" {
		t.Errorf("data after reopening = %q, %v", b, err)
	}
	for _, d := range []string{".create-123", ".remove-old-abc"} {
		if _, err := os.Stat(filepath.Join(root, d)); !os.IsNotExist(err) {
			t.Errorf("leftover %s not cleared: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "broken", metaFileName)); err != nil {
		t.Errorf("a volume with bad metadata must be left alone: %v", err)
	}
}

func TestRemove(t *testing.T) {
	s, ev, _ := newTestService(t)
	ctx := context.Background()
	v := create(t, s, CreateOptions{Name: "data"})
	os.MkdirAll(filepath.Join(v.Mountpoint, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(v.Mountpoint, "a", "b", "f"), []byte("x"), 0o644)
	ev.take()

	if err := s.Acquire("data", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Acquire("data", "c0"); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		err := s.Remove(ctx, "data", force)
		if err == nil || err.Error() != "remove data: volume is in use - [c0, c1]" || !errdefs.IsConflict(err) {
			t.Errorf("remove in use (force %v) = %v", force, err)
		}
		if !errors.Is(err, ErrVolumeInUse) {
			t.Errorf("%v is not ErrVolumeInUse", err)
		}
	}
	if _, err := os.Stat(filepath.Join(v.Mountpoint, "a", "b", "f")); err != nil {
		t.Errorf("refused removal touched the data: %v", err)
	}
	s.Release("data", "c0")
	s.Release("data", "c1")
	s.Release("data", "never")
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(v.Mountpoint)); !os.IsNotExist(err) {
		t.Errorf("volume directory still there: %v", err)
	}
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 0 {
		t.Errorf("remove left %d entries", len(entries))
	}
	if got := ev.take(); !slices.Equal(got, []string{"volume destroy data driver=local"}) {
		t.Errorf("events = %q", got)
	}

	err := s.Remove(ctx, "data", false)
	if err == nil || err.Error() != "get data: no such volume" || !errdefs.IsNotFound(err) {
		t.Errorf("remove missing = %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Errorf("remove missing with force = %v", err)
	}
	if _, err := s.Get(ctx, "data"); err == nil || err.Error() != "get data: no such volume" || !errdefs.IsNotFound(err) {
		t.Errorf("get removed = %v", err)
	}
	if err := s.Acquire("data", "c1"); !errdefs.IsNotFound(err) {
		t.Errorf("acquire missing = %v", err)
	}
}

func TestMountCounting(t *testing.T) {
	s, ev, fm := newTestService(t)
	ctx := context.Background()
	create(t, s, CreateOptions{Name: "tmp", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}})
	plain := create(t, s, CreateOptions{Name: "plain"})
	ev.take()

	p1, err := s.Mount("tmp", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("tmp", "c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("tmp", "c2"); err != nil {
		t.Fatal(err)
	}
	if p1 != filepath.Join(s.Root(), "tmp", "_data") {
		t.Errorf("mount path = %s", p1)
	}
	if got := fm.mounted[p1]; got != "tmpfs tmpfs size=1m" {
		t.Errorf("mounted %q, want the volume's options", got)
	}
	if err := s.Remove(ctx, "tmp", true); !errdefs.IsConflict(err) {
		t.Errorf("remove mounted = %v", err)
	}
	for _, ref := range []string{"c2", "c1", "c2"} {
		if len(fm.mounted) != 1 {
			t.Fatalf("unmounted before the last user (%s)", ref)
		}
		if err := s.Unmount("tmp", ref); err != nil {
			t.Fatal(err)
		}
	}
	if len(fm.mounted) != 0 {
		t.Error("still mounted after the last unmount")
	}
	if err := s.Unmount("tmp", "c1"); err != nil {
		t.Errorf("unbalanced unmount = %v", err)
	}
	if want := []string{"mount tmp", "unmount tmp"}; !slices.Equal(fm.calls, want) {
		t.Errorf("mount calls = %q, want %q", fm.calls, want)
	}
	// Unmounted but still held: refs stay until Release.
	if refs, _ := s.Refs("tmp"); !slices.Equal(refs, []string{"c1", "c2"}) {
		t.Errorf("refs = %q", refs)
	}
	if err := s.Remove(ctx, "tmp", false); !errdefs.IsConflict(err) {
		t.Errorf("remove held = %v", err)
	}
	s.Release("tmp", "c1")
	s.Release("tmp", "c2")
	if err := s.Remove(ctx, "tmp", false); err != nil {
		t.Errorf("remove released = %v", err)
	}

	// A volume without options mounts nothing.
	if p, err := s.Mount("plain", "c3"); err != nil || p != plain.Mountpoint {
		t.Errorf("mount plain = %s, %v", p, err)
	}
	if err := s.Unmount("plain", "c3"); err != nil {
		t.Fatal(err)
	}
	if len(fm.calls) != 2 {
		t.Errorf("mount calls for a plain volume: %q", fm.calls[2:])
	}
	got := ev.take()
	want := []string{
		"volume mount tmp container=c1 driver=local",
		"volume mount tmp container=c2 driver=local",
		"volume mount tmp container=c2 driver=local",
		"volume unmount tmp container=c2 driver=local",
		"volume unmount tmp container=c1 driver=local",
		"volume unmount tmp container=c2 driver=local",
		"volume destroy tmp driver=local",
		"volume mount plain container=c3 driver=local",
		"volume unmount plain container=c3 driver=local",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if _, err := s.Mount("nosuch", "c1"); err == nil || err.Error() != "get nosuch: no such volume" {
		t.Errorf("mount missing = %v", err)
	}
	if _, err := s.Mount("plain", ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("mount without a reference = %v", err)
	}
}

func TestMountFailure(t *testing.T) {
	s, ev, fm := newTestService(t)
	create(t, s, CreateOptions{Name: "cifs", DriverOpts: map[string]string{"type": "cifs", "device": "//h/s", "o": "user=u,password=secret"}})
	ev.take()
	fm.fail = errors.New("mount //h/s: data user=u,password=secret: permission denied")
	_, err := s.Mount("cifs", "c1")
	if err == nil || !strings.HasPrefix(err.Error(), "failed to mount local volume: ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("err = %v", err)
	}
	if refs, _ := s.Refs("cifs"); len(refs) != 0 {
		t.Errorf("a failed mount holds the volume: %q", refs)
	}
	if got := ev.take(); len(got) != 0 {
		t.Errorf("events = %q", got)
	}
}

func TestCreateReference(t *testing.T) {
	s, _, _ := newTestService(t)
	v := create(t, s, CreateOptions{Reference: "c1"})
	if rep, err := s.Prune(context.Background(), nil); err != nil || len(rep.VolumesDeleted) != 0 {
		t.Errorf("prune = %+v, %v: removed a volume created with a reference", rep, err)
	}
	create(t, s, CreateOptions{Name: v.Name, Reference: "c2"})
	if refs, _ := s.Refs(v.Name); !slices.Equal(refs, []string{"c1", "c2"}) {
		t.Errorf("refs = %q", refs)
	}
}

func TestList(t *testing.T) {
	s, _, _ := newTestService(t)
	create(t, s, CreateOptions{Name: "web-data", Labels: map[string]string{"app": "web", "tier": "front"}})
	create(t, s, CreateOptions{Name: "db-data", Labels: map[string]string{"app": "db"}})
	create(t, s, CreateOptions{Name: "scratch"})
	if err := s.Acquire("db-data", "c1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		give      Filters
		wantNames []string
		wantErr   string
	}{
		{"all", nil, []string{"db-data", "scratch", "web-data"}, ""},
		{"dangling", Filters{"dangling": {"true"}}, []string{"scratch", "web-data"}, ""},
		{"dangling 1", Filters{"dangling": {"1"}}, []string{"scratch", "web-data"}, ""},
		{"not dangling", Filters{"dangling": {"false"}}, []string{"db-data"}, ""},
		{"dangling both", Filters{"dangling": {"true", "false"}}, nil, "invalid filter 'dangling=[true false]'"},
		{"dangling word", Filters{"dangling": {"maybe"}}, nil, "invalid filter 'dangling=[maybe]'"},
		{"name substring", Filters{"name": {"data"}}, []string{"db-data", "web-data"}, ""},
		{"name regexp", Filters{"name": {"^s"}}, []string{"scratch"}, ""},
		{"name any", Filters{"name": {"scratch", "db"}}, []string{"db-data", "scratch"}, ""},
		{"driver", Filters{"driver": {"local"}}, []string{"db-data", "scratch", "web-data"}, ""},
		{"other driver", Filters{"driver": {"nfs"}}, []string{}, ""},
		{"label key", Filters{"label": {"app"}}, []string{"db-data", "web-data"}, ""},
		{"label value", Filters{"label": {"app=web"}}, []string{"web-data"}, ""},
		{"labels all", Filters{"label": {"app=web", "tier=back"}}, []string{}, ""},
		{"combined", Filters{"label": {"app"}, "dangling": {"true"}}, []string{"web-data"}, ""},
		{"unknown", Filters{"until": {"1h"}}, nil, "invalid filter 'until'"},
		{"label! not for list", Filters{"label!": {"app"}}, nil, "invalid filter 'label!'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := s.List(context.Background(), tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, v := range got {
				names = append(names, v.Name)
			}
			if !slices.Equal(names, tt.wantNames) || warnings != nil {
				t.Errorf("names = %q, warnings %q; want %q", names, warnings, tt.wantNames)
			}
		})
	}
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name        string
		give        Filters
		wantDeleted []string // named volumes; "anon" stands for the anonymous one
		wantErr     string
	}{
		{"anonymous only", nil, []string{"anon"}, ""},
		{"all", Filters{"all": {"true"}}, []string{"anon", "named", "labelled"}, ""},
		{"all false", Filters{"all": {"0"}}, []string{"anon"}, ""},
		{"label", Filters{"all": {"1"}, "label": {"keep=no"}}, []string{"labelled"}, ""},
		{"label not", Filters{"all": {"true"}, "label!": {"keep"}}, []string{"anon", "named"}, ""},
		{"label anonymous", Filters{"label": {"keep"}}, []string{}, ""},
		{"all twice", Filters{"all": {"true", "false"}}, nil, "invalid filter 'all=[true false]': only one value is expected"},
		{"all word", Filters{"all": {"yes"}}, nil, `invalid filter 'all': strconv.ParseBool: parsing "yes": invalid syntax`},
		{"name", Filters{"name": {"x"}}, nil, "invalid filter 'name'"},
		{"dangling", Filters{"dangling": {"true"}}, nil, "invalid filter 'dangling'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ev, _ := newTestService(t)
			ctx := context.Background()
			anon := create(t, s, CreateOptions{})
			os.WriteFile(filepath.Join(anon.Mountpoint, "f"), make([]byte, 1000), 0o644)
			create(t, s, CreateOptions{Name: "named"})
			create(t, s, CreateOptions{Name: "labelled", Labels: map[string]string{"keep": "no"}})
			create(t, s, CreateOptions{Name: "used"})
			create(t, s, CreateOptions{Name: "usedanon", Reference: "c1"})
			create(t, s, CreateOptions{Name: "withopts", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
			if err := s.Acquire("used", "c1"); err != nil {
				t.Fatal(err)
			}
			ev.take()
			rep, err := s.Prune(ctx, tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			var wantSpace uint64
			for _, n := range tt.wantDeleted {
				if n == "anon" {
					n = anon.Name
					wantSpace = 1000
				}
				want = append(want, n)
			}
			slices.Sort(want)
			if !slices.Equal(rep.VolumesDeleted, want) && !(len(want) == 0 && len(rep.VolumesDeleted) == 0) {
				t.Errorf("deleted %q, want %q", rep.VolumesDeleted, want)
			}
			if rep.SpaceReclaimed != wantSpace {
				t.Errorf("reclaimed %d, want %d", rep.SpaceReclaimed, wantSpace)
			}
			for _, n := range want {
				if _, err := s.Get(ctx, n); !errdefs.IsNotFound(err) {
					t.Errorf("%s still there: %v", n, err)
				}
			}
			for _, n := range []string{"used", "withopts"} {
				if _, err := s.Get(ctx, n); err != nil {
					t.Errorf("pruned %s: %v", n, err)
				}
			}
			got := ev.take()
			if len(got) != len(want)+1 || got[len(got)-1] != fmt.Sprintf("volume prune  reclaimed=%d", wantSpace) {
				t.Errorf("events = %q", got)
			}
		})
	}
}

func TestPruneRunning(t *testing.T) {
	s, _, _ := newTestService(t)
	s.pruning.Store(true)
	_, err := s.Prune(context.Background(), nil)
	if err == nil || err.Error() != "a prune operation is already running" || !errdefs.IsConflict(err) {
		t.Errorf("err = %v", err)
	}
}

func TestDiskUsage(t *testing.T) {
	s, _, _ := newTestService(t)
	ctx := context.Background()
	a := create(t, s, CreateOptions{Name: "aa"})
	b := create(t, s, CreateOptions{Name: "bb"})
	create(t, s, CreateOptions{Name: "opts", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	os.WriteFile(filepath.Join(a.Mountpoint, "f"), make([]byte, 100), 0o644)
	os.Link(filepath.Join(a.Mountpoint, "f"), filepath.Join(a.Mountpoint, "hardlink"))
	os.MkdirAll(filepath.Join(b.Mountpoint, "d"), 0o755)
	os.WriteFile(filepath.Join(b.Mountpoint, "d", "g"), make([]byte, 30), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(b.Mountpoint, "link"))
	s.Acquire("bb", "c1")
	s.Acquire("bb", "c2")

	du, err := s.DiskUsage(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	linkSize := int64(len("/etc/passwd"))
	want := volume.DiskUsage{TotalCount: 2, ActiveCount: 1, TotalSize: 130 + linkSize, Reclaimable: 100}
	if !reflect.DeepEqual(*du, want) {
		t.Errorf("usage = %+v, want %+v", *du, want)
	}
	du, err = s.DiskUsage(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(du.Items) != 2 || du.Items[0].Name != "aa" || *du.Items[0].UsageData != (volume.UsageData{Size: 100, RefCount: 0}) ||
		*du.Items[1].UsageData != (volume.UsageData{Size: 30 + linkSize, RefCount: 2}) {
		t.Errorf("items = %+v", du.Items)
	}
}

func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the data directory to another user")
	}
	s, err := New(Options{Root: filepath.Join(t.TempDir(), "volumes"), UID: 100000, GID: 100001})
	if err != nil {
		t.Fatal(err)
	}
	v := create(t, s, CreateOptions{Name: "remapped"})
	st, err := os.Stat(v.Mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 100000 || sys.Gid != 100001 {
		t.Errorf("data directory owned by %d:%d, want 100000:100001", sys.Uid, sys.Gid)
	}
	if st, _ := os.Stat(filepath.Dir(v.Mountpoint)); st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Error("volume directory not owned by root")
	}
}

func TestConcurrentCreateRemove(t *testing.T) {
	s, _, _ := newTestService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				name := fmt.Sprintf("v%d-%d", i, j%3)
				if _, _, err := s.Create(ctx, CreateOptions{Name: name}); err != nil {
					t.Error(err)
				}
				if err := s.Remove(ctx, name, true); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 0 {
		t.Errorf("%d entries left", len(entries))
	}
}

func TestRootThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Root: filepath.Join(dir, "link", "volumes"), UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "real", "volumes")
	if real, _ := filepath.EvalSymlinks(want); s.Root() != real {
		t.Errorf("root = %s, want the resolved %s", s.Root(), real)
	}
}
