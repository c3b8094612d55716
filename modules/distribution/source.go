package distribution

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	dref "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/types"
)

// stagedRef is the image a pull downloaded, as go.podman.io/image reads
// it into the store: the chosen manifest, the config, and the staged
// blobs; a blob that was not staged (the store had its layer when the
// pull looked) is read from the registry after all, should the store
// need it.
type stagedRef struct {
	manifest     []byte
	manifestType string
	config       []byte
	configDigest digest.Digest
	blobs        map[digest.Digest]string
	remote       types.ImageSource
	cache        types.BlobInfoCache
}

var (
	_ types.ImageReference = (*stagedRef)(nil)
	_ types.ImageSource    = (*stagedSource)(nil)
)

// stagedTransport is stagedRef's transport; it parses nothing.
type stagedTransport struct{}

func (stagedTransport) Name() string { return "wharfd-pull" }
func (stagedTransport) ParseReference(string) (types.ImageReference, error) {
	return nil, fmt.Errorf("wharfd-pull references cannot be parsed")
}
func (stagedTransport) ValidatePolicyConfigurationScope(string) error { return nil }

func (r *stagedRef) Transport() types.ImageTransport         { return stagedTransport{} }
func (r *stagedRef) StringWithinTransport() string           { return r.configDigest.String() }
func (r *stagedRef) DockerReference() dref.Named             { return nil }
func (r *stagedRef) PolicyConfigurationIdentity() string     { return "" }
func (r *stagedRef) PolicyConfigurationNamespaces() []string { return nil }
func (r *stagedRef) NewImage(ctx context.Context, sys *types.SystemContext) (types.ImageCloser, error) {
	return image.FromSource(ctx, sys, &stagedSource{ref: r})
}
func (r *stagedRef) NewImageSource(context.Context, *types.SystemContext) (types.ImageSource, error) {
	return &stagedSource{ref: r}, nil
}
func (r *stagedRef) NewImageDestination(context.Context, *types.SystemContext) (types.ImageDestination, error) {
	return nil, fmt.Errorf("wharfd-pull references are read-only")
}
func (r *stagedRef) DeleteImage(context.Context, *types.SystemContext) error {
	return fmt.Errorf("wharfd-pull references are read-only")
}

// stagedSource serves a stagedRef.
type stagedSource struct{ ref *stagedRef }

func (s *stagedSource) Reference() types.ImageReference { return s.ref }
func (s *stagedSource) Close() error                    { return nil }
func (s *stagedSource) GetManifest(_ context.Context, instance *digest.Digest) ([]byte, string, error) {
	if instance != nil {
		return nil, "", fmt.Errorf("no manifest instance %s", instance)
	}
	return s.ref.manifest, s.ref.manifestType, nil
}
func (s *stagedSource) HasThreadSafeGetBlob() bool { return true }
func (s *stagedSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	if info.Digest == s.ref.configDigest {
		return io.NopCloser(bytes.NewReader(s.ref.config)), int64(len(s.ref.config)), nil
	}
	if path, ok := s.ref.blobs[info.Digest]; ok {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, fmt.Errorf("staged blob %s: %w", info.Digest, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, fmt.Errorf("staged blob %s: %w", info.Digest, err)
		}
		return f, st.Size(), nil
	}
	return s.ref.remote.GetBlob(ctx, info, s.ref.cache)
}
func (s *stagedSource) GetSignatures(context.Context, *digest.Digest) ([][]byte, error) {
	return nil, nil
}
func (s *stagedSource) LayerInfosForCopy(context.Context, *digest.Digest) ([]types.BlobInfo, error) {
	return nil, nil
}
