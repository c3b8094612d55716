package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/distribution/reference"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/host"
)

// SchemaVersion is the version of the on-disk layout this daemon reads and
// writes. Version 0 is a data root from before the schema file existed.
const SchemaVersion = 1

// SchemaFile is the schema version file's name in the data root; it holds
// {"version": N}.
const SchemaFile = "wharfd-schema.json"

// Schema is what stage 3.20 provides: the data root's schema version, once
// checked and migrated. Whatever reads images depends on it, so nothing
// reads a layout that was not migrated.
type Schema struct {
	// Version is the schema version now on disk, SchemaVersion.
	Version int
}

// migration is one step of the schema, from To-1 to To. A step must be
// idempotent: the version file records a step only after it completed, so
// a crash in the middle reruns it at the next boot.
type migration struct {
	To   int
	Name string
	Run  func(r *References, log *zap.Logger) error
}

// migrations are the steps, in order; the last one's To is SchemaVersion.
var migrations = []migration{
	{To: 1, Name: "normalise image names", Run: normaliseNames},
}

// MigrateParams are what the migration stage needs.
type MigrateParams struct {
	fx.In
	// DataRoot is the effective data root (3.7), which holds the schema
	// file.
	DataRoot host.DataRoot
	// References is the reference store the steps rewrite.
	References *References
	// Log is the daemon's logger.
	Log *zap.Logger
}

// Migrate is stage 3.20 migration: see MigrateDataRoot.
func Migrate(p MigrateParams) (Schema, error) {
	return MigrateDataRoot(p.DataRoot.Path, p.References, p.Log.With(zap.String("module", "storage")))
}

// MigrateDataRoot checks the schema version of the data root: a fresh data
// root gets the current version written; an older one is migrated in place
// step by step, the version file replaced atomically after each step; a
// newer one is refused, because this daemon would misread it.
func MigrateDataRoot(dataRoot string, refs *References, log *zap.Logger) (Schema, error) {
	path := filepath.Join(dataRoot, SchemaFile)
	version, found, err := readSchema(path)
	if err != nil {
		return Schema{}, err
	}
	if !found {
		imgs, err := refs.db.store.cs.Images()
		if err != nil {
			return Schema{}, fmt.Errorf("list images: %w", err)
		}
		if len(imgs) == 0 {
			if err := writeSchema(path, SchemaVersion); err != nil {
				return Schema{}, err
			}
			return Schema{Version: SchemaVersion}, nil
		}
		version = 0 // images from before the schema file
	}
	if version > SchemaVersion {
		return Schema{}, fmt.Errorf("data root %s has schema version %d, newer than this daemon's %d: "+
			"run a newer wharfd or use another --data-root", dataRoot, version, SchemaVersion)
	}
	for _, m := range migrations {
		if m.To <= version {
			continue
		}
		log.Info("migrating data root", zap.Int("from", m.To-1), zap.Int("to", m.To), zap.String("step", m.Name))
		if err := m.Run(refs, log); err != nil {
			return Schema{}, fmt.Errorf("migrate schema %d to %d (%s): %w", m.To-1, m.To, m.Name, err)
		}
		if err := writeSchema(path, m.To); err != nil {
			return Schema{}, err
		}
		version = m.To
	}
	return Schema{Version: version}, nil
}

// schemaJSON is the schema file's content.
type schemaJSON struct {
	Version *int `json:"version"`
}

// readSchema reads the schema version; found is false when the file does
// not exist.
func readSchema(path string) (version int, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	var s schemaJSON
	if err := json.Unmarshal(b, &s); err != nil || s.Version == nil || *s.Version < 0 {
		return 0, false, fmt.Errorf("schema version file %s is not {\"version\": N}: %q", path, b)
	}
	return *s.Version, true, nil
}

// writeSchema replaces the schema file atomically: a temporary file
// synced, renamed over the old one, and the directory synced.
func writeSchema(path string, version int) error {
	b, _ := json.Marshal(schemaJSON{Version: &version})
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write schema version: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write schema version: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() //nolint:errcheck // best effort: the rename is done
		d.Close()
	}
	return nil
}

// normaliseNames is step 0→1: every image name becomes its fully
// normalised reference ("busybox" → "docker.io/library/busybox:latest"),
// the form the reference store looks names up by; names that are no
// reference at all are dropped. Each image's names are replaced in one
// store update, and rerunning the step changes nothing.
func normaliseNames(r *References, log *zap.Logger) error {
	imgs, err := r.db.store.cs.Images()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, img := range imgs {
		var names []string
		for _, n := range img.Names {
			named, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				log.Warn("dropping image name that is no reference", zap.String("image", img.ID), zap.String("name", n))
				continue
			}
			if norm := reference.TagNameOnly(named).String(); !slices.Contains(names, norm) {
				names = append(names, norm)
			}
		}
		if slices.Equal(names, img.Names) {
			continue
		}
		if err := r.db.store.cs.SetNames(img.ID, names); err != nil {
			return fmt.Errorf("image %s: %w", img.ID, err)
		}
	}
	return nil
}
