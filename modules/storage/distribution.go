package storage

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/types"
)

// This file is the storage side of pulls (modules/distribution): the
// downloaded image enters the store here, under the same lock and with
// the same rollback as load and import.

// Progress actions PullIn reports, dockerd's words for a layer being
// unpacked into the store.
const (
	// ActionExtracting reports bytes of a layer read into the store.
	ActionExtracting = "Extracting"
	// ActionPullComplete reports a layer stored.
	ActionPullComplete = "Pull complete"
	// ActionAlreadyExists reports a layer the store already had.
	ActionAlreadyExists = "Already exists"
)

// PullOptions say how PullIn stores an image.
type PullOptions struct {
	// Tag is the tag the image gets ("docker.io/library/busybox:latest");
	// nil for a pull by digest.
	Tag reference.Named
	// Canonical is the repository digest recorded for the image
	// ("docker.io/library/busybox@sha256:…", RepoDigests); nil records
	// none.
	Canonical reference.Canonical
	// SourceCtx is the context src is read with (platform choice for a
	// manifest list); nil is the store's.
	SourceCtx *types.SystemContext
	// ConfigDigest is the digest of the image's config blob, which is not
	// reported as a layer.
	ConfigDigest digest.Digest
	// Progress receives ActionExtracting, ActionPullComplete and
	// ActionAlreadyExists for each layer (ID: its 12-character short
	// digest); nil reports nothing.
	Progress ProgressFunc
}

// PullIn stores the image src names (a single image, as downloaded by the
// distribution module) and tags it with o.Tag and o.Canonical. It returns
// the image and whether anything changed: false when the image was
// stored already and the tag pointed at it (dockerd's "Image is up to
// date"). A failure or a cancelled ctx leaves the store as it was: every
// image and layer the call added is removed, as a failed load does.
func (s *Images) PullIn(ctx context.Context, src types.ImageReference, o PullOptions) (img *Image, changed bool, err error) {
	progress := o.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	sys := o.SourceCtx
	if sys == nil {
		sys = s.db.sys
	}
	id, err := configID(ctx, sys, src)
	if err != nil {
		return nil, false, err
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, serr := s.db.store.cs.Image(id)
	existed := serr == nil
	changed = !existed
	for _, ref := range []reference.Named{o.Tag, o.Canonical} {
		if ref == nil {
			continue
		}
		owner, err := s.refs.Owner(ref)
		if err != nil {
			return nil, false, err
		}
		if owner != id {
			changed = true
		}
	}
	snap, err := s.snapshot()
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			s.rollback(snap)
		}
	}()
	if !existed {
		if err := s.copyPulled(ctx, src, id, sys, o.ConfigDigest, progress); err != nil {
			return nil, false, err
		}
	}
	for _, ref := range []reference.Named{o.Tag, o.Canonical} {
		if ref == nil {
			continue
		}
		if _, err := s.refs.Tag(id, ref); err != nil {
			return nil, false, err
		}
	}
	img, err = s.db.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return img, changed, nil
}

// copyPulled copies src into the store as image id, reporting layer
// progress.
func (s *Images) copyPulled(ctx context.Context, src types.ImageReference, id string, sys *types.SystemContext, config digest.Digest, progress ProgressFunc) error {
	dest, err := s.db.storeRef(id)
	if err != nil {
		return err
	}
	ch := make(chan types.ProgressProperties)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range ch {
			if p.Artifact.Digest == config {
				continue
			}
			short := shortID(p.Artifact.Digest.Encoded())
			switch p.Event {
			case types.ProgressEventRead:
				progress(Progress{ID: short, Action: ActionExtracting, Current: int64(p.Offset), Total: p.Artifact.Size})
			case types.ProgressEventDone:
				progress(Progress{ID: short, Action: ActionPullComplete})
			case types.ProgressEventSkipped:
				progress(Progress{ID: short, Action: ActionAlreadyExists})
			}
		}
	}()
	opts := &copy.Options{
		SourceCtx: sys, DestinationCtx: s.db.sys,
		Progress: ch, ProgressInterval: progressInterval,
	}
	_, err = copy.Image(ctx, s.db.policy, dest, src, opts)
	close(ch)
	<-done
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("store image %s: %w", shortID(id), err)
	}
	return nil
}
