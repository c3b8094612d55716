package volumes

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
)

func TestParseBind(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		giveDriver string
		want       MountPoint // Spec not compared
		wantErr    string
	}{
		{"anonymous", "/data", "",
			MountPoint{Type: mount.TypeVolume, Destination: "/data", RW: true, CopyData: true}, ""},
		{"named", "cache:/var/cache/", "",
			MountPoint{Type: mount.TypeVolume, Name: "cache", Destination: "/var/cache", RW: true, CopyData: true}, ""},
		{"named ro nocopy", "cache:/c:ro,nocopy", "",
			MountPoint{Type: mount.TypeVolume, Name: "cache", Destination: "/c", Mode: "ro,nocopy"}, ""},
		{"driver", "cache:/c", "local",
			MountPoint{Type: mount.TypeVolume, Name: "cache", Driver: "local", Destination: "/c", RW: true, CopyData: true}, ""},
		{"driver not for binds", "/srv:/c", "local",
			MountPoint{Type: mount.TypeBind, Source: "/srv", Destination: "/c", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true}, ""},
		{"bind", "/srv/../srv/data/:/data", "",
			MountPoint{Type: mount.TypeBind, Source: "/srv/data", Destination: "/data", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true}, ""},
		{"bind ro shared z", "/srv:/data:ro,rshared,z", "",
			MountPoint{Type: mount.TypeBind, Source: "/srv", Destination: "/data", Mode: "ro,rshared,z", Propagation: mount.PropagationRShared, CreateSource: true}, ""},
		{"consistency", "/srv:/data:cached", "",
			MountPoint{Type: mount.TypeBind, Source: "/srv", Destination: "/data", Mode: "cached", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true}, ""},
		{"empty", "", "", MountPoint{}, "invalid volume specification: ''"},
		{"empty source", ":/data", "", MountPoint{}, "invalid volume specification: ':/data'"},
		{"destination and mode", "/data:rw", "", MountPoint{}, "invalid volume specification: '/data:rw'"},
		{"too many parts", "a:/b:ro:x", "", MountPoint{}, "invalid volume specification: 'a:/b:ro:x'"},
		{"unknown mode", "/srv:/data:rx", "", MountPoint{}, "invalid mode: rx"},
		{"two rw modes", "/srv:/data:ro,rw", "", MountPoint{}, "invalid mode: ro,rw"},
		{"relative destination", "/srv:data", "", MountPoint{},
			"invalid volume specification: '/srv:data': invalid mount config for type \"bind\": invalid mount path: 'data' mount path must be absolute"},
		{"relative anonymous", "data", "", MountPoint{},
			"invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"},
		{"root destination", "cache:/", "", MountPoint{},
			"invalid volume specification: 'cache:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBind(tt.give, tt.giveDriver)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Spec = mount.Mount{}
			if !equalMountPoint(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func equalMountPoint(a, b MountPoint) bool {
	return a.Type == b.Type && a.Source == b.Source && a.Name == b.Name && a.Driver == b.Driver &&
		a.Destination == b.Destination && a.RW == b.RW && a.Mode == b.Mode && a.Propagation == b.Propagation &&
		a.CopyData == b.CopyData && a.CreateSource == b.CreateSource && slices.Equal(a.TmpfsOptions, b.TmpfsOptions)
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		give    mount.Mount
		want    MountPoint // Spec not compared
		wantErr string
	}{
		{"bind", mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data/", ReadOnly: true},
			MountPoint{Type: mount.TypeBind, Source: dir, Destination: "/data", Propagation: mount.PropagationRPrivate}, ""},
		{"bind propagation", mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data", BindOptions: &mount.BindOptions{Propagation: mount.PropagationSlave}},
			MountPoint{Type: mount.TypeBind, Source: dir, Destination: "/data", RW: true, Propagation: mount.PropagationSlave}, ""},
		{"bind missing source", mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/data"}, MountPoint{},
			`invalid mount config for type "bind": bind source path does not exist: ` + missing},
		{"bind create mountpoint", mount.Mount{Type: mount.TypeBind, Source: missing, Target: "/data", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			MountPoint{Type: mount.TypeBind, Source: missing, Destination: "/data", RW: true, Propagation: mount.PropagationRPrivate, CreateSource: true}, ""},
		{"bind no source", mount.Mount{Type: mount.TypeBind, Target: "/data"}, MountPoint{},
			`invalid mount config for type "bind": field Source must not be empty`},
		{"bind relative source", mount.Mount{Type: mount.TypeBind, Source: "srv", Target: "/data"}, MountPoint{},
			`invalid mount config for type "bind": invalid mount path: 'srv' mount path must be absolute`},
		{"bind bad propagation", mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data", BindOptions: &mount.BindOptions{Propagation: "up"}}, MountPoint{},
			`invalid mount config for type "bind": invalid propagation mode: up`},
		{"bind volume options", mount.Mount{Type: mount.TypeBind, Source: dir, Target: "/data", VolumeOptions: &mount.VolumeOptions{}}, MountPoint{},
			`invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{"volume", mount.Mount{Type: mount.TypeVolume, Source: "cache", Target: "/c",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}},
			MountPoint{Type: mount.TypeVolume, Name: "cache", Driver: "local", Destination: "/c", RW: true}, ""},
		{"anonymous volume", mount.Mount{Type: mount.TypeVolume, Target: "/c"},
			MountPoint{Type: mount.TypeVolume, Destination: "/c", RW: true, CopyData: true}, ""},
		{"volume subpath", mount.Mount{Type: mount.TypeVolume, Source: "cache", Target: "/c", VolumeOptions: &mount.VolumeOptions{Subpath: "a/b"}},
			MountPoint{Type: mount.TypeVolume, Name: "cache", Destination: "/c", RW: true, CopyData: true}, ""},
		{"anonymous subpath", mount.Mount{Type: mount.TypeVolume, Target: "/c", VolumeOptions: &mount.VolumeOptions{Subpath: "a"}}, MountPoint{},
			`invalid mount config for type "volume": must not set Subpath when using anonymous volumes`},
		{"escaping subpath", mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "/c", VolumeOptions: &mount.VolumeOptions{Subpath: "../x"}}, MountPoint{},
			`invalid mount config for type "volume": subpath must be a relative path within the volume`},
		{"volume bind options", mount.Mount{Type: mount.TypeVolume, Target: "/c", BindOptions: &mount.BindOptions{}}, MountPoint{},
			`invalid mount config for type "volume": field BindOptions must not be specified`},
		{"relative target", mount.Mount{Type: mount.TypeVolume, Source: "v", Target: "c"}, MountPoint{},
			`invalid mount config for type "volume": invalid mount path: 'c' mount path must be absolute`},
		{"no target", mount.Mount{Type: mount.TypeVolume, Source: "v"}, MountPoint{},
			`invalid mount config for type "volume": field Target must not be empty`},
		{"tmpfs", mount.Mount{Type: mount.TypeTmpfs, Target: "/run", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777, Options: [][]string{{"exec"}}}},
			MountPoint{Type: mount.TypeTmpfs, Destination: "/run", RW: true,
				TmpfsOptions: []string{"nosuid", "nodev", "rprivate", "mode=1777", "size=64m", "exec"}}, ""},
		{"tmpfs ro odd size", mount.Mount{Type: mount.TypeTmpfs, Target: "/run", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000}},
			MountPoint{Type: mount.TypeTmpfs, Destination: "/run",
				TmpfsOptions: []string{"noexec", "nosuid", "nodev", "rprivate", "ro", "size=1000"}}, ""},
		{"tmpfs source", mount.Mount{Type: mount.TypeTmpfs, Source: "ro", Target: "/run"}, MountPoint{},
			`invalid mount config for type "tmpfs": field Source must not be specified`},
		{"tmpfs option", mount.Mount{Type: mount.TypeTmpfs, Target: "/run", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"suid"}}}}, MountPoint{},
			`invalid mount config for type "tmpfs": invalid option: suid`},
		{"tmpfs option length", mount.Mount{Type: mount.TypeTmpfs, Target: "/run", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{}}}}, MountPoint{},
			`invalid mount config for type "tmpfs": invalid option array length`},
		{"tmpfs root", mount.Mount{Type: mount.TypeTmpfs, Target: "/"}, MountPoint{},
			`invalid mount config for type "tmpfs": invalid specification: destination can't be '/'`},
		{"unknown type", mount.Mount{Type: "nfs", Target: "/x"}, MountPoint{},
			`invalid mount config for type "nfs": mount type unknown`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMount(tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalMountPoint(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestVolumeCreateOptions(t *testing.T) {
	mp, err := ParseMount(mount.Mount{Type: mount.TypeVolume, Source: "v1", Target: "/v", VolumeOptions: &mount.VolumeOptions{
		Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}})
	if err != nil {
		t.Fatal(err)
	}
	o := mp.VolumeCreateOptions()
	if o.Name != "v1" || o.Driver != "local" || o.Labels["a"] != "b" || o.DriverOpts["type"] != "tmpfs" {
		t.Errorf("create options = %+v", o)
	}
}

func TestParseTmpfs(t *testing.T) {
	tests := []struct {
		name        string
		giveDest    string
		giveOptions string
		wantRW      bool
		wantOptions []string
		wantErr     string
	}{
		{"defaults", "/run", "", true, []string{"noexec", "nosuid", "nodev", "rprivate"}, ""},
		{"options", "/run/", "exec,size=64m,mode=1777", true, []string{"nosuid", "nodev", "rprivate", "exec", "size=64m", "mode=1777"}, ""},
		{"ro", "/run", "ro", false, []string{"noexec", "nosuid", "nodev", "rprivate", "ro"}, ""},
		{"later size wins", "/run", "size=1m,size=2m", true, []string{"noexec", "nosuid", "nodev", "rprivate", "size=2m"}, ""},
		{"relative", "run", "", false, nil, "invalid mount path: 'run' mount path must be absolute"},
		{"root", "/", "", false, nil, "invalid specification: destination can't be '/'"},
		{"unknown option", "/run", "foo=bar", false, nil, `invalid tmpfs option ["foo" "bar"]`},
		{"bare size", "/run", "size", false, nil, `invalid tmpfs option ["size"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTmpfs(tt.giveDest, tt.giveOptions)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != mount.TypeTmpfs || got.Destination != "/run" || got.RW != tt.wantRW || !slices.Equal(got.TmpfsOptions, tt.wantOptions) {
				t.Errorf("got %+v, want rw %v options %q", got, tt.wantRW, tt.wantOptions)
			}
		})
	}
}

func TestParseVolumesFrom(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantID   string
		wantMode string
		wantErr  string
	}{
		{"plain", "data", "data", "rw", ""},
		{"ro", "data:ro", "data", "ro", ""},
		{"ro z", "data:ro,z", "data", "ro,z", ""},
		{"empty", "", "", "", "volumes-from specification cannot be an empty string"},
		{"propagation", "data:rshared", "", "", "invalid mode: rshared"},
		{"nocopy", "data:nocopy", "", "", "invalid mode: nocopy"},
		{"unknown", "data:rx", "", "", "invalid mode: rx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, mode, err := ParseVolumesFrom(tt.give)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || id != tt.wantID || mode != tt.wantMode {
				t.Errorf("got %q %q %v, want %q %q", id, mode, err, tt.wantID, tt.wantMode)
			}
		})
	}
}

func TestParseMounts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		giveBinds  []string
		giveMounts []mount.Mount
		giveTmpfs  map[string]string
		wantDests  []string
		wantErr    string
	}{
		{"all kinds", []string{"v1:/a", dir + ":/b"}, []mount.Mount{{Type: mount.TypeVolume, Target: "/c"}}, map[string]string{"/e": "", "/d": "size=1m"},
			[]string{"/a", "/b", "/c", "/d", "/e"}, ""},
		{"bind twice", []string{"v1:/a", "v2:/a/"}, nil, nil, nil, "Duplicate mount point: /a"},
		{"bind and mount", []string{"v1:/a"}, []mount.Mount{{Type: mount.TypeVolume, Target: "/a"}}, nil, nil, "Duplicate mount point: /a"},
		{"bind and tmpfs", []string{"v1:/a"}, nil, map[string]string{"/a": ""}, nil, "Duplicate mount point: /a"},
		{"bad bind", []string{"v1:a"}, nil, nil, nil, "invalid volume specification: 'v1:a'"},
		{"bad mount", nil, []mount.Mount{{Type: mount.TypeBind, Source: filepath.Join(dir, "nope"), Target: "/a"}}, nil, nil, "bind source path does not exist"},
		{"bad tmpfs", nil, nil, map[string]string{"/a": "bogus"}, nil, "invalid tmpfs option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMounts(tt.giveBinds, tt.giveMounts, tt.giveTmpfs, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var dests []string
			for _, mp := range got {
				dests = append(dests, mp.Destination)
			}
			if !slices.Equal(dests, tt.wantDests) {
				t.Errorf("destinations = %q, want %q", dests, tt.wantDests)
			}
		})
	}
}
