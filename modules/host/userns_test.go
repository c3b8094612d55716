package host

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

const (
	testPasswd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n"
	testGroup  = "root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice\n"
)

// fakeEtc writes passwd, group, and (when not nil) subuid and subgid to a
// temporary directory and returns Paths pointing at them.
func fakeEtc(t *testing.T, subuid, subgid *string) Paths {
	t.Helper()
	dir := t.TempDir()
	p := Paths{
		Passwd: filepath.Join(dir, "passwd"),
		Group:  filepath.Join(dir, "group"),
		Subuid: filepath.Join(dir, "subuid"),
		Subgid: filepath.Join(dir, "subgid"),
		// Creating users must never reach the host's useradd.
		UserAdd: filepath.Join(dir, "no-useradd"),
	}
	write := func(path string, s *string) {
		if s == nil {
			return
		}
		if err := os.WriteFile(path, []byte(*s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(p.Passwd, ptr(testPasswd))
	write(p.Group, ptr(testGroup))
	write(p.Subuid, subuid)
	write(p.Subgid, subgid)
	return p
}

func TestLoadIdentity(t *testing.T) {
	tests := []struct {
		name       string
		giveSpec   string
		giveSubuid *string
		giveSubgid *string
		want       Identity
		wantRoot   RootIdentity
		wantErr    []string // substrings; the file and the user
		wantSkip   string
	}{
		{
			name: "off", giveSpec: "",
			wantSkip: "userns-remap not configured",
		},
		{
			name: "named user", giveSpec: "alice",
			giveSubuid: ptr("alice:100000:65536\n"), giveSubgid: ptr("alice:200000:65536\n"),
			want: Identity{User: "alice", Group: "alice",
				UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 200000, 65536}}},
			wantRoot: RootIdentity{UID: 100000, GID: 200000},
		},
		{
			name: "numeric uid", giveSpec: "1000",
			giveSubuid: ptr("alice:100000:65536\n"), giveSubgid: ptr("alice:100000:65536\n"),
			want: Identity{User: "alice", Group: "alice",
				UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 100000, 65536}}},
			wantRoot: RootIdentity{UID: 100000, GID: 100000},
		},
		{
			name: "ranges keyed by uid", giveSpec: "alice",
			giveSubuid: ptr("1000:300000:1000\n"), giveSubgid: ptr("1000:400000:1000\n"),
			want: Identity{User: "alice", Group: "alice",
				UIDMaps: []IDMap{{0, 300000, 1000}}, GIDMaps: []IDMap{{0, 400000, 1000}}},
			wantRoot: RootIdentity{UID: 300000, GID: 400000},
		},
		{
			name: "several ranges concatenate", giveSpec: "alice",
			giveSubuid: ptr("# comment\nbob:100000:65536\nalice:165536:1000\n\nalice:500000:2000\n"),
			giveSubgid: ptr("alice:165536:65536\n1000:900000:10\n"),
			want: Identity{User: "alice", Group: "alice",
				UIDMaps: []IDMap{{0, 165536, 1000}, {1000, 500000, 2000}},
				GIDMaps: []IDMap{{0, 165536, 65536}, {65536, 900000, 10}}},
			wantRoot: RootIdentity{UID: 165536, GID: 165536},
		},
		{
			name: "user:group", giveSpec: "alice:staff",
			giveSubuid: ptr("alice:100000:65536\n"), giveSubgid: ptr("alice:100000:65536\n"),
			want: Identity{User: "alice", Group: "staff",
				UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 100000, 65536}}},
			wantRoot: RootIdentity{UID: 100000, GID: 100000},
		},
		{
			name: "uid:gid", giveSpec: "1001:50",
			giveSubuid: ptr("bob:100000:65536\n"), giveSubgid: ptr("bob:100000:65536\n"),
			want: Identity{User: "bob", Group: "staff",
				UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 100000, 65536}}},
			wantRoot: RootIdentity{UID: 100000, GID: 100000},
		},
		{
			name: "root is not remapped", giveSpec: "root",
			wantSkip: "root cannot be remapped with itself",
		},
		{
			name: "uid 0 is root", giveSpec: "0",
			wantSkip: "root cannot be remapped with itself",
		},
		{
			name: "missing subuid file", giveSpec: "alice", giveSubgid: ptr("alice:1:2\n"),
			wantErr: []string{"subuid", `"alice"`, "no such file"},
		},
		{
			name: "missing subgid file", giveSpec: "alice", giveSubuid: ptr("alice:100000:65536\n"),
			wantErr: []string{"subgid", `"alice"`, "no such file"},
		},
		{
			name: "empty subuid file", giveSpec: "alice", giveSubuid: ptr(""), giveSubgid: ptr("alice:1:2\n"),
			wantErr: []string{`no subuid ranges found for user "alice" in `, "subuid"},
		},
		{
			name: "no ranges for the user", giveSpec: "alice",
			giveSubuid: ptr("alice:100000:65536\n"), giveSubgid: ptr("bob:100000:65536\n"),
			wantErr: []string{`no subgid ranges found for user "alice" in `, "subgid"},
		},
		{
			name: "malformed line for the user", giveSpec: "alice",
			giveSubuid: ptr("bob:x:y\nalice:100000\n"), giveSubgid: ptr("alice:1:2\n"),
			wantErr: []string{"subuid line 2", `"alice:100000" is not name:start:count`},
		},
		{
			name: "unknown user", giveSpec: "carol",
			wantErr: []string{`user "carol" has no entry in `, "passwd"},
		},
		{
			name: "unknown uid", giveSpec: "4242",
			wantErr: []string{"uid 4242 has no entry in ", "passwd"},
		},
		{
			name: "unknown group", giveSpec: "alice:wheel",
			wantErr: []string{`group "wheel" has no entry in `, "group"},
		},
		{
			name: "unknown gid", giveSpec: "alice:4242",
			wantErr: []string{"gid 4242 has no entry in ", "group"},
		},
		{
			name: "too many parts", giveSpec: "alice:staff:x",
			wantErr: []string{`invalid --userns-remap "alice:staff:x"`},
		},
		{
			name: "empty user", giveSpec: ":staff",
			wantErr: []string{`invalid --userns-remap ":staff"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths := fakeEtc(t, tt.giveSubuid, tt.giveSubgid)
			core, logs := observer.New(zap.WarnLevel)
			got, err := LoadIdentity(tt.giveSpec, paths, zap.New(core))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("LoadIdentity(%q) = %+v, want error", tt.giveSpec, got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.HasPrefix(tt.wantErr[0], "invalid --userns-remap") && !errdefs.IsInvalidArgument(err) {
					t.Errorf("malformed spec error is not InvalidArgument: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadIdentity(%q): %v", tt.giveSpec, err)
			}
			if got.SkipReason() != tt.wantSkip {
				t.Errorf("SkipReason = %q, want %q", got.SkipReason(), tt.wantSkip)
			}
			if tt.wantSkip != "" {
				if got.Enabled() {
					t.Errorf("remapping on: %+v", got)
				}
				if tt.giveSpec != "" && logs.FilterMessage("User namespaces: root cannot be remapped with itself; user namespaces are OFF").Len() != 1 {
					t.Errorf("no warning logged for root; logs: %v", logs.All())
				}
				if root := NewRootIdentity(got); root != (RootIdentity{}) {
					t.Errorf("root identity %+v, want 0:0", root)
				}
				return
			}
			got.off = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identity\n got %+v\nwant %+v", got, tt.want)
			}
			if root := NewRootIdentity(got); root != tt.wantRoot {
				t.Errorf("root identity %+v, want %+v", root, tt.wantRoot)
			}
		})
	}
}

// fakeUserAdd writes a script that "creates" a user the way useradd
// would, in paths.Passwd and paths.Group, recording its arguments.
func fakeUserAdd(t *testing.T, paths *Paths) (argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	paths.UserAdd = filepath.Join(dir, "useradd")
	script := "#!/bin/sh\n" +
		"echo \"$@\" > " + argsFile + "\n" +
		"for name; do :; done\n" + // last argument
		"echo \"$name:x:999:998::/nonexistent:/bin/false\" >> " + paths.Passwd + "\n" +
		"echo \"$name:x:998:\" >> " + paths.Group + "\n"
	if err := os.WriteFile(paths.UserAdd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return argsFile
}

func TestLoadIdentityDefault(t *testing.T) {
	tests := []struct {
		name        string
		giveUser    bool // dockremap exists
		giveSubuid  *string
		giveSubgid  *string
		wantUIDMaps []IDMap
		wantGIDMaps []IDMap
		wantSubuid  string
		wantCreated bool
	}{
		{
			name:       "creates user and ranges in missing files",
			wantSubuid: "dockremap:100000:65536\n", wantCreated: true,
			wantUIDMaps: []IDMap{{0, 100000, 65536}}, wantGIDMaps: []IDMap{{0, 100000, 65536}},
		},
		{
			name:     "existing user without ranges gets them after the highest",
			giveUser: true,
			// Unterminated last line, an out-of-order range and a
			// malformed line for someone else.
			giveSubuid:  ptr("alice:100000:65536\nbob:300000:1000\nbad line\ncarol:200000:65536"),
			giveSubgid:  ptr(""),
			wantSubuid:  "alice:100000:65536\nbob:300000:1000\nbad line\ncarol:200000:65536\ndockremap:301000:65536\n",
			wantUIDMaps: []IDMap{{0, 301000, 65536}}, wantGIDMaps: []IDMap{{0, 100000, 65536}},
		},
		{
			name:     "existing ranges are kept",
			giveUser: true, giveSubuid: ptr("dockremap:500000:1000\n"), giveSubgid: ptr("dockremap:600000:1000\n"),
			wantSubuid:  "dockremap:500000:1000\n",
			wantUIDMaps: []IDMap{{0, 500000, 1000}}, wantGIDMaps: []IDMap{{0, 600000, 1000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths := fakeEtc(t, tt.giveSubuid, tt.giveSubgid)
			if tt.giveUser {
				f, _ := os.OpenFile(paths.Passwd, os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString("dockremap:x:999:998::/nonexistent:/bin/false\n")
				f.Close()
			}
			argsFile := fakeUserAdd(t, &paths)
			got, err := LoadIdentity(RemapDefault, paths, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if got.User != RemapDefaultUser {
				t.Errorf("user %q, want dockremap", got.User)
			}
			if !reflect.DeepEqual(got.UIDMaps, tt.wantUIDMaps) || !reflect.DeepEqual(got.GIDMaps, tt.wantGIDMaps) {
				t.Errorf("maps %v %v, want %v %v", got.UIDMaps, got.GIDMaps, tt.wantUIDMaps, tt.wantGIDMaps)
			}
			subuid, _ := os.ReadFile(paths.Subuid)
			if string(subuid) != tt.wantSubuid {
				t.Errorf("subuid file\n%q\nwant\n%q", subuid, tt.wantSubuid)
			}
			args, err := os.ReadFile(argsFile)
			created := err == nil
			if created != tt.wantCreated {
				t.Fatalf("user created: %v, want %v", created, tt.wantCreated)
			}
			if created && strings.TrimSpace(string(args)) != "-r -s /bin/false -M -U dockremap" {
				t.Errorf("useradd arguments %q", args)
			}
		})
	}
}

func TestLoadIdentityDefaultUserAddFails(t *testing.T) {
	paths := fakeEtc(t, nil, nil)
	paths.UserAdd = "false"
	_, err := LoadIdentity(RemapDefault, paths, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), `create user "dockremap"`) {
		t.Fatalf("err = %v, want the user creation's failure", err)
	}
	if _, err := os.Stat(paths.Subuid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("subuid file written although the user was not created")
	}
}

func TestIdentityToHost(t *testing.T) {
	id := Identity{UIDMaps: []IDMap{{0, 100000, 1000}, {1000, 500000, 10}}, GIDMaps: []IDMap{{0, 200000, 65536}}}
	tests := []struct {
		name             string
		giveUID, giveGID int
		wantUID, wantGID int
		wantErr          bool
	}{
		{name: "root", wantUID: 100000, wantGID: 200000},
		{name: "second range", giveUID: 1005, giveGID: 7, wantUID: 500005, wantGID: 200007},
		{name: "unmapped", giveUID: 1010, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, g, err := id.ToHost(tt.giveUID, tt.giveGID)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil || u != tt.wantUID || g != tt.wantGID {
				t.Fatalf("ToHost = %d, %d, %v; want %d, %d", u, g, err, tt.wantUID, tt.wantGID)
			}
		})
	}
	if u, g, err := (Identity{}).ToHost(5, 6); err != nil || u != 5 || g != 6 {
		t.Errorf("ToHost without remapping = %d, %d, %v; want 5, 6", u, g, err)
	}
}
