package host

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// owner returns a path's mode and owner.
func owner(t *testing.T, path string) (fs.FileMode, int, int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return st.Mode().Perm(), int(sys.Uid), int(sys.Gid)
}

// traversable returns a temporary directory that others may traverse,
// as /var/lib is: t.TempDir and its parent are 0700.
func traversable(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMakeDataRoot(t *testing.T) {
	needRoot(t)
	remap := Identity{User: "alice", UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 200000, 65536}}}
	tests := []struct {
		name         string
		giveIdentity Identity
		giveExisting fs.FileMode // mode of an existing data root; 0 for none
		wantSub      string      // effective root under the data root
		wantBaseMode fs.FileMode
		wantMode     fs.FileMode
		wantGID      int
	}{
		{name: "no remap", wantBaseMode: 0o710, wantMode: 0o710},
		{name: "no remap, existing 0755", giveExisting: 0o755, wantBaseMode: 0o710, wantMode: 0o710},
		{name: "remapped", giveIdentity: remap, wantSub: "100000.200000", wantBaseMode: 0o711, wantMode: 0o710, wantGID: 200000},
		{name: "remapped, existing 0700", giveIdentity: remap, giveExisting: 0o700, wantSub: "100000.200000", wantBaseMode: 0o711, wantMode: 0o710, wantGID: 200000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(traversable(t), "lib", "wharfd")
			if tt.giveExisting != 0 {
				if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(base, tt.giveExisting); err != nil {
					t.Fatal(err)
				}
				os.Chmod(base, tt.giveExisting)
			}
			got, err := MakeDataRoot(base, tt.giveIdentity, NewRootIdentity(tt.giveIdentity))
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(base, tt.wantSub)
			if got.Path != want {
				t.Fatalf("effective root %s, want %s", got.Path, want)
			}
			if mode, uid, gid := owner(t, base); mode != tt.wantBaseMode || uid != 0 || gid != 0 {
				t.Errorf("data root %v %d:%d, want %v 0:0", mode, uid, gid, tt.wantBaseMode)
			}
			if mode, uid, gid := owner(t, got.Path); mode != tt.wantMode || uid != 0 || gid != tt.wantGID {
				t.Errorf("effective root %v %d:%d, want %v 0:%d", mode, uid, gid, tt.wantMode, tt.wantGID)
			}
		})
	}
}

func TestMakeDataRootParentBlocksRemappedRoot(t *testing.T) {
	needRoot(t)
	locked := filepath.Join(traversable(t), "locked")
	if err := os.Mkdir(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	id := Identity{User: "alice", UIDMaps: []IDMap{{0, 100000, 65536}}, GIDMaps: []IDMap{{0, 100000, 65536}}}
	_, err := MakeDataRoot(filepath.Join(locked, "wharfd"), id, NewRootIdentity(id))
	if err == nil || !strings.Contains(err.Error(), locked+" does not let the remapped root (100000:100000) through; allow o+x") {
		t.Fatalf("err = %v, want one naming %s", err, locked)
	}
	if _, err := os.Stat(filepath.Join(locked, "wharfd", "100000.100000")); !os.IsNotExist(err) {
		t.Errorf("remapped root created although it cannot be reached (err %v)", err)
	}
}

func TestMakeExecRoot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "wharfd")
	got, err := MakeExecRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode, _, _ := owner(t, got.Path); got.Path != dir || mode != 0o700 {
		t.Errorf("exec root %s %v, want %s 0700", got.Path, mode, dir)
	}
}
