package storage

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/wharfd/wharfd/internal/testimage"
)

// fakeUsers is an ImageUsers answering for every image.
type fakeUsers struct {
	ids     []string
	running bool
	asked   []string
}

func (f *fakeUsers) ImageInUse(id string) ([]string, bool) {
	f.asked = append(f.asked, id)
	return f.ids, f.running
}

func TestDeleteUsedBy(t *testing.T) {
	const ctrRunning, ctrStopped = "aaaaaaaaaaaa1111", "bbbbbbbbbbbb2222"
	tests := []struct {
		name        string
		giveName    string // "" deletes by short ID
		giveForce   bool
		giveUsers   *fakeUsers
		wantErr     string
		wantRecords string
		wantKept    bool
	}{
		{name: "running by ID", giveUsers: &fakeUsers{ids: []string{ctrRunning, ctrStopped}, running: true},
			wantErr: "(cannot be forced) - image is being used by running container aaaaaaaaaaaa"},
		{name: "running by ID forced", giveForce: true, giveUsers: &fakeUsers{ids: []string{ctrRunning}, running: true},
			wantErr: "(cannot be forced) - image is being used by running container aaaaaaaaaaaa"},
		{name: "stopped by ID", giveUsers: &fakeUsers{ids: []string{ctrStopped}},
			wantErr: "(must be forced) - image is being used by stopped container bbbbbbbbbbbb"},
		{name: "stopped by ID forced untags and keeps", giveForce: true, giveUsers: &fakeUsers{ids: []string{ctrStopped}},
			wantRecords: "untagged busybox:latest", wantKept: true},
		{name: "running by name", giveName: "busybox", giveUsers: &fakeUsers{ids: []string{ctrRunning}, running: true},
			wantErr: `conflict: unable to remove repository reference "busybox" (must force) - container aaaaaaaaaaaa is using its referenced image`},
		{name: "running by name forced untags and keeps", giveName: "busybox", giveForce: true, giveUsers: &fakeUsers{ids: []string{ctrRunning}, running: true},
			wantRecords: "untagged busybox:latest", wantKept: true},
		{name: "unused by ID", giveUsers: &fakeUsers{}, wantRecords: "untagged busybox:latest deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "")
			ctx := context.Background()
			img := testimage.BusyboxImage(t, "busybox:latest")
			e.load(t, testimage.DockerArchive(t, img))
			name := tt.giveName
			if name == "" {
				name = img.ID()[7:19]
			}
			recs, err := e.images.DeleteUsedBy(ctx, name, tt.giveForce, true, tt.giveUsers)
			if tt.wantErr != "" {
				if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DeleteUsedBy(%s) = %v, want conflict %q", name, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "conflict: unable to ") || !strings.Contains(err.Error(), img.ID()[7:19]) {
					t.Errorf("error %q does not name the image", err)
				}
			} else if err != nil {
				t.Fatal(err)
			} else {
				var got []string
				for _, r := range recs {
					switch {
					case r.Untagged != "":
						got = append(got, "untagged "+r.Untagged)
					case r.Deleted == img.ID():
						got = append(got, "deleted")
					}
				}
				if strings.Join(got, " ") != tt.wantRecords {
					t.Errorf("records %+v, want %s", recs, tt.wantRecords)
				}
			}
			if len(tt.giveUsers.asked) != 1 || tt.giveUsers.asked[0] != img.ID() {
				t.Errorf("users asked about %q, want %q", tt.giveUsers.asked, img.ID())
			}
			_, rerr := e.images.Resolve(ctx, img.ID())
			if kept := rerr == nil; kept != (tt.wantErr != "" || tt.wantKept) {
				t.Errorf("image kept = %v (%v)", kept, rerr)
			}
		})
	}
}
