package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/volumes"
)

// fakeVolumes is a VolumeService in memory that records what the daemon
// asks of it.
type fakeVolumes struct {
	vols    map[string]map[string]bool // name → holders
	mounted map[string]int             // "name ref" → count
	calls   []string
	// failCreate and failMount name the volume whose Create or MountFor
	// fails.
	failCreate, failMount string
	next                  int
}

func newFakeVolumes(names ...string) *fakeVolumes {
	f := &fakeVolumes{vols: map[string]map[string]bool{}, mounted: map[string]int{}}
	for _, n := range names {
		f.vols[n] = map[string]bool{}
	}
	return f
}

func (f *fakeVolumes) Create(_ context.Context, o volumes.CreateOptions) (volume.Volume, bool, error) {
	name := o.Name
	if name == "" {
		f.next++
		name = fmt.Sprintf("anon%d", f.next)
	}
	if name == f.failCreate {
		return volume.Volume{}, false, errdefs.ErrInvalidArgument.WithMessage("create " + name + ": refused")
	}
	_, exists := f.vols[name]
	if !exists {
		f.vols[name] = map[string]bool{}
		f.calls = append(f.calls, "create "+name)
	}
	f.vols[name][o.Reference] = true
	return volume.Volume{Name: name, Driver: volumes.DriverName, Mountpoint: "/vols/" + name + "/_data"}, !exists, nil
}

func (f *fakeVolumes) Acquire(name, ref string) error {
	if f.vols[name] == nil {
		return errdefs.ErrNotFound.WithMessage("get " + name + ": no such volume")
	}
	f.vols[name][ref] = true
	return nil
}

func (f *fakeVolumes) Release(name, ref string) {
	if f.vols[name] != nil {
		delete(f.vols[name], ref)
	}
}

func (f *fakeVolumes) MountFor(name, ref string, attrs map[string]string) (string, error) {
	if name == f.failMount {
		return "", errors.New("mount refused")
	}
	f.mounted[name+" "+ref]++
	keys := slices.Sorted(maps.Keys(attrs))
	var kv []string
	for _, k := range keys {
		kv = append(kv, k+"="+attrs[k])
	}
	f.calls = append(f.calls, "mount "+name+" "+strings.Join(kv, " "))
	return "/vols/" + name + "/_data", nil
}

func (f *fakeVolumes) Unmount(name, ref string) error {
	f.mounted[name+" "+ref]--
	if f.mounted[name+" "+ref] == 0 {
		delete(f.mounted, name+" "+ref)
	}
	f.calls = append(f.calls, "unmount "+name)
	return nil
}

func (f *fakeVolumes) Populate(_ context.Context, name, ref, src string) (bool, error) {
	f.calls = append(f.calls, "populate "+name)
	return true, nil
}

func (f *fakeVolumes) Remove(_ context.Context, name string, force bool) error {
	if len(f.vols[name]) > 0 {
		return errdefs.ErrConflict.WithMessage("remove " + name + ": volume is in use")
	}
	delete(f.vols, name)
	f.calls = append(f.calls, "remove "+name)
	return nil
}

func (f *fakeVolumes) RootPair() (int, int) { return os.Geteuid(), os.Getegid() }

// holders returns the volumes and their holders, "name:ref,ref", sorted.
func (f *fakeVolumes) holders() []string {
	var out []string
	for _, n := range slices.Sorted(maps.Keys(f.vols)) {
		out = append(out, n+":"+strings.Join(slices.Sorted(maps.Keys(f.vols[n])), ","))
	}
	return out
}

var _ VolumeService = (*fakeVolumes)(nil)

func testDaemon(vs VolumeService) *Daemon {
	d := &Daemon{log: zap.NewNop(), byID: map[string]*Container{}, names: map[string]string{}}
	if vs != nil {
		d.o.Volumes = vs
	}
	return d
}

// addContainer registers a container with mount points, as --volumes-from
// finds it.
func addContainer(d *Daemon, id, name string, mps ...MountPoint) {
	c := newContainer("", Record{ID: id, Name: "/" + name, Config: &container.Config{}, MountPoints: mps}, &container.HostConfig{})
	d.byID[id] = c
	d.names["/"+name] = id
}

// fakeRootfs stands in for the container's layer: an image tree with
// /data/file, /file and an empty /empty; the test fails if it stays
// mounted.
func fakeRootfs(t *testing.T) func() (string, func(), error) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"data", "empty"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"data/file", "file"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mounted := 0
	t.Cleanup(func() {
		if mounted != 0 {
			t.Errorf("root filesystem mounted %d times more than unmounted", mounted)
		}
	})
	return func() (string, func(), error) {
		mounted++
		return root, func() { mounted-- }, nil
	}
}

func TestPrepareMounts(t *testing.T) {
	host := t.TempDir()
	tests := []struct {
		name        string
		giveHost    container.HostConfig
		giveVolumes map[string]struct{} // the image's VOLUMEs
		wantMounts  []string            // "type name source dest mode rw propagation"
		wantHolders []string
		wantCalls   []string
		wantErr     string
	}{
		{
			name:        "named volume created and held",
			giveHost:    container.HostConfig{Binds: []string{"data:/data"}},
			wantMounts:  []string{"volume data /vols/data/_data /data z true "},
			wantHolders: []string{"data:c1", "old:src", "ro:src"},
			wantCalls:   []string{"create data", "populate data"},
		},
		{
			name:        "nocopy, read-only, mode kept",
			giveHost:    container.HostConfig{Binds: []string{"old:/data:ro,nocopy"}},
			wantMounts:  []string{"volume old /vols/old/_data /data ro,nocopy false "},
			wantHolders: []string{"old:c1,src", "ro:src"},
		},
		{
			name:        "anonymous -v",
			giveHost:    container.HostConfig{Binds: []string{"/anon"}},
			wantMounts:  []string{"volume anon1 /vols/anon1/_data /anon z true "},
			wantHolders: []string{"anon1:c1", "old:src", "ro:src"},
			wantCalls:   []string{"create anon1", "populate anon1"},
		},
		{
			name: "bind and --mount tmpfs; --tmpfs left to the runtime",
			giveHost: container.HostConfig{
				Binds:  []string{host + ":/h:rslave"},
				Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}}},
				Tmpfs:  map[string]string{"/run/": "size=1m"},
			},
			giveVolumes: map[string]struct{}{"/run": {}, "/h/": {}},
			wantMounts:  []string{"bind  " + host + " /h rslave true rslave", "tmpfs   /t  true "},
			wantHolders: []string{"old:src", "ro:src"},
		},
		{
			name:        "--mount volume with options and labels",
			giveHost:    container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "opt", Target: "/o", VolumeOptions: &mount.VolumeOptions{NoCopy: true, DriverConfig: &mount.Driver{Options: map[string]string{"type": "tmpfs"}}}}}},
			wantMounts:  []string{"volume opt /vols/opt/_data /o z true "},
			wantHolders: []string{"old:src", "opt:c1", "ro:src"},
			wantCalls:   []string{"create opt"},
		},
		{
			name:        "volumes-from, read-only, overridden at one destination",
			giveHost:    container.HostConfig{VolumesFrom: []string{"src:ro"}, Binds: []string{host + ":/ro"}},
			wantMounts:  []string{"volume old /vols/old/_data /data z false ", "bind  " + host + " /ro  true rprivate"},
			wantHolders: []string{"old:c1,src", "ro:src"},
		},
		{
			name:        "image VOLUMEs: anonymous volumes, populated",
			giveHost:    container.HostConfig{Binds: []string{"old:/data:nocopy"}},
			giveVolumes: map[string]struct{}{"/data": {}, "/empty/": {}, "/new": {}},
			wantMounts:  []string{"volume old /vols/old/_data /data nocopy true ", "volume anon1 /vols/anon1/_data /empty  true ", "volume anon2 /vols/anon2/_data /new  true "},
			wantHolders: []string{"anon1:c1", "anon2:c1", "old:c1,src", "ro:src"},
			wantCalls:   []string{"create anon1", "create anon2", "populate anon1", "populate anon2"},
		},
		{
			name:        "image VOLUME over a file",
			giveHost:    container.HostConfig{Binds: []string{"data:/data:nocopy"}},
			giveVolumes: map[string]struct{}{"/empty": {}, "/file": {}},
			wantErr:     "cannot mount volume over existing file, file exists",
			wantHolders: []string{"old:src", "ro:src"},
			wantCalls:   []string{"create data", "create anon1", "remove data", "remove anon1"},
		},
		{
			name:        "volumes-from of an unknown container",
			giveHost:    container.HostConfig{Binds: []string{"data:/data"}, VolumesFrom: []string{"nosuch"}},
			wantErr:     "No such container: nosuch",
			wantHolders: []string{"old:src", "ro:src"},
		},
		{
			name:        "a failing create undoes the earlier ones",
			giveHost:    container.HostConfig{Binds: []string{"data:/data", "old:/old", "bad:/bad"}},
			wantErr:     "create bad: refused",
			wantHolders: []string{"old:src", "ro:src"},
			wantCalls:   []string{"create data", "remove data"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fv := newFakeVolumes("old", "ro")
			fv.failCreate = "bad"
			fv.vols["old"]["src"], fv.vols["ro"]["src"] = true, true
			d := testDaemon(fv)
			addContainer(d, "src1234", "src", MountPoint{Type: mount.TypeVolume, Name: "old", Source: "/vols/old/_data", Destination: "/data", Mode: "z", RW: true},
				MountPoint{Type: mount.TypeVolume, Name: "ro", Source: "/vols/ro/_data", Destination: "/ro", Mode: "z", RW: true})
			fv.vols["old"]["src"], fv.vols["ro"]["src"] = true, true
			h := tt.giveHost
			parsed, err := checkMounts(&h)
			if err != nil {
				t.Fatal(err)
			}
			mps, _, err := d.registerMounts(context.Background(), "c1", &container.Config{Volumes: tt.giveVolumes}, &h, parsed, fakeRootfs(t))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("prepareMounts = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range mps {
				got = append(got, fmt.Sprintf("%s %s %s %s %s %v %s", m.Type, m.Name, m.Source, m.Destination, m.Mode, m.RW, m.Propagation))
			}
			if !slices.Equal(got, tt.wantMounts) {
				t.Errorf("mount points =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.wantMounts, "\n"))
			}
			// The volumes held by src1234 are recorded under "src" in the
			// fake: only c1's holds matter here.
			if got := fv.holders(); !slices.Equal(got, tt.wantHolders) {
				t.Errorf("holders = %q, want %q", got, tt.wantHolders)
			}
			if !slices.Equal(fv.calls, tt.wantCalls) {
				t.Errorf("calls = %q, want %q", fv.calls, tt.wantCalls)
			}
		})
	}
}

func TestPrepareMountsWithoutService(t *testing.T) {
	d := testDaemon(nil)
	h := container.HostConfig{Binds: []string{"data:/data"}}
	parsed, err := checkMounts(&h)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.registerMounts(context.Background(), "c1", &container.Config{}, &h, parsed, fakeRootfs(t)); !errdefs.IsNotImplemented(err) {
		t.Errorf("volume without a service = %v, want NotImplemented", err)
	}
}

func TestCheckMounts(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name    string
		give    container.HostConfig
		wantErr string
	}{
		{name: "good", give: container.HostConfig{Binds: []string{"a1:/a", "/srv:/srv:ro"}, Tmpfs: map[string]string{"/run": ""}, VolumesFrom: []string{"x:ro"}}},
		{name: "relative destination", give: container.HostConfig{Binds: []string{"a1:rel"}}, wantErr: "invalid volume specification: 'a1:rel'"},
		{name: "bad mode", give: container.HostConfig{Binds: []string{"a1:/a:xx"}}, wantErr: "invalid mode: xx"},
		{name: "missing --mount bind source", give: container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: missing, Target: "/m"}}},
			wantErr: `invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{name: "tmpfs with a source", give: container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Source: "ro", Target: "/t"}}}, wantErr: "field Source must not be specified"},
		{name: "duplicate with --tmpfs", give: container.HostConfig{Binds: []string{"a1:/run"}, Tmpfs: map[string]string{"/run": ""}}, wantErr: "Duplicate mount point: /run"},
		{name: "bad volumes-from mode", give: container.HostConfig{VolumesFrom: []string{"x:rshared"}}, wantErr: "invalid mode: rshared"},
		{name: "empty volumes-from", give: container.HostConfig{VolumesFrom: []string{""}}, wantErr: "volumes-from specification cannot be an empty string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkMounts(&tt.give)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("checkMounts = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("checkMounts = %v, want 400 %q", err, tt.wantErr)
			}
		})
	}
}

func TestSetupMounts(t *testing.T) {
	host := t.TempDir()
	fv := newFakeVolumes("data", "bad")
	fv.failMount = "bad"
	d := testDaemon(fv)
	made := filepath.Join(host, "made", "here")
	rec := &Record{ID: "c1", MountPoints: []MountPoint{
		{Type: mount.TypeVolume, Name: "data", Destination: "/data/deep", Mode: "z", RW: false},
		{Type: mount.TypeBind, Source: made, Destination: "/b", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true},
		{Type: mount.TypeTmpfs, Destination: "/t", RW: true, TmpfsOptions: []string{"noexec", "size=1m"}},
	}}
	ms, err := d.setupMounts(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s %s %s %s", m.Destination, m.Type, m.Source, strings.Join(m.Options, ",")))
	}
	want := []string{
		"/b bind " + made + " rbind,rprivate",
		"/t tmpfs tmpfs noexec,size=1m",
		"/data/deep bind /vols/data/_data rbind,ro",
	}
	if !slices.Equal(got, want) {
		t.Errorf("mounts =\n%s\nwant (parents first)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if fi, err := os.Stat(made); err != nil || !fi.IsDir() {
		t.Errorf("-v bind source not created: %v", err)
	}
	if want := "mount data destination=/data/deep propagation= read/write=false"; len(fv.calls) != 1 || fv.calls[0] != want {
		t.Errorf("calls = %q, want %q", fv.calls, want)
	}
	d.unmountVolumes(newContainer("", *rec, &container.HostConfig{}))
	if len(fv.mounted) != 0 {
		t.Errorf("still mounted after unmountVolumes: %v", fv.mounted)
	}

	// A failure part-way leaves nothing mounted.
	fv.calls = nil
	missing := filepath.Join(host, "missing")
	for _, tt := range []struct {
		name    string
		giveBad MountPoint
		wantErr string
	}{
		{name: "volume mount fails", giveBad: MountPoint{Type: mount.TypeVolume, Name: "bad", Destination: "/z"}, wantErr: "mount refused"},
		{name: "--mount bind source gone", giveBad: MountPoint{Type: mount.TypeBind, Source: missing, Destination: "/z"}, wantErr: "bind source path does not exist: " + missing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{ID: "c2", MountPoints: []MountPoint{{Type: mount.TypeVolume, Name: "data", Destination: "/a", RW: true}, tt.giveBad}}
			if _, err := d.setupMounts(r); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("setupMounts = %v, want %q", err, tt.wantErr)
			}
			if len(fv.mounted) != 0 {
				t.Errorf("left mounted: %v", fv.mounted)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Error("--mount bind source was created")
			}
		})
	}
}

func TestReleaseVolumes(t *testing.T) {
	fv := newFakeVolumes("named", "anon", "shared")
	d := testDaemon(fv)
	fv.vols["shared"]["other"] = true
	mps := []MountPoint{
		{Type: mount.TypeVolume, Name: "named", Destination: "/n", Spec: mount.Mount{Type: mount.TypeVolume, Source: "named", Target: "/n"}},
		{Type: mount.TypeVolume, Name: "anon", Destination: "/a", Spec: mount.Mount{Type: mount.TypeVolume, Target: "/a"}},
		{Type: mount.TypeVolume, Name: "shared", Destination: "/s", Spec: mount.Mount{Type: mount.TypeVolume, Target: "/s"}},
		{Type: mount.TypeBind, Source: "/srv", Destination: "/srv", Spec: mount.Mount{Type: mount.TypeBind, Source: "/srv", Target: "/srv"}},
	}
	for _, m := range mps {
		if m.Type == mount.TypeVolume {
			fv.vols[m.Name]["c1"] = true
		}
	}
	c := newContainer("", Record{ID: "c1", MountPoints: mps}, &container.HostConfig{})
	d.releaseVolumes(context.Background(), c, true)
	// The anonymous volume goes; the named one stays; the shared
	// anonymous one stays for its other holder.
	if got, want := fv.holders(), []string{"named:", "shared:other"}; !slices.Equal(got, want) {
		t.Errorf("volumes = %q, want %q", got, want)
	}
	if want := []string{"remove anon"}; !slices.Equal(fv.calls, want) {
		t.Errorf("calls = %q, want %q", fv.calls, want)
	}
}

func TestBindMountOptions(t *testing.T) {
	tests := []struct {
		name string
		give MountPoint
		want string
	}{
		{name: "read-write", give: MountPoint{RW: true}, want: "rbind"},
		{name: "read-only with propagation", give: MountPoint{Propagation: mount.PropagationRSlave}, want: "rbind,ro,rslave"},
		{name: "non-recursive", give: MountPoint{RW: true, Spec: mount.Mount{BindOptions: &mount.BindOptions{NonRecursive: true}}}, want: "bind"},
		{name: "force recursive read-only", give: MountPoint{Spec: mount.Mount{BindOptions: &mount.BindOptions{ReadOnlyForceRecursive: true}}}, want: "rbind,ro,rro"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Destination = "/d"
			m := bindMount("/src", &tt.give)
			if got := strings.Join(m.Options, ","); got != tt.want || m.Source != "/src" || m.Destination != "/d" || m.Type != "bind" {
				t.Errorf("bindMount = %+v, want options %s", m, tt.want)
			}
		})
	}
}

func TestRootPropagation(t *testing.T) {
	tests := []struct {
		name string
		give [][]string
		want string
	}{
		{name: "none", give: [][]string{{"rbind"}, {"rbind", "rprivate"}}, want: ""},
		{name: "slave", give: [][]string{{"rbind", "slave"}}, want: "rslave"},
		{name: "shared wins", give: [][]string{{"rbind", "rslave"}, {"rbind", "shared"}}, want: "rshared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms []specs.Mount
			for _, o := range tt.give {
				ms = append(ms, specs.Mount{Options: o})
			}
			if got := rootPropagation(ms); got != tt.want {
				t.Errorf("rootPropagation = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWithMounts(t *testing.T) {
	points := []specs.Mount{{Destination: "/etc"}, {Destination: "/etc/hosts", Source: "/mine"}}
	etc := []specs.Mount{{Destination: "/etc/hostname"}, {Destination: "/etc/hosts"}, {Destination: "/etc/resolv.conf"}}
	var got []string
	for _, m := range withMounts(points, etc) {
		got = append(got, m.Destination+m.Source)
	}
	if want := []string{"/etc", "/etc/hosts/mine", "/etc/hostname", "/etc/resolv.conf"}; !slices.Equal(got, want) {
		t.Errorf("withMounts = %q, want %q (mount points first, the user's /etc/hosts kept)", got, want)
	}
}

func TestMkdirAllOwned(t *testing.T) {
	base := t.TempDir()
	if err := os.Chmod(base, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(base, "a", "b")
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 4242, 4343
	}
	if err := mkdirAllOwned(p, uid, gid); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		giveDir  string
		wantUID  int
		wantGID  int
		wantMode os.FileMode
	}{
		{name: "made parent", giveDir: filepath.Join(base, "a"), wantUID: uid, wantGID: gid, wantMode: 0o755},
		{name: "made leaf", giveDir: p, wantUID: uid, wantGID: gid, wantMode: 0o755},
		{name: "existing parent left alone", giveDir: base, wantUID: os.Geteuid(), wantGID: os.Getegid(), wantMode: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Stat(tt.giveDir)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != tt.wantUID || int(st.Gid) != tt.wantGID || fi.Mode().Perm() != tt.wantMode {
				t.Errorf("owner %d:%d mode %v, want %d:%d %v", st.Uid, st.Gid, fi.Mode().Perm(), tt.wantUID, tt.wantGID, tt.wantMode)
			}
		})
	}
}

func TestAPIMounts(t *testing.T) {
	rec := &Record{MountPoints: []MountPoint{
		{Type: mount.TypeVolume, Name: "v1", Source: "/vols/v1/_data", Destination: "/z", Driver: "local", Mode: "z", RW: true, CreateSource: true},
		{Type: mount.TypeBind, Source: "/srv", Destination: "/a", Mode: "ro", Propagation: mount.PropagationRPrivate},
	}}
	got := apiMounts(rec)
	want := []container.MountPoint{
		{Type: mount.TypeBind, Source: "/srv", Destination: "/a", Mode: "ro", Propagation: mount.PropagationRPrivate},
		{Type: mount.TypeVolume, Name: "v1", Source: "/vols/v1/_data", Destination: "/z", Driver: "local", Mode: "z", RW: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("apiMounts = %+v, want %+v", got, want)
	}
	if got := apiMounts(&Record{}); got == nil || len(got) != 0 {
		t.Errorf("no mounts = %#v, want an empty list (JSON [])", got)
	}
}
