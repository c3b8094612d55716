package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	cstorage "go.podman.io/storage"
	"go.uber.org/fx"
	"go.uber.org/zap"

	eventbus "github.com/wharfd/wharfd/modules/events"
)

var _ EventLogger = (*eventbus.Bus)(nil)

// EventLogger is the event bus as the image service uses it: one call per
// image event (import, load, tag, untag, delete, save, prune).
type EventLogger interface {
	Log(typ events.Type, action events.Action, actor events.Actor)
}

// Images is the image service behind the image router and the container
// engine: the image store, the reference store and image events, after
// the schema migration. It is safe for concurrent use; operations that add
// or remove layers run one at a time, so that a failed one can remove
// exactly what it made.
type Images struct {
	db     *ImageDB
	refs   *References
	events EventLogger
	log    *zap.Logger

	// writeMu serialises load, import, delete and prune.
	writeMu sync.Mutex
}

// ImagesParams are what the images stage needs.
type ImagesParams struct {
	fx.In
	DB         *ImageDB
	References *References
	// Schema orders the service after the migration.
	Schema Schema
	Log    *zap.Logger
	// Events is the event bus (3.18); no events are sent without it.
	Events *eventbus.Bus `optional:"true"`
}

// NewImages is the images stage.
func NewImages(p ImagesParams) *Images {
	var ev EventLogger
	if p.Events != nil {
		ev = p.Events
	}
	return NewImageService(p.DB, p.References, ev, p.Log)
}

// NewImageService returns the image service over db and refs, logging
// image events to ev (nil: none). Call it after MigrateDataRoot.
func NewImageService(db *ImageDB, refs *References, ev EventLogger, log *zap.Logger) *Images {
	return &Images{db: db, refs: refs, events: ev, log: log.With(zap.String("module", "storage"))}
}

// DB returns the image store.
func (s *Images) DB() *ImageDB { return s.db }

// References returns the reference store.
func (s *Images) References() *References { return s.refs }

// Resolve returns the image refOrID names (see References.Resolve).
func (s *Images) Resolve(ctx context.Context, refOrID string) (*Image, error) {
	img, _, err := s.refs.Resolve(ctx, refOrID)
	return img, err
}

// event logs an image event, as dockerd: the actor is the image ID with the
// image's labels and the reference it concerns as "name".
func (s *Images) event(action events.Action, id, name string, labels map[string]string) {
	if s.events == nil {
		return
	}
	attrs := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		attrs[k] = v
	}
	attrs["name"] = name
	s.events.Log(events.ImageEventType, action, events.Actor{ID: id, Attributes: attrs})
}

// Filters are API filters: each key with its values
// ({"dangling": ["true"], "label": ["a=b"]}).
type Filters map[string][]string

// validate refuses keys outside accepted, with dockerd's message.
func (f Filters) validate(accepted ...string) error {
	for k := range f {
		if !contains(accepted, k) {
			return invalidf("invalid filter '%s'", k)
		}
	}
	return nil
}

// boolValue returns the filter's single boolean value, def when absent.
func (f Filters) boolValue(key string, def bool) (bool, error) {
	vals := f[key]
	if len(vals) == 0 {
		return def, nil
	}
	var v bool
	for i, s := range vals {
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil || (i > 0 && b != v) {
			return false, invalidf("invalid filter '%s=%s'", key, s)
		}
		v = b
	}
	return v, nil
}

// matchLabels reports whether labels satisfy every "key" or "key=value"
// in want.
func matchLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ListOptions select the images List returns.
type ListOptions struct {
	// All includes intermediate images; every image is a top-level image
	// here, so it changes nothing.
	All bool
	// Filters are dangling, label, before, since, until and reference,
	// as dockerd's GET /images/json.
	Filters Filters
}

// List returns the image summaries GET /images/json returns, newest first.
// Unknown filter keys, malformed values and unknown before/since images
// are errors (400, 404).
func (s *Images) List(ctx context.Context, opts ListOptions) ([]imagetypes.Summary, error) {
	f := opts.Filters
	if err := f.validate("dangling", "label", "before", "since", "until", "reference"); err != nil {
		return nil, err
	}
	danglingOnly, err := f.boolValue("dangling", false)
	if err != nil {
		return nil, err
	}
	var before, since time.Time
	for _, v := range f["before"] {
		img, err := s.Resolve(ctx, v)
		if err != nil {
			return nil, err
		}
		if before.IsZero() || img.Created.Before(before) {
			before = img.Created
		}
	}
	for _, v := range f["until"] {
		t, err := parseTimestamp(v, time.Now())
		if err != nil {
			return nil, err
		}
		if before.IsZero() || t.Before(before) {
			before = t
		}
	}
	for _, v := range f["since"] {
		img, err := s.Resolve(ctx, v)
		if err != nil {
			return nil, err
		}
		if img.Created.After(since) {
			since = img.Created
		}
	}
	for _, p := range f["reference"] {
		if _, err := path.Match(p, ""); err != nil {
			return nil, invalidf("invalid filter 'reference=%s': %v", p, err)
		}
	}
	imgs, err := s.db.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []imagetypes.Summary{}
	for _, img := range imgs {
		if !before.IsZero() && !img.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !img.Created.After(since) {
			continue
		}
		if len(f["label"]) > 0 && !matchLabels(f["label"], img.Labels()) {
			continue
		}
		sum := summary(img)
		if len(f["reference"]) > 0 {
			sum.RepoTags, sum.RepoDigests = []string{}, []string{}
			for _, ref := range ImageRefs(img) {
				if !matchAny(f["reference"], ref) {
					continue
				}
				if _, ok := ref.(reference.Canonical); ok {
					sum.RepoDigests = append(sum.RepoDigests, Familiar(ref))
				} else if _, ok := ref.(reference.NamedTagged); ok {
					sum.RepoTags = append(sum.RepoTags, Familiar(ref))
				}
			}
			if len(sum.RepoTags) == 0 && len(sum.RepoDigests) == 0 {
				continue
			}
		}
		dangling := len(img.Names) == 0
		if _, set := f["dangling"]; set && dangling != danglingOnly {
			continue
		}
		out = append(out, sum)
	}
	return out, nil
}

// matchAny reports whether ref matches one of the reference patterns
// (path.Match on the familiar name, with or without tag).
func matchAny(patterns []string, ref reference.Named) bool {
	for _, p := range patterns {
		if ok, _ := reference.FamiliarMatch(p, ref); ok {
			return true
		}
	}
	return false
}

// summary is the GET /images/json entry of img.
func summary(img *Image) imagetypes.Summary {
	var created int64
	if !img.Created.IsZero() {
		created = img.Created.Unix()
	}
	return imagetypes.Summary{
		ID:          img.FullID(),
		ParentID:    img.Parent,
		RepoTags:    RepoTags(img),
		RepoDigests: RepoDigests(img),
		Created:     created,
		Size:        img.Size,
		SharedSize:  -1,
		Containers:  -1,
		Labels:      img.Labels(),
		Descriptor:  descriptor(img),
	}
}

// descriptor is the OCI descriptor of img's manifest.
func descriptor(img *Image) *ocispec.Descriptor {
	return &ocispec.Descriptor{MediaType: img.ManifestType, Digest: img.Digest, Size: int64(len(img.Manifest))}
}

// Inspect returns GET /images/{name}/json for name.
func (s *Images) Inspect(ctx context.Context, name string) (*imagetypes.InspectResponse, error) {
	img, err := s.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	c := img.Config
	resp := &imagetypes.InspectResponse{
		ID:           img.FullID(),
		RepoTags:     RepoTags(img),
		RepoDigests:  RepoDigests(img),
		Comment:      img.Comment,
		Author:       c.Author,
		Config:       &c.Config,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         img.Size,
		RootFS:       imagetypes.RootFS{Type: c.RootFS.Type},
		Metadata:     imagetypes.Metadata{LastTagTime: img.LastTagTime},
		Descriptor:   descriptor(img),
	}
	if !img.Created.IsZero() {
		resp.Created = img.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	if img.TopLayer != "" {
		if drv, err := s.db.store.cs.GraphDriver(); err == nil {
			if data, err := drv.Metadata(img.TopLayer); err == nil {
				resp.GraphDriver = &storage.DriverData{Name: s.db.store.DriverName(), Data: data}
			}
		}
	}
	return resp, nil
}

// History returns GET /images/{name}/history: the config's history, newest
// first, each entry that made a layer with that layer's size; the newest
// entry carries the image ID and tags, older ones "<missing>", as dockerd
// shows images whose parents are not local.
func (s *Images) History(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	img, err := s.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	layer := 0
	var out []imagetypes.HistoryResponseItem
	for _, h := range img.Config.History {
		var size int64
		if !h.EmptyLayer {
			if layer < len(img.Layers) {
				if l, err := s.db.store.cs.Layer(img.Layers[layer]); err == nil {
					size = l.UncompressedSize
				}
			}
			layer++
		}
		var created int64
		if h.Created != nil {
			created = h.Created.Unix()
		}
		out = append([]imagetypes.HistoryResponseItem{{
			ID: "<missing>", Created: created, CreatedBy: h.CreatedBy, Comment: h.Comment, Size: size,
		}}, out...)
	}
	if len(out) == 0 {
		out = []imagetypes.HistoryResponseItem{{Created: img.Created.Unix(), Size: img.Size}}
	}
	out[0].ID = img.FullID()
	out[0].Tags = RepoTags(img)
	return out, nil
}

// Tag points ref at the image name resolves to (POST
// /images/{name}/tag) and logs a "tag" event.
func (s *Images) Tag(ctx context.Context, name string, ref reference.Named) error {
	img, err := s.Resolve(ctx, name)
	if err != nil {
		return err
	}
	if _, err := s.refs.Tag(img.ID, ref); err != nil {
		return err
	}
	s.event(events.ActionTag, img.FullID(), Familiar(reference.TagNameOnly(ref)), img.Labels())
	return nil
}

// containersUsing returns the IDs of the store's containers made from the
// image with hex ID id.
func (s *Images) containersUsing(id string) ([]string, error) {
	ctrs, err := s.db.store.cs.Containers()
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, c := range ctrs {
		if c.ImageID == id {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// ImageUsers tells which containers use an image and whether one of
// them is running: the container engine's view (modules/daemon's
// ImageInUse), which the image service cannot see. imageID is
// "sha256:<hex>"; running containers come first in containerIDs.
type ImageUsers interface {
	ImageInUse(imageID string) (containerIDs []string, running bool)
}

// Delete is DeleteUsedBy without the container engine's view: every
// container of the store made from the image counts as stopped.
func (s *Images) Delete(ctx context.Context, name string, force, prune bool) ([]imagetypes.DeleteResponse, error) {
	return s.DeleteUsedBy(ctx, name, force, prune, nil)
}

// DeleteUsedBy is DELETE /images/{name}, dockerd's rules: a reference
// removes that reference, and the image too once no reference is left;
// an ID deletes the image, untagging it first when its references are
// one tag (plus digests of that repository), else only with force.
// users says which containers use the image (nil: the store's
// containers, all counted as stopped). Conflicts are 409s with dockerd's
// texts: an image a running container uses cannot be deleted even with
// force ("(cannot be forced) - image is being used by running container
// <id>"), one a stopped container uses only with force ("(must be
// forced) - image is being used by stopped container <id>"); forced,
// it is untagged and kept, dangling, since the stopped containers'
// layers stand on it (dockerd deletes its record and keeps its layers).
// The records say what was untagged and deleted, layers included. prune
// (not noprune) would also delete unused parents; images here have
// none, so it changes nothing.
func (s *Images) DeleteUsedBy(ctx context.Context, name string, force, prune bool, users ImageUsers) ([]imagetypes.DeleteResponse, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	img, named, err := s.refs.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	records := []imagetypes.DeleteResponse{}
	var using []string
	running := false
	if users != nil {
		using, running = users.ImageInUse(img.FullID())
	} else if using, err = s.containersUsing(img.ID); err != nil {
		return nil, err
	}
	refs := ImageRefs(img)
	if named != nil && !isIDPrefix(img.ID, name) {
		if !force && isSingleReference(refs) && len(using) > 0 {
			return nil, conflictf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				name, shortID(using[0]), shortID(img.ID))
		}
		if _, err := s.refs.Untag(named); err != nil {
			return nil, err
		}
		records = append(records, imagetypes.DeleteResponse{Untagged: Familiar(named)})
		s.event(events.ActionUnTag, img.FullID(), Familiar(named), img.Labels())
		refs = removeRef(refs, named)
		// Digest references of the same repository go with its last tag.
		if _, canonical := named.(reference.Canonical); !canonical && !hasTagIn(refs, named.Name()) {
			for _, r := range refs {
				if _, ok := r.(reference.Canonical); ok && r.Name() == named.Name() {
					if _, err := s.refs.Untag(r); err != nil {
						return records, err
					}
					records = append(records, imagetypes.DeleteResponse{Untagged: Familiar(r)})
					refs = removeRef(refs, r)
				}
			}
		}
		if len(refs) > 0 {
			return records, nil
		}
		if len(using) > 0 {
			return records, nil // kept for its containers, as dockerd does quietly
		}
	} else {
		switch {
		case running && len(using) > 0:
			return nil, conflictf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s",
				shortID(img.ID), shortID(using[0]))
		case len(refs) > 0 && !force && !isSingleReference(refs):
			return nil, conflictf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.ID))
		case len(using) > 0 && !force:
			return nil, conflictf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s",
				shortID(img.ID), shortID(using[0]))
		}
		for _, r := range refs {
			if _, err := s.refs.Untag(r); err != nil {
				return records, err
			}
			records = append(records, imagetypes.DeleteResponse{Untagged: Familiar(r)})
			s.event(events.ActionUnTag, img.FullID(), Familiar(r), img.Labels())
		}
		if len(using) > 0 {
			return records, nil // forced: kept, untagged, under its stopped containers' layers
		}
	}
	deleted, _, err := s.deleteImage(img)
	return append(records, deleted...), err
}

// deleteImage removes img's record and the layers no other image or
// container uses, logs the "delete" event and returns the records and the
// bytes freed.
func (s *Images) deleteImage(img *Image) ([]imagetypes.DeleteResponse, uint64, error) {
	sizes := map[string]int64{}
	for _, id := range img.Layers {
		if l, err := s.db.store.cs.Layer(id); err == nil {
			sizes[l.ID] = l.UncompressedSize
		}
	}
	removed, err := s.db.store.cs.DeleteImage(img.ID, true)
	if errors.Is(err, cstorage.ErrImageUsedByContainer) {
		return nil, 0, conflictf("conflict: unable to delete %s (cannot be forced) - image is being used by a container", shortID(img.ID))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("delete image %s: %w", shortID(img.ID), err)
	}
	s.db.forget(img.ID)
	s.event(events.ActionDelete, img.FullID(), img.FullID(), img.Labels())
	records := []imagetypes.DeleteResponse{{Deleted: img.FullID()}}
	var freed uint64
	for _, l := range removed {
		records = append(records, imagetypes.DeleteResponse{Deleted: "sha256:" + l})
		if sizes[l] > 0 {
			freed += uint64(sizes[l])
		}
	}
	return records, freed, nil
}

// isIDPrefix reports whether name is id or a prefix of it, with or without
// "sha256:".
func isIDPrefix(id, name string) bool {
	return strings.HasPrefix(id, strings.TrimPrefix(name, "sha256:"))
}

// isSingleReference reports whether refs are at most one tag plus digests
// of that tag's repository (dockerd's rule for deleting by ID without
// force); false for none.
func isSingleReference(refs []reference.Named) bool {
	var tag reference.Named
	repos := map[string]bool{}
	for _, r := range refs {
		if _, ok := r.(reference.Canonical); ok {
			repos[r.Name()] = true
			continue
		}
		if tag != nil {
			return false
		}
		tag = r
	}
	switch {
	case len(refs) == 0:
		return false
	case tag == nil:
		return len(repos) == 1
	default:
		return len(repos) == 0 || (len(repos) == 1 && repos[tag.Name()])
	}
}

func removeRef(refs []reference.Named, ref reference.Named) []reference.Named {
	var out []reference.Named
	for _, r := range refs {
		if r.String() != ref.String() {
			out = append(out, r)
		}
	}
	return out
}

func hasTagIn(refs []reference.Named, repo string) bool {
	for _, r := range refs {
		if _, ok := r.(reference.NamedTagged); ok && r.Name() == repo {
			return true
		}
	}
	return false
}

// shortID is the 12-character form of an ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Prune is POST /images/prune: it deletes dangling images (untagged, no
// container), or with dangling=false every image no container uses;
// filters until, label and label! narrow it, as dockerd.
func (s *Images) Prune(ctx context.Context, f Filters) (*imagetypes.PruneReport, error) {
	if err := f.validate("dangling", "until", "label", "label!"); err != nil {
		return nil, err
	}
	danglingOnly, err := f.boolValue("dangling", true)
	if err != nil {
		return nil, err
	}
	var until time.Time
	for _, v := range f["until"] {
		t, err := parseTimestamp(v, time.Now())
		if err != nil {
			return nil, err
		}
		if until.IsZero() || t.Before(until) {
			until = t
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	imgs, err := s.db.List(ctx)
	if err != nil {
		return nil, err
	}
	report := &imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}}
	for _, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if danglingOnly && len(img.Names) > 0 {
			continue
		}
		if !until.IsZero() && !img.Created.Before(until) {
			continue
		}
		if len(f["label"]) > 0 && !matchLabels(f["label"], img.Labels()) {
			continue
		}
		if len(f["label!"]) > 0 && anyLabel(f["label!"], img.Labels()) {
			continue
		}
		users, err := s.containersUsing(img.ID)
		if err != nil {
			return nil, err
		}
		if len(users) > 0 {
			continue
		}
		for _, r := range ImageRefs(img) {
			if _, err := s.refs.Untag(r); err != nil {
				return nil, err
			}
			report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Untagged: Familiar(r)})
			s.event(events.ActionUnTag, img.FullID(), Familiar(r), img.Labels())
		}
		records, freed, err := s.deleteImage(img)
		if err != nil {
			return nil, err
		}
		report.ImagesDeleted = append(report.ImagesDeleted, records...)
		report.SpaceReclaimed += freed
	}
	if s.events != nil {
		s.events.Log(events.ImageEventType, events.ActionPrune, events.Actor{
			Attributes: map[string]string{"reclaimed": strconv.FormatUint(report.SpaceReclaimed, 10)},
		})
	}
	return report, nil
}

// anyLabel reports whether labels satisfy one of the "key" or "key=value"
// in want.
func anyLabel(want []string, labels map[string]string) bool {
	for _, w := range want {
		if matchLabels([]string{w}, labels) {
			return true
		}
	}
	return false
}

// parseTimestamp parses a filter time as dockerd: RFC 3339 (with or
// without zone), a date, Unix seconds with optional fraction, or a Go
// duration before now ("10m").
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if secs, frac, _ := strings.Cut(v, "."); secs != "" {
		if s, err := strconv.ParseInt(secs, 10, 64); err == nil {
			var ns int64
			if frac != "" {
				n, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
				if err != nil {
					return time.Time{}, invalidf("invalid timestamp %q", v)
				}
				ns = n
			}
			return time.Unix(s, ns), nil
		}
	}
	return time.Time{}, invalidf("failed to parse value as time or duration: %q", v)
}
